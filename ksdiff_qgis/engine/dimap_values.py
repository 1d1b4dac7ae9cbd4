"""What an Airbus DIMAP declares about its product's values that GDAL does not hand on: its NODATA special value and
its bit depth (NBITS), applied to the input the DIMAP describes however it was opened.

GDAL's DIMAP driver reports the DIM_*.XML's NBITS (Raster_Encoding) but no nodata value, and a product's JPEG2000
tiles, or a VRT mosaic of them, report neither: the same delivery gave three results (QA: a 12-bit product scaled by
2047 through its VRT, by 4095 through its DIM_*.XML; its ortho collar of zeros fused as data every way). The DIMAP
found for an input (``delivery.dimap_for``: the DIM_*.XML opened, or the one that names the opened tile or a VRT's
sources) now gives both wherever the raster itself declares none.

DIMAP V2 (Pléiades 1A/1B, SPOT 6/7, Pléiades Neo) lists them as Raster_Data/Raster_Display/Special_Value, each with a
SPECIAL_VALUE_TEXT (NODATA, SATURATED) and its value in SPECIAL_VALUE_COUNT (Airbus's tag name; so read by the ESA
SNAP Pléiades/SPOT 6-7 readers and ACOLITE); DIMAP V1 (SPOT 1-5) as Image_Display/Special_Value with
SPECIAL_VALUE_INDEX.
"""
from __future__ import annotations

import dataclasses
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np
from osgeo import gdal

from . import delivery
from .errors import InputError
from .feedback import Feedback
from .gdalutil import gdal_call, named_view
from .masks import declared_copy
from .metascan import MetadataScan
from .nodatacmd import exact
from .raster_io import RasterInfo, describe, open_dataset
from .raster_io.bitdepth import passes_values

VALUE_TAGS = ("SPECIAL_VALUE_COUNT", "SPECIAL_VALUE_INDEX")   # DIMAP V2's, V1's


def _child(node: ET.Element, name: str) -> str:
    for e in node:
        if delivery.xml_local(e.tag) == name and e.text and e.text.strip():
            return e.text.strip()
    return ""


def special_values(root: ET.Element) -> dict[str, float]:
    """The DIMAP's special values by name ('NODATA' -> 0.0, 'SATURATED' -> 4095.0); the first of each name."""
    found: dict[str, float] = {}
    for node in root.iter():
        if delivery.xml_local(node.tag) != "Special_Value":
            continue
        name = _child(node, "SPECIAL_VALUE_TEXT").upper()
        value = next((v for v in (_child(node, t) for t in VALUE_TAGS) if v), "")
        try:
            found.setdefault(name, float(value))
        except ValueError:
            continue   # a value that is no number (or missing): nothing to apply
    return found


def declared_nbits(root: ET.Element) -> int | None:
    """The bit depth the DIMAP's Raster_Encoding declares (NBITS), or None."""
    for node in root.iter():
        if delivery.xml_local(node.tag) == "Raster_Encoding":
            value = _child(node, "NBITS")
            return int(value) if value.isdigit() and int(value) > 0 else None
    return None


@dataclass(frozen=True)
class ProductValues:
    """What the DIMAP ``dimap`` declares of its product's values: its NODATA special value and NBITS (None: not
    declared)."""

    dimap: str
    nodata: float | None
    nbits: int | None


def product_values(ds: gdal.Dataset, info: RasterInfo, scan: MetadataScan) -> ProductValues | None:
    """The values the DIMAP that describes ``info.path`` declares, or None: no DIMAP, none readable, or a VRT that
    changes its files' values (a scale, a LUT: its numbers are no longer the product's)."""
    dimap = delivery.dimap_for(info.path, scan)
    root = scan.root(dimap) if dimap else None
    if root is None or "DIMAP" not in delivery.xml_local(root.tag).upper() or not passes_values(ds):
        return None
    found = ProductValues(dimap, special_values(root).get("NODATA"), declared_nbits(root))
    return found if found.nodata is not None or found.nbits is not None else None


def with_product_nbits(info: RasterInfo, values: ProductValues | None, role: str, fb: Feedback) -> RasterInfo:
    """``info`` with the DIMAP's NBITS when the raster declares none and its unsigned integer type holds more bits
    (a product's JP2 tile or a VRT of them: GDAL reports NBITS only for the DIM_*.XML), said in the log."""
    if values is None or not values.nbits or info.nbits or info.dtype.kind != "u":
        return info
    if values.nbits >= info.dtype.itemsize * 8:
        return info
    fb.info(f"the {role} raster's bit depth is {values.nbits} bits (values 0-{2 ** values.nbits - 1}): the NBITS of "
            f"{os.path.basename(values.dimap)}, the DIMAP that describes it (the raster declares none), as when the "
            "DIMAP itself is opened")
    return dataclasses.replace(info, nbits=values.nbits)


def _holds(dtype: np.dtype, value: float) -> bool:
    if dtype.kind == "f":
        return True
    lim = np.iinfo(dtype)
    return float(value).is_integer() and lim.min <= value <= lim.max


def with_product_nodata(ds: gdal.Dataset, info: RasterInfo, values: ProductValues | None, role: str,
                        fb: Feedback) -> tuple[gdal.Dataset, RasterInfo, bool]:
    """(dataset, info, applied): the DIMAP's NODATA special value declared on a virtual copy when the raster declares
    no nodata (the caller checks no layer value applies), so GDAL's own reads leave those pixels out too
    (``masks.with_nodata``); the raster itself otherwise."""
    if values is None or values.nodata is None or info.nodata is not None or not _holds(info.dtype, values.nodata):
        return ds, info, False
    vrt, declared = declared_copy(ds, info, values.nodata, f"the nodata value {exact(values.nodata)} of "
                                  f"{os.path.basename(values.dimap)} on the {role} raster")
    fb.info(f"the {role} raster's nodata value is {exact(values.nodata)}, the NODATA special value of "
            f"{os.path.basename(values.dimap)}, the DIMAP that describes it (the raster declares none): those pixels "
            "(the product's collar) are left out")
    return vrt, declared, True


def product_view(path: str, role: str, layer_nodata: float | None, scan: MetadataScan, fb: Feedback) -> gdal.Dataset:
    """``path`` opened as ksdiff:pansharpen reads it, for ksdiff:assess's readers (PAN, MS, REFERENCE): the DIMAP
    that describes it gives its NODATA special value when neither the raster nor its layer (``layer_nodata``) declares
    one, and its NBITS when the raster declares none, both on a virtual copy (the full scale and the type checks read
    NBITS from the dataset) and said with the fusion's lines; the raster itself when the DIMAP adds nothing."""
    ds = open_dataset(path, role)
    info = describe(ds, path)
    values = product_values(ds, info, scan)
    nbits = with_product_nbits(info, values, role, fb).nbits
    copied = False
    if layer_nodata is None:   # a layer's value wins, as in the fusion
        ds, info, copied = with_product_nodata(ds, info, values, role, fb)
    if nbits == info.nbits:
        return ds
    if not copied:   # never set metadata on the user's own dataset (a VRT file opened is written back)
        view, msg = gdal_call(gdal.Translate, "", ds, format="VRT")
        if view is None:
            raise InputError(f"cannot declare the bit depth {nbits} of {os.path.basename(values.dimap)} on the "
                             f"{role} raster: {msg}")
        ds = named_view(view, ds)
    for b in range(1, ds.RasterCount + 1):
        ds.GetRasterBand(b).SetMetadataItem("NBITS", str(nbits), "IMAGE_STRUCTURE")
    return ds
