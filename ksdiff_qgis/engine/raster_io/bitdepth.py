"""The significant bits of an integer product (NBITS, e.g. WorldView's 11 bits in 16-bit samples) where its
container does not say them: a VRT over NBITS files (gdalbuildvrt, also -separate of band files), a NITF (its ABPP).

GDAL reports NBITS only for a GeoTIFF (or JPEG 2000) band that records it; without it the value range of the output
and a learned model's normalisation are the type's (0-65535), not the product's (0-2047).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from osgeo import gdal

from ..gdalutil import gdal_call, vsi_folder
from .vrtxml import band_sources

MAX_VRT_FILES = 500   # distinct source files opened to agree on NBITS: a larger mosaic is left as GDAL reports it
MAX_DEPTH = 4         # VRTs of VRTs
# sources that hand on their file's values unchanged (a ComplexSource may scale them or map them through a LUT:
# checked below); any other kind (KernelFilteredSource) or a derived band (pixel function) makes new values
_PLAIN_SOURCES = ("SimpleSource", "ComplexSource", "AveragedSource")
_INTEGER_TYPES = ("Byte", "UInt16", "Int16", "UInt32", "Int32")


def _own(band: gdal.Band) -> int | None:
    value = band.GetMetadataItem("NBITS", "IMAGE_STRUCTURE")
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _nitf_abpp(ds: gdal.Dataset, itemsize: int) -> int | None:
    """A NITF image's actual bits per pixel (ABPP) when fewer than its type's: GDAL keeps 11-bit samples in UInt16
    and says NITF_ABPP=11 in the dataset's metadata without NBITS."""
    for domain in ("", "IMAGE_STRUCTURE"):
        value = ds.GetMetadataItem("NITF_ABPP", domain)
        if value and value.strip().isdigit() and 0 < int(value) < itemsize * 8:
            return int(value)
    return None


def _plain(source: ET.Element) -> bool:
    """Whether a VRT source hands on its file's values unchanged (no scale, offset, LUT or filter)."""
    if source.tag not in _PLAIN_SOURCES or source.find("LUT") is not None:
        return False
    ratio, offset = source.findtext("ScaleRatio"), source.findtext("ScaleOffset")
    try:
        return float(ratio or 1) == 1.0 and float(offset or 0) == 0.0
    except ValueError:
        return False


def _vrt_sources(ds: gdal.Dataset, bands: list[int]) -> list[tuple[str, int]] | None:
    """(file, band) of every source of ``bands`` (1-based) of a VRT; None when one makes values of its own."""
    xml = ds.GetMetadata("xml:VRT")
    if not xml:
        return None
    try:
        root = ET.fromstring(xml[0])
    except ET.ParseError:
        return None
    out = []
    for n, (band, sources) in enumerate(band_sources(root, vsi_folder(ds.GetDescription() or "")), start=1):
        if int(band.get("band") or n) not in bands:
            continue
        if band.get("subClass"):        # a pixel function, raw file, pansharpened band...: values of its own
            return None
        plain = [s for s in band if s.tag.endswith("Source")]
        if not plain or len(plain) != len(sources) or not all(_plain(s) for s in plain):
            return None   # a source without a file (values of its own), or one that changes them
        out.extend((file, b) for _, file, b in sources)
    return out or None


def passes_values(ds: gdal.Dataset) -> bool:
    """Whether ``ds`` holds its files' values unchanged: no VRT, or a VRT whose every band's sources hand them on
    as they are (no scale, LUT, pixel function) — what its files' metadata (a DIMAP's NBITS, nodata) says of it."""
    driver = ds.GetDriver().ShortName if ds.GetDriver() else ""
    return driver != "VRT" or _vrt_sources(ds, list(range(1, ds.RasterCount + 1))) is not None


def _from_vrt(ds: gdal.Dataset, bands: list[int], depth: int) -> int | None:
    """The NBITS every source of ``bands`` of a VRT agrees on (sources of the VRT's own data type), else None."""
    sources = _vrt_sources(ds, bands)
    if sources is None or depth > MAX_DEPTH or len({p for p, _ in sources}) > MAX_VRT_FILES:
        return None
    dtype = ds.GetRasterBand(bands[0]).DataType
    opened: dict[str, gdal.Dataset | None] = {}
    found = set()
    for path, b in sources:
        if path not in opened:
            opened[path] = gdal_call(gdal.OpenEx, path, gdal.OF_RASTER | gdal.OF_READONLY)[0]
        src = opened[path]
        if src is None or not 1 <= b <= src.RasterCount or src.GetRasterBand(b).DataType != dtype:
            return None   # unreadable from here, or converted to another type (its range is not the source's)
        found.add(_nbits(src, [b], depth + 1))
        if len(found) > 1:
            return None
    return found.pop()


def _nbits(ds: gdal.Dataset, bands: list[int], depth: int) -> int | None:
    """The NBITS of ``bands`` (1-based): the first one's own, else their container's (a VRT's sources all
    agreeing, a NITF's ABPP)."""
    band = ds.GetRasterBand(bands[0])
    own = _own(band)
    if own or gdal.GetDataTypeName(band.DataType) not in _INTEGER_TYPES:
        return own
    driver = ds.GetDriver().ShortName if ds.GetDriver() else ""
    if driver == "VRT":
        return _from_vrt(ds, bands, depth)
    if driver == "NITF":
        return _nitf_abpp(ds, gdal.GetDataTypeSize(band.DataType) // 8)
    return None


def product_nbits(ds: gdal.Dataset) -> int | None:
    """The significant bits of ``ds``'s integer samples: band 1's NBITS; where its container does not record it, the
    NBITS the sources of all its bands (but an alpha band) agree on in a VRT, or a NITF's ABPP; None when unknown
    (the type's full range)."""
    bands = [b for b in range(1, ds.RasterCount + 1)
             if b == 1 or ds.GetRasterBand(b).GetColorInterpretation() != gdal.GCI_AlphaBand]
    return _nbits(ds, bands, 0)
