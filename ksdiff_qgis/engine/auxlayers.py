"""Quality, angle and classification layers of Landsat and Sentinel-2 deliveries: no spectral bands, no MS bands.

A delivery ships them beside its band files (``LC08_..._QA_PIXEL.TIF``, ``T32TQM_..._SCL_20m.jp2``; not the
true-colour TCI: stretched, but spectral values), and QGIS's Build Virtual Raster stacks whatever files are picked: a
QA band stacked as band 5 had its bit codes fused with PAN texture, silently (QA137). Such a layer is recognised by
the code its file name ends with (each source file of a VRT band) or its band description, and the run is refused
before anything is written, naming the MS_BANDS value that leaves it out.
"""
from __future__ import annotations

import os
import re

from osgeo import gdal

from .delivery import vrt_sources
from .errors import InputError, shown_name
from .gdalutil import gdal_call

# what each code is, by the code as the delivery writes it at the end of a file name (upper case here)
_LANDSAT_QA = "Landsat pixel quality bits"
_LANDSAT_ANGLES = "Landsat sun or view angles"
_LAYERS: dict[str, str] = {
    # Landsat Collection 2 (and Collection 1's lower-case names)
    "QA_PIXEL": _LANDSAT_QA, "BQA": _LANDSAT_QA, "PIXEL_QA": _LANDSAT_QA,
    "QA_RADSAT": "Landsat saturation bits", "RADSAT_QA": "Landsat saturation bits",
    "QA_AEROSOL": "Landsat aerosol quality bits", "SR_AEROSOL": "Landsat aerosol quality bits",
    "SAA": _LANDSAT_ANGLES, "SZA": _LANDSAT_ANGLES, "VAA": _LANDSAT_ANGLES, "VZA": _LANDSAT_ANGLES,
    "ST_QA": "Landsat surface temperature uncertainty",
    # Sentinel-2 Level-2A (Sen2Cor) and its QI_DATA masks
    "SCL": "Sentinel-2 scene classification", "AOT": "Sentinel-2 aerosol optical thickness",
    "WVP": "Sentinel-2 water vapour",
    "CLD": "Sentinel-2 cloud probability", "SNW": "Sentinel-2 snow probability",
}
# the codes, and those written as families: Landsat's other surface temperature layers, Collection 1's angle bands
# (solar_zenith_band4), Sentinel-2's masks (MSK_CLDPRB_20m, MSK_DETFOO_B01, MSK_CLASSI_B00)
_FAMILIES = {r"ST_(?:CDIST|ATRAN|DRAD|EMIS|EMSD|TRAD|URAD)": "Landsat surface temperature auxiliary layer",
             r"(?:SOLAR|SENSOR)_(?:AZIMUTH|ZENITH)(?:_BAND\d+)?": _LANDSAT_ANGLES,
             r"MSK_[A-Z]+(?:_B(?:\d\d|8A))?": "Sentinel-2 mask"}
_CODE = re.compile(r"(?:^|[_\-. ])(" + "|".join([*sorted(_LAYERS, key=len, reverse=True), *_FAMILIES])
                   + r")(?:_\d{2}m)?$", re.IGNORECASE)


def layer_kind(name: str) -> tuple[str, str] | None:
    """(code, what it is) when ``name`` — a file name or a band description — ends with the code of a quality, angle or
    classification layer ('LC08_..._QA_PIXEL.TIF' -> ('QA_PIXEL', 'Landsat pixel quality bits')), else None."""
    stem = os.path.basename((name or "").strip())
    root, ext = os.path.splitext(stem)
    if re.fullmatch(r"\.[A-Za-z0-9]{2,4}", ext):   # a file's extension, not a description's '0.478 um'
        stem = root
    m = _CODE.search(stem)
    if not m:
        return None
    code = m.group(1).upper()
    what = _LAYERS.get(code) or next(w for pat, w in _FAMILIES.items() if re.fullmatch(pat, code))
    return code, what


def aux_bands(path: str, descriptions: list[str]) -> dict[int, str]:
    """Per 1-based band of the raster ``path`` (with these band ``descriptions``) that is such a layer, what says so:
    a source file of the VRT band, the band's description, or the file itself ('its file LC08_..._QA_PIXEL.TIF:
    Landsat pixel quality bits')."""
    sources = vrt_sources(path)
    found: dict[int, str] = {}
    for b, description in enumerate(descriptions, 1):
        files = [f for f, _ in sources[b - 1]] if sources is not None and b <= len(sources) else [path]
        # a name is told only of a single-band file, as such layers are delivered: a user's 4-band 'scene_scl.tif'
        # ('scaled') is no scene classification (QA140: it was refused)
        hit = next(((f"its file {shown_name(os.path.basename(f))}", k) for f in files
                    if (k := layer_kind(f)) and _single_band(f)), None)
        if hit is None and (k := layer_kind(description)):
            hit = (f"its description {shown_name(description)}", k)
        if hit:
            found[b] = f"{hit[0]}: {hit[1][1]}"
    return found


def _single_band(path: str) -> bool:
    """Whether ``path`` opens as a raster of one band (quietly: a source GDAL cannot open is no such layer)."""
    ds, _ = gdal_call(gdal.OpenEx, path, gdal.OF_RASTER | gdal.OF_READONLY)
    return ds is not None and ds.RasterCount == 1


MS_BANDS_WHERE = "'MS bands to fuse' (MS_BANDS, under Advanced Parameters; a batch list's ms_bands column)"


def refuse_aux_bands(path: str, descriptions: list[str], selection: list[int] | None) -> None:
    """InputError when a band the run would fuse (``selection``, 1-based; None: all) is a quality, angle or
    classification layer (``aux_bands``), naming it and the MS_BANDS value that leaves it out."""
    chosen = list(selection or range(1, len(descriptions) + 1))
    found = {b: why for b, why in aux_bands(path, descriptions).items() if b in chosen}
    if not found:
        return
    left = [b for b in chosen if b not in found]
    one = len(found) == 1
    listed = list(found)
    bands = f"band {listed[0]}" if one else f"bands {', '.join(map(str, listed[:-1]))} and {listed[-1]}"
    what = "; ".join(why if one else f"band {b}: {why}" for b, why in found.items())
    fix = (f"leave {'it' if one else 'them'} out with {MS_BANDS_WHERE} set to {','.join(map(str, left))}" if left
           else "give an MS raster of the spectral band files instead")
    kind = ("is not a spectral band but a quality, angle or classification layer" if one else
            "are not spectral bands but quality, angle or classification layers")
    raise InputError(f"MS {bands} {kind}, whose values must not be fused ({what}); {fix}")
