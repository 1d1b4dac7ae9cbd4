"""Which output bands are red, green and blue, and telling GDAL so; alpha-flagged inputs.

The GeoTIFF's colour interpretation (GDAL reports it) gives natural colour in programs that follow it, not in
QGIS 3.22, which ignores it (red = band 1): the plugin writes a ``.qml`` default style for QGIS
(``algorithms/colour_style.py``)."""
from __future__ import annotations

import os
import re

import numpy as np
from osgeo import gdal

from .bands import band_kind, wavelength_nm
from .gdalutil import gdal_call
from .nodatacmd import updatable
from .raster_io import read_nearest
from .shellcmd import beside, shell_arg

_COLOURS = {"red": gdal.GCI_RedBand, "green": gdal.GCI_GreenBand, "blue": gdal.GCI_BlueBand}


def _colour_of(name: str) -> str | None:
    """'red', 'green' or 'blue' when a band name says so ('B4 Red', 'Blue', Sentinel-2's 'B04'); 'Red Edge' is not
    red, 'Coastal Blue' and Pléiades Neo's 'Deep Blue' are not blue (QA: two blues, so no natural colour at all)."""
    words = set(re.findall(r"[a-z]+", name.lower()))
    hits = [c for c in _COLOURS if c in words]
    if len(hits) == 1 and not words & {"edge", "nir", "infrared", "coastal", "deep", "aerosol"}:
        return hits[0]
    if hits:
        return None
    kind = band_kind(name)
    return kind if kind in _COLOURS else None


def _by_name(names: list[str]) -> dict[str, list[int]]:
    """The 1-based bands each of 'red', 'green', 'blue' is named by."""
    found: dict[str, list[int]] = {c: [] for c in _COLOURS}
    for i, name in enumerate(names, start=1):
        colour = _colour_of(name or "")
        if colour:
            found[colour].append(i)
    return found


# nominal centres (nm) of natural colour: Sentinel-2 MSI's B4, B3, B2 (Landsat 8/9 OLI's: 655, 561, 482 nm)
NATURAL_CENTRES = {"red": 665.0, "green": 560.0, "blue": 490.0}


def _nearest_centre(names: list[str], bands: list[int], colour: str) -> int | None:
    """Of several 1-based ``bands`` of one colour, the one whose name's wavelength is nearest its nominal centre
    (a tie: the first); None unless every one states a wavelength (two bands named 'Red' stay ambiguous)."""
    waves = [wavelength_nm(names[b - 1] or "") for b in bands]
    if any(w is None for w in waves):
        return None
    return min(zip(bands, waves), key=lambda bw: abs(bw[1] - NATURAL_CENTRES[colour]))[0]


def _chosen(names: list[str]) -> dict[str, list[int]]:
    """``_by_name``, each colour of several bands with known wavelengths narrowed to the one nearest its centre
    (QA: a hyperspectral output, 10 Blue, 7 Green, 12 Red bands by wavelength, got no natural colour)."""
    found = _by_name(names)
    for colour, bands in found.items():
        pick = _nearest_centre(names, bands, colour) if len(bands) > 1 else None
        if pick is not None:
            found[colour] = [pick]
    return found


def wavelength_choice(names: list[str]) -> str | None:
    """For the log, the bands natural colour takes by wavelength where a colour has several: 'red = band 14, 664 nm;
    ... each its colour's band nearest 665 nm ...'; None when no colour was chosen so."""
    found, chosen = _by_name(names), _chosen(names)
    picked = [(c, chosen[c][0]) for c in found if len(found[c]) > 1 and len(chosen[c]) == 1]
    if not picked:
        return None
    said = "; ".join(f"{c} = band {b}, {wavelength_nm(names[b - 1]):g} nm" for c, b in picked)
    near = ", ".join(f"{NATURAL_CENTRES[c]:g}" for c, _ in picked)
    return f"{said}: each its colour's band nearest {near} nm (Sentinel-2's centres)"


def missing_colours(names: list[str]) -> list[str]:
    """What keeps natural colour from bands of these ``names``, one phrase per colour not named by exactly one band
    (nor narrowed to one by wavelength, ``_chosen``): 'no band named Blue', 'more than one band named Blue (bands 1
    and 2)'; [] when each is there once."""
    return [f"no band named {c.title()}" if not bands else
            f"more than one band named {c.title()} (bands {', '.join(map(str, bands[:-1]))} and {bands[-1]})"
            for c, bands in _chosen(names).items() if len(bands) != 1]


def rgb_bands(names: list[str]) -> tuple[int, int, int] | None:
    """1-based (red, green, blue) band numbers from band names, or None unless each colour is there once or, of
    several bands, one is nearest its centre by wavelength (``_chosen``)."""
    found = _chosen(names)
    if any(len(v) != 1 for v in found.values()):
        return None
    return found["red"][0], found["green"][0], found["blue"][0]


def _rgb_tagged(tags: list[int]) -> tuple[int, int, int] | None:
    """1-based (red, green, blue) band numbers from GDAL colour interpretations, each there once, else None."""
    found = [[i for i, t in enumerate(tags, start=1) if t == _COLOURS[c]] for c in ("red", "green", "blue")]
    return None if any(len(f) != 1 for f in found) else (found[0][0], found[1][0], found[2][0])


