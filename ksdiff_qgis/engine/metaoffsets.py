"""Offsets an input's product metadata declare but its bands do not carry: warned, not applied.

A Sentinel-2 L2A product since processing baseline 04.00 stores reflectance x 10000 + 1000: GDAL's SENTINEL2 driver,
and the GeoTIFFs made from it, carry ``BOA_ADD_OFFSET_Bn=-1000`` and ``BOA_QUANTIFICATION_VALUE=10000`` as dataset
metadata (``RADIO_ADD_OFFSET_Bn`` for L1C) with no band offset. A Landsat Collection 2 MTL gives
``REFLECTANCE_ADD_BAND_n`` and ``RADIANCE_ADD_BAND_n``. The fusion works on the stored numbers either way; as for a
band's own offset (``raster_io.band_value_notes``), the ratio-based methods then take the stored zero for the
physical one, which the user should hear (QA: a declared band offset was warned, these were not).
"""
from __future__ import annotations

import os
import re

from osgeo import gdal

from . import delivery
from .gdalutil import gdal_call, text_metadata
from .metascan import MetadataScan
from .raster_io import RATIO_OFFSET, declared_scaling

_S2_OFFSET = re.compile(r"^(BOA|RADIO)_ADD_OFFSET_B\w+$", re.IGNORECASE)
_S2_QUANT = ("BOA_QUANTIFICATION_VALUE", "QUANTIFICATION_VALUE")
_MTL_ADD = re.compile(r'"?((?:REFLECTANCE|RADIANCE)_ADD_BAND_\w+)"?\s*[=:]\s*"?(-?[\d.]+(?:[eE][-+]?\d+)?)"?')


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _natural(key: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key)]


def _listed(found: dict[str, float]) -> str:
    """'BOA_ADD_OFFSET_B0 … BOA_ADD_OFFSET_B12: -1000' or 'REFLECTANCE_ADD_BAND_1: -0.1': keys of one value grouped,
    in natural order."""
    groups: dict[float, list[str]] = {}
    for key in sorted(found, key=_natural):
        groups.setdefault(found[key], []).append(key)
    return "; ".join((keys[0] if len(keys) == 1 else f"{keys[0]} … {keys[-1]}") + f": {value:g}"
                     for value, keys in groups.items())


def _s2_items(ds: gdal.Dataset) -> dict[str, str]:
    """The Sentinel-2 offset and quantification items of the dataset's (and its bands') default metadata."""
    items = text_metadata(ds)   # a value that is not UTF-8 comes back from GDAL as bytes
    for b in range(1, ds.RasterCount + 1):
        items.update(text_metadata(ds.GetRasterBand(b)))
    return {k: v for k, v in items.items() if _S2_OFFSET.match(k) or k.upper() in _S2_QUANT}


def _source_files_items(path: str) -> list[tuple[str, dict[str, str]]]:
    """(file, ``_s2_items``) of each of a VRT's source files (``delivery.input_files``, the lookup that names its
    bands); [] for another file."""
    per_file = []
    for file in delivery.input_files(path)[1:]:
        ds, _ = gdal_call(gdal.OpenEx, file, gdal.OF_RASTER | gdal.OF_READONLY)
        per_file.append((file, _s2_items(ds) if ds is not None else {}))
    return per_file


def _agreed(per_file: list[tuple[str, dict[str, str]]]) -> dict[str, str] | None:
    """The items all the files share; None when they disagree: one holds none while another does, or two give a key
    different values (a mosaic of a processing baseline 04.00 tile, -1000, beside an older one)."""
    if per_file and not all(items for _, items in per_file):
        return None if any(items for _, items in per_file) else {}
    found: dict[str, str] = {}
    for _, items in per_file:
        for k, v in items.items():
            if found.setdefault(k, v) != v:
                return None
    return found


def source_items(path: str) -> dict[str, str]:
    """The Sentinel-2 offset and quantification items of a VRT's source files (``_source_files_items``); {} for
    another file, and when the sources disagree (``_agreed``; ``disagreement_note`` says so).
    gdalbuildvrt copies no metadata: a stack of L2A band files lost their offset, neither warned nor written to the
    output (QA137)."""
    return _agreed(_source_files_items(path)) or {}


def _file_offsets(items: dict[str, str]) -> dict[str, float]:
    """The non-zero Sentinel-2 offsets among ``items``, by key."""
    found = {k.upper(): _number(v) for k, v in items.items() if _S2_OFFSET.match(k)}
    return {k: v for k, v in found.items() if v}


DISAGREE_SHOWN = 3   # source files named in the warning, one per offset value found; the others counted


