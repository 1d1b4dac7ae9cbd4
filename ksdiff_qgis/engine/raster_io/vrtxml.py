"""A VRT's bands and the files behind them, read from its XML (one reader for the bit depth and the delivery logic)."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET

from ..gdalutil import is_vsi, read_bytes, vsi_folder, vsi_join

Source = tuple[ET.Element, str, int]   # (the source element, its file, its band: 0 for a mask band)


def band_sources(root: ET.Element, folder: str) -> list[tuple[ET.Element, list[Source]]]:
    """Per band (``VRTRasterBand`` child) of a ``VRTDataset`` element, the band element and its sources that name a
    file; relative file names are taken from ``folder`` (the VRT's: a /vsi one as GDAL joins it, ``gdalutil.vsi_join``),
    ``/vsi`` paths are kept as they are."""
    bands = []
    for band in root.findall("VRTRasterBand"):   # the dataset's bands, not those inside a <MaskBand>
        found = []
        for src in band:
            name = src.find("SourceFilename")
            if name is None or not (name.text or "").strip():
                continue
            file = name.text.strip()
            if not is_vsi(file):   # a relative name inside a /vsizip/ folder too, as GDAL resolves it
                file = vsi_join(folder, file) if name.get("relativeToVRT") == "1" else os.path.normpath(file)
            found.append((src, file, _band_number(src.findtext("SourceBand"))))
        bands.append((band, found))
    return bands


def _band_number(text: str | None) -> int:
    """A VRT source's band (1 when unsaid; 0 for a mask band, 'mask,1', which is no band of the file)."""
    text = (text or "1").strip()
    return int(text) if text.isdigit() else 0


MAX_VRT_BYTES = 64 << 20   # a VRT larger than this is no hand-built stack of band files: its sources are not read


def read_vrt(path: str) -> tuple[ET.Element, str] | None:
    """The ``VRTDataset`` element of the VRT file ``path`` and its folder (what relative sources are taken from),
    read through GDAL's VSI layer so a VRT inside a zip (/vsizip/...) or /vsimem/ is read as GDAL reads it; None
    when ``path`` is no readable VRT."""
    raw = read_bytes(path, MAX_VRT_BYTES + 1)
    if raw is None or len(raw) > MAX_VRT_BYTES:
        return None
    try:
        root = ET.fromstring(raw)
    except ET.ParseError:
        return None
    return (root, vsi_folder(path)) if root.tag == "VRTDataset" else None