def set_colour_interpretation(ds: gdal.Dataset, names: list[str], tags: list[int] | None = None) -> None:
    """Mark the red, green and blue bands of ``ds`` (GeoTIFF stores this in the file, no sidecar): by band name, else
    as the input's own colour interpretations ``tags`` say (an unnamed RGB product stays RGB, as gdal:pansharp
    keeps it), else the colours the names do give once each (NIR1, Red, Green: Red and Green, QA: all were left
    Undefined for want of a Blue)."""
    rgb = rgb_bands(names) or (_rgb_tagged(tags) if tags else None)
    if rgb is not None:
        known = dict(zip(rgb, ("red", "green", "blue")))
    else:
        known = {bands[0]: c for c, bands in _chosen(names).items() if len(bands) == 1}
        if not known:
            return
    wanted = {i: gdal.GCI_Undefined for i in range(1, ds.RasterCount + 1)}   # GTiff would say Gray
    wanted.update({band: _COLOURS[c] for band, c in known.items()})
    for i, interp in wanted.items():
        # cosmetic: a driver that refuses must not fail the run (GDAL exceptions may be on)
        gdal_call(ds.GetRasterBand(i).SetColorInterpretation, interp)


def alpha_flagged(ds: gdal.Dataset) -> list[int]:
    """1-based bands the file flags as alpha (transparency). GDAL writes three or four Byte bands as RGB + alpha
    unless told otherwise, so a 4-band 8-bit B, G, R, NIR product often carries its NIR band flagged so."""
    return [b for b in range(1, ds.RasterCount + 1)
            if ds.GetRasterBand(b).GetColorInterpretation() == gdal.GCI_AlphaBand]


def alpha_band_note(flagged: list[int], fused: list[int], names: list[str] | None = None, path: str | None = None,
                    model_needs: list[int] | None = None, assumed: list[str] | None = None) -> str | None:
    """A warning when a band about to be fused is among the alpha-flagged ones, else None: it is fused as data.
    ``names``: each fused band's own name (its description), named in the note; ``assumed``: the name each unnamed
    fused band is taken as (the band order assumed: the sensor's for its position; '' for a real transparency
    mask). A band named or taken as NIR is no transparency mask, so the note calls the flag wrong and gives the
    ``gdal_edit.py`` command that clears it on ``path`` (QA: a WorldView-2 Byte MS's NIR band, named so, was told to
    be left out; QA129: numpy, rasterio and QGIS Save As write it unnamed). Otherwise the note says how to leave a
    real transparency band out, and that it leaves KSDiff out when the band is among ``model_needs`` (the fused
    bands the model fuses)."""
    hit = [b for b in fused if b in flagged]
    if not hit:
        return None
    named, taken = dict(zip(fused, names or [])), dict(zip(fused, assumed or []))
    which = ", ".join(f"{b} ({named[b]})" if named.get(b) else str(b) for b in hit)
    said = f"MS band {which} is flagged as alpha (transparency) in the file"
    nir = [b for b in hit if band_kind(named.get(b) or taken.get(b, "")) == "nir"]
    if nir and path:
        how = "its name says" if all(named.get(b) for b in nir) else "the band order assumed takes it as"
        return (f"{said}, as GDAL's Create()-based writers (numpy, rasterio, QGIS Save As) and PNG flag the 4th "
                f"band of 8-bit products; it is fused as the NIR band {how}, so the flag is most likely wrong (QGIS "
                f"draws the band as transparency): clear it with {colour_clear_command(path, nir)}")
    keep = ",".join(str(b) for b in fused if b not in hit)
    loses = [b for b in hit if b in (model_needs or [])]
    return (f"{said}; it is fused as a spectral band (GDAL's Create()-based writers and PNG flag the 4th band of "
            f"8-bit products so). If it really is a transparency mask, choose the other bands (MS bands {keep}) and "
            "give the MS a nodata value" + (", which leaves KSDiff out: its model needs this band." if loses else "."))


def colour_clear_command(path: str, bands: list[int]) -> str:
    """The command that sets the colour interpretation of ``bands`` of ``path`` to undefined (an alpha flag cleared;
    checked with GDAL 3.6 on a GeoTIFF): ``gdal_edit.py`` where GDAL can update the file, else a virtual copy beside
    it (``gdal_translate -of VRT``) to fuse instead."""
    flags = " ".join(f"-colorinterp_{b} undefined" for b in bands)
    if updatable(path):
        return f"gdal_edit.py {flags} {shell_arg(path)}"
    out = beside(path, "_bands.vrt")
    return (f"gdal_translate -of VRT {flags} {shell_arg(path)} {shell_arg(out)} (GDAL cannot update "
            f"{os.path.basename(path)}), then fuse {os.path.basename(out)}")


def sample_bands(ds: gdal.Dataset, sample: int = 256) -> np.ndarray | None:
    """Every band on a grid of at most ``sample`` x ``sample`` pixels (nearest neighbour, the file's data type; not
    an averaged overview's values between 0 and 255), or None when GDAL cannot read it."""
    return read_nearest(ds, sample, sample)[0]


def transparency_masks(samples: np.ndarray, flagged: list[int], nbits: int | None = None) -> list[int]:
    """The alpha-flagged bands that hold only 0 and one opaque value on ``samples`` (``sample_bands``): 255 (an 8-bit
    alpha, also beside 16-bit data: ``gdalbuildvrt -addalpha`` writes a Byte alpha), the data type's maximum
    (``gdalwarp -dstalpha`` on 16-bit data) or 2^``nbits`` - 1, the product's bit depth's (``gdalwarp -dstalpha -co
    NBITS=11`` writes 0/2047). Transparency masks, not spectral bands; an alpha-flagged band with other values is
    data. Bands of mixed types come as floats: then 255 and the bit depth's only."""
    tops = {255.0} | ({float(np.iinfo(samples.dtype).max)} if np.issubdtype(samples.dtype, np.integer) else set())
    if nbits:
        tops.add(float(2**nbits - 1))
    return [b for b in flagged if any(set(np.unique(samples[b - 1]).tolist()) <= {0.0, top} for top in tops)]