def disagreement_note(path: str, role: str) -> str | None:
    """A warning when a VRT's source files disagree on their Sentinel-2 offset (``_agreed``: one declares -1000,
    another nothing or another value): its values then mix encodings, and nothing is carried to the output (QA142:
    the warning went with the items). Names a file of each offset value found."""
    per_file = [(os.path.basename(f), _file_offsets(items)) for f, items in _source_files_items(path)]
    if _agreed([(f, {k: f"{v:g}" for k, v in off.items()}) for f, off in per_file]) is not None:
        return None
    shown: dict[frozenset, str] = {}   # by the offset values a file declares (band files differ by key only)
    for name, off in per_file:
        if len(shown) < DISAGREE_SHOWN:
            shown.setdefault(frozenset(off.values()), f"{name}: {_listed(off) if off else 'none'}")
    more = len(per_file) - len(shown)
    listed = "; ".join(shown.values()) + (f"; {more} more file{'s' * (more > 1)}" if more else "")
    return (f"The {role} raster's source files disagree on their Sentinel-2 offset ({listed}): its values mix "
            "encodings (e.g. processing baselines before and from 04.00), the fusion works on them as stored, and the "
            "output declares no offset. Build the mosaic from files of one baseline, or bring them to one first.")


def _items(ds: gdal.Dataset, path: str) -> dict[str, str]:
    """``_s2_items`` of the dataset, with those of its VRT's sources (``source_items``) it lacks."""
    return {**(source_items(path) if path else {}), **_s2_items(ds)}


def s2_offsets(ds: gdal.Dataset, path: str = "") -> dict[str, float]:
    """The non-zero Sentinel-2 offsets in the dataset's (or its bands') default metadata, by key; with ``path``, a
    VRT's, those of its source files too (``source_items``)."""
    return _file_offsets(_items(ds, path))


def carry_source_items(dst: gdal.Dataset, path: str) -> None:
    """Give the output ``dst`` the Sentinel-2 offset items of a VRT MS's source files (``source_items``) that its
    own metadata (``outputs.copy_metadata``) did not give it: the fused values keep the stored encoding."""
    bands = [dst.GetRasterBand(b) for b in range(1, dst.RasterCount + 1)]
    if any((band.GetOffset() or 0.0) != 0.0 or (band.GetScale() or 1.0) != 1.0 for band in bands):
        return   # the MS declares its own scale/offset, which the output keeps: that is what its values mean
    missing = {k: v for k, v in source_items(path).items() if dst.GetMetadataItem(k) is None}
    if missing:
        gdal_call(dst.SetMetadata, {**text_metadata(dst), **missing})


def mtl_offsets(path: str, scan: MetadataScan) -> tuple[str | None, dict[str, float]]:
    """(the MTL's name, its non-zero REFLECTANCE_/RADIANCE_ADD_BAND_n values) of the Landsat MTL that names
    ``path`` (``delivery.metadata_files``); (None, {}) without one."""
    naming, _ = delivery.metadata_files(path, scan)
    for side in naming:
        if "MTL" in os.path.basename(side).upper():
            found = {m.group(1).upper(): _number(m.group(2)) for m in _MTL_ADD.finditer(scan.text(side))}
            found = {k: v for k, v in found.items() if v}
            if found:
                return os.path.basename(side), found
    return None, {}


def metadata_offset_note(ds: gdal.Dataset, path: str, role: str, scan: MetadataScan) -> str | None:
    """A warning when ``role``'s product metadata declare an offset (``s2_offsets``, ``mtl_offsets``) and its bands
    carry none (a band offset is ``band_value_notes``'s to say); None otherwise. Nothing is applied."""
    if any(off for _, off in declared_scaling(ds, list(range(1, ds.RasterCount + 1)))):
        return None
    items = _items(ds, path)   # a VRT's source files read once here
    found, source, quant_text = _file_offsets(items), "metadata", ""
    if not found and path:
        mixed = disagreement_note(path, role)
        if mixed:
            return mixed
    if found:
        items = {k.upper(): v for k, v in items.items()}
        quant_key = next((k for k in _S2_QUANT if _number(items.get(k))), None)
        if quant_key:
            quant, value = _number(items[quant_key]), next(iter(found.values()))
            quant_text = f"; with {quant_key} {quant:g}: reflectance = (value {value:+g}) / {quant:g}"
    else:
        source, found = mtl_offsets(path, scan)
        if not found:
            return None
    return (f"The {role} raster's {source} declares an offset its bands do not carry ({_listed(found)}{quant_text}): "
            f"the fusion works on the stored numbers and does not apply it. {RATIO_OFFSET}")
