"""Open a raster and describe it: what the pipeline and the assessment need to know about an input."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
from osgeo import gdal

from .. import containers, gdaldrivers
from ..errors import InputError, quoted
from ..gdalutil import dataset_name, gdal_call, gdal_text, quiet_metadata, text_metadata
from ..nodatacmd import exact
from ..shellcmd import beside, command, shell_arg
from .bitdepth import product_nbits
from .geotransform import is_rotated

SUPPORTED_TYPES = {"Byte", "UInt16", "Int16", "UInt32", "Int32", "Float32", "Float64", "Int8"}
DEFAULT_GT = (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)   # what GDAL reports for a raster without a geotransform


@dataclass
class RasterInfo:
    """What the pipeline needs to know about one input raster."""

    path: str
    width: int
    height: int
    bands: int
    gt: tuple[float, ...]
    wkt: str
    dtype: np.dtype
    gdal_type: int
    nodata: float | None
    nbits: int | None
    descriptions: list[str]
    mask: str | None = None   # a mask of the file's own read as nodata (NaN): what it is (``masks.masked_view``)
    gcps: int = 0             # ground control points (georeferencing without a grid, unless it also has one)
    rpc: bool = False         # RPC coefficients: a raw image placed by a sensor model (no grid, unless it has one)

    @property
    def georeferenced(self) -> bool:
        return tuple(self.gt) != DEFAULT_GT or bool(self.wkt)

    @property
    def file_nodata(self) -> float | None:
        """The nodata value the file itself declares: None also when ``nodata`` is only the NaN a mask of the file's
        own (an alpha band, a .msk) is read as — its other pixels may still hold an undeclared fill of zeros."""
        return None if self.mask and self.nodata is not None and math.isnan(self.nodata) else self.nodata

    @property
    def rotated(self) -> bool:
        """Rotated or sheared beyond float noise (``geotransform.is_rotated``)."""
        return is_rotated(self.gt, self.width, self.height)


# the units an ENVI header's (or a band's) 'wavelength_units' item may give, in nm
_WAVELENGTH_UNITS = {"nm": 1.0, "nanometers": 1.0, "nanometer": 1.0, "nanometres": 1.0, "um": 1000.0, "µm": 1000.0,
                     "micrometers": 1000.0, "micrometer": 1000.0, "micrometres": 1000.0, "microns": 1000.0}


def band_label(band: gdal.Band) -> str:
    """A band's name: its description, else its central wavelength from its ``wavelength`` metadata item (GDAL's
    ENVI driver, an ENVI header's, with ``wavelength_units``; nm when none are given) as '478 nm', which
    ``bands.band_kind`` reads: QA, an ENVI MS with wavelengths and no band names got no band identity."""
    if band.GetDescription():   # the one place names are read from files: made valid text for every later use
        return gdal_text(band.GetDescription())
    items = {k.lower(): v for k, v in text_metadata(band).items()}
    unit = _WAVELENGTH_UNITS.get((items.get("wavelength_units") or "nm").strip().lower())
    try:
        value = float(items.get("wavelength", ""))
    except ValueError:
        return ""
    return f"{value * unit:g} nm" if unit and math.isfinite(value) and value > 0 else ""


def describe(ds: gdal.Dataset, path: str) -> RasterInfo:
    """Read the facts of an opened dataset."""
    b1 = ds.GetRasterBand(1)
    dtype = np.dtype(gdal.GetDataTypeName(b1.DataType).lower().replace("byte", "uint8"))
    return RasterInfo(
        path=path,
        width=ds.RasterXSize,
        height=ds.RasterYSize,
        bands=ds.RasterCount,
        gt=tuple(ds.GetGeoTransform(can_return_null=True) or DEFAULT_GT),
        wkt=ds.GetProjection() or "",
        dtype=dtype,
        gdal_type=b1.DataType,
        nodata=b1.GetNoDataValue(),
        nbits=product_nbits(ds),   # also through a VRT or NITF, which do not report it themselves
        descriptions=[band_label(ds.GetRasterBand(i + 1)) for i in range(ds.RasterCount)],
        gcps=ds.GetGCPCount(),
        rpc=bool(quiet_metadata(ds, "RPC")),
    )


def open_dataset(path: str, role: str) -> gdal.Dataset:
    """Open a raster read-only (any GDAL source: files, /vsi paths, subdatasets); InputError if GDAL cannot."""
    ds, msg = gdal_call(gdal.OpenEx, path, gdal.OF_RASTER | gdal.OF_READONLY) if path else (None, "")
    if ds is None:
        if not msg and path and not path.startswith("/vsi") and not os.path.exists(path):
            msg = "the file does not exist"    # GDAL says nothing here without OF_VERBOSE_ERROR
        msg = msg or "not a raster GDAL can read"
        if path and (path.startswith("/vsi") or os.path.exists(path)):
            msg += gdaldrivers.open_hint()   # QA: a valid GeoTIFF "not a raster GDAL can read" with GTiff skipped
        raise InputError(f"cannot open the {role} raster {quoted(path)}: {msg}")
    return ds


def check_bands(ds: gdal.Dataset, role: str, tname: str, path: str = "") -> None:
    """InputError for bands that cannot be fused as one image of intensities: spectral bands of different data
    types (a VRT stacking files: the output takes band 1's; an alpha band of its own type is fine, it becomes a
    mask), signed bytes (GDAL 3.6 stores them as Byte with PIXELTYPE=SIGNEDBYTE: its averaged reads and its tile
    reads disagree), and class indices through a colour table."""
    fix = "gdal_translate -ot {} (or Raster > Conversion > Translate in QGIS)"
    for i in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(i)
        other = gdal.GetDataTypeName(band.DataType)
        if other != tname and band.GetColorInterpretation() != gdal.GCI_AlphaBand:   # an alpha band is a mask
            raise InputError(f"the {role} raster's bands have different data types (band 1 {tname}, band {i} "
                             f"{other}): give it one type, e.g. " + fix.format("Float32"))
        if band.GetMetadataItem("PIXELTYPE", "IMAGE_STRUCTURE") == "SIGNEDBYTE":
            raise InputError(f"the {role} raster holds signed 8-bit values (band {i}), which this GDAL reads "
                             "inconsistently: convert it with " + fix.format("Int16"))
        if band.GetColorTable() is not None or band.GetColorInterpretation() == gdal.GCI_PaletteIndex:
            raise InputError(f"the {role} raster's band {i} holds palette indices (a colour table), not intensities: "
                             + palette_fix(band.GetColorTable(), role, path or dataset_name(ds)))


def _grey(table: gdal.ColorTable | None) -> bool:
    """Whether every entry of a colour table is a grey (red = green = blue): ``-expand gray`` then gives its values."""
    if table is None:
        return False
    entries = [table.GetColorEntry(k) for k in range(table.GetCount())]
    return all(e[0] == e[1] == e[2] for e in entries)


def palette_fix(table: gdal.ColorTable | None, role: str, path: str) -> str:
    """The commands that turn a paletted raster into intensities the fusion takes (tried, GDAL 3.6): a grey palette
    expands to its grey values (``-expand gray``); a colour palette to red, green and blue, which an MS can be but a
    PAN must be made one band of (``-expand gray`` there takes the red only, with a warning; QA: the advice was
    ``-expand rgb`` for a PAN too, then refused for its 3 bands). Raster > Conversion > Translate does the
    same in QGIS (its Additional command-line parameters)."""
    src = shell_arg(path)
    if _grey(table):
        dst = beside(path, "_gray.tif")
        return (f"its palette is grey, so expand it to its grey values: gdal_translate -expand gray {src} "
                f"{shell_arg(dst)} (or Raster > Conversion > Translate with -expand gray in its Additional "
                "command-line parameters)")
    rgb = beside(path, "_rgb.tif")
    expand = f"gdal_translate -expand rgb {src} {shell_arg(rgb)}"
    if role != "PAN":
        return f"give the image itself, expanded to red, green and blue: {expand}"
    dst = beside(path, "_gray.tif")
    calc = command(["gdal_calc.py", "-A", rgb, "--A_band=1", "-B", rgb, "--B_band=2", "-C", rgb, "--C_band=3",
                    "--calc=0.299*A+0.587*B+0.114*C", "--type=Float32", f"--outfile={dst}"])
    return (f"its palette has colours, and a PAN is one band of intensities: expand it to red, green and blue, "
            f"{expand}, then make one grey band of them, e.g. {calc} (or Raster > Raster Calculator)")


def _same_nodata(a: float | None, b: float | None) -> bool:
    return a == b or (a is not None and b is not None and math.isnan(a) and math.isnan(b))


# what an offset the fusion does not apply means for the ratio-based methods (band offsets and metadata offsets);
# BDSD-PC is fitted on centred data, so an offset leaves it unmoved (docs/VALIDATION.md, 2026-12-07 17:36)
RATIO_OFFSET = ("With an offset, the ratio-based methods (Brovey, MTF-GLP-HPM, KSDiff's base) take the stored zero for "
                "the physical one: convert to physical values first (e.g. Raster Calculator) for those.")


def declared_scaling(ds: gdal.Dataset, bands: list[int]) -> list[tuple[float, float]]:
    """(scale, offset) each band of ``bands`` (1-based) declares; (1.0, 0.0) where it declares none."""
    out = []
    for b in bands:
        band = ds.GetRasterBand(b)
        sc, off = band.GetScale(), band.GetOffset()
        out.append((sc if sc is not None else 1.0, off or 0.0))
    return out


def _scaled(pairs: list[tuple[float, float]]) -> bool:
    return any(sc != 1.0 or off != 0.0 for sc, off in pairs)


def band_value_notes(ds: gdal.Dataset, role: str, bands: list[int]) -> list[str]:
    """Warnings for band metadata the fusion does not follow (``bands``: 1-based, the ones fused, in order): nodata
    values that differ between the fused bands (the first one's is used). A scale/offset is ``scaling_note``'s to
    say, once for both inputs."""
    from .read import raster_dtype  # here: read imports this module

    notes = []
    nodatas = {b: ds.GetRasterBand(b).GetNoDataValue() for b in bands}
    first = nodatas[bands[0]] if bands else None
    if any(not _same_nodata(v, first) for v in nodatas.values()):
        # every fused band listed alike, as the QGIS layer's warning lists them (QA: band 2 left out, ';' beside ',');
        # the first fused band's value, not band 1's (QA140: MS_BANDS 3 was told band 1's 0 was used, not its 65535)
        dtype = raster_dtype(ds)
        listed = "; ".join(f"band {b}: {'none' if v is None else exact(v, dtype)}" for b, v in nodatas.items())
        used = "none" if first is None else exact(first, dtype)
        notes.append(f"The {role} raster's bands declare different nodata values ({listed}): band {bands[0]}'s, "
                     f"{used}, is used for every band, so the other bands' own nodata values are fused as data. Give "
                     "the bands one nodata value (e.g. gdal_translate -a_nodata).")
    return [n.strip() for n in notes]


def encoding_words(pair: tuple[float, float]) -> str:
    """A (scale, offset) as the log says it: 'x 0.0001 - 0.1' (not '+ -0.1'), 'x 0.05 + 0'."""
    scale, offset = pair
    return f"x {scale:g} {'-' if offset < 0 else '+'} {abs(offset):g}"


def pair_scaling_note(pan_ds: gdal.Dataset, ms_ds: gdal.Dataset, bands: list[int]) -> str | None:
    """A warning when the PAN and the fused MS bands (``bands``, 1-based) both declare a scale/offset and they differ,
    or both a unit type and they differ (a radiance PAN with a reflectance MS): the fusion works on the stored
    numbers and the output carries the MS's; None when they agree or one declares nothing."""
    pan_pair = declared_scaling(pan_ds, [1])[0]
    ms_pairs = declared_scaling(ms_ds, bands)
    said = []
    if _scaled([pan_pair]) and _scaled(ms_pairs) and any(p != pan_pair for p in ms_pairs):
        ms_text = ", ".join(dict.fromkeys(encoding_words(p) for p in ms_pairs))
        said.append(f"scales/offsets (PAN {encoding_words(pan_pair)}, MS {ms_text})")
    pan_unit = (pan_ds.GetRasterBand(1).GetUnitType() or "").strip()
    ms_units = [u for u in dict.fromkeys((ms_ds.GetRasterBand(b).GetUnitType() or "").strip() for b in bands) if u]
    if pan_unit and ms_units and any(u.lower() != pan_unit.lower() for u in ms_units):
        said.append(f"unit types (PAN '{pan_unit}', MS " + ", ".join(f"'{u}'" for u in ms_units) + ")")
    if not said:
        return None
    return (f"The PAN and the MS declare different {' and '.join(said)}: the fusion works on the stored numbers and "
            "the output carries the MS's scale/offset and unit type, so the PAN's detail enters in the MS's encoding "
            "only as far as the methods fit the PAN to the MS. Give both in one product level and encoding (e.g. "
            "both surface reflectance, gdal_translate -unscale to store physical values)")


def scaling_note(pan_ds: gdal.Dataset, ms_ds: gdal.Dataset, bands: list[int], mapped: str | None = None
                 ) -> tuple[str, bool] | None:
    """The one line on the scale/offset the PAN and the fused MS bands (``bands``, 1-based) declare, and whether it
    is a warning: ``mapped`` (the PAN was brought into the MS's encoding: what was done, ``pan_encoding``), a PAN and
    MS that declare different ones (``pair_scaling_note``), else the MS's or the PAN's own. An MS scale without an
    offset is an info line: the stored numbers are the physical ones times a gain, which no method minds; an offset
    is a warning (the ratio-based methods take the stored zero for the physical one). QA: one run on a PAN and an MS
    of different scales logged three overlapping warnings, and every scaled MS one even with offset 0."""
    ms_pairs = declared_scaling(ms_ds, bands)
    offset = any(off for _, off in ms_pairs)
    caveat = " " + RATIO_OFFSET if offset else ""
    if mapped:
        return (f"{mapped}, and the output carries the MS's scale/offset so QGIS reads it in the same "
                f"units.{caveat}", offset)
    pair = pair_scaling_note(pan_ds, ms_ds, bands)
    if pair:
        return pair + "." + caveat, True
    if _scaled(ms_pairs):
        role, scaled, carried = "MS", list(zip(bands, ms_pairs)), \
            "the output carries the same scale/offset so QGIS reads it in the same units"
    elif _scaled(declared_scaling(pan_ds, [1])):
        role, scaled, carried = "PAN", [(1, declared_scaling(pan_ds, [1])[0])], \
            "the output carries the MS's scale/offset and unit type, not the PAN's"
        offset = True   # the PAN's numbers are not the MS's: said as a warning
        caveat = " " + RATIO_OFFSET if scaled[0][1][1] else ""
    else:
        return None
    listed = ", ".join(f"band {b}: {encoding_words(pair)}" for b, pair in scaled if pair != (1.0, 0.0))
    return (f"The {role} raster's bands carry a scale/offset ({listed}): the fusion works on the stored numbers, "
            f"and {carried}.{caveat}", offset)


def open_raster(path: str, role: str) -> tuple[gdal.Dataset, RasterInfo]:
    """Open a raster for reading and prove it is readable (first and last block of every band)."""
    ds = open_dataset(path, role)
    if ds.RasterCount < 1:
        held = containers.subdatasets(ds)   # a GeoPackage of two tables, a NetCDF of several variables
        if held:
            raise InputError(containers.several_rasters_message(path, role, held))
        raise InputError(f"the {role} raster {quoted(path)} has no bands")
    tname = gdal.GetDataTypeName(ds.GetRasterBand(1).DataType)
    if tname not in SUPPORTED_TYPES:
        raise InputError(f"the {role} raster has data type {tname}, which pansharpening does not support")
    check_bands(ds, role, tname, path)
    for i in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(i)
        for x, y in ((0, 0), (ds.RasterXSize - 1, ds.RasterYSize - 1)):
            data, msg = gdal_call(band.ReadRaster, x, y, 1, 1)
            if data is None:
                raise InputError(f"the {role} raster {quoted(path)} is unreadable or truncated (band {i}): {msg}")
    return ds, describe(ds, path)
