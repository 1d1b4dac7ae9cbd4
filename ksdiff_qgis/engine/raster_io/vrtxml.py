"""A VRT's bands and the files behind them, read from its XML (one reader for the bit depth and the delivery logic)."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET

Source = tuple[ET.Element, str, int]   # (the source element, its file, its band: 0 for a mask band)


def band_sources(root: ET.Element, folder: str) -> list[tuple[ET.Element, list[Source]]]:
    """Per band (``VRTRasterBand`` child) of a ``VRTDataset`` element, the band element and its sources that name a
    file; relative file names are taken from ``folder`` (the VRT's), ``/vsi`` paths are kept as they are."""
    bands = []
    for band in root.findall("VRTRasterBand"):   # the dataset's bands, not those inside a <MaskBand>
        found = []
        for src in band:
            name = src.find("SourceFilename")
            if name is None or not (name.text or "").strip():
                continue
            file = name.text.strip()
            if not file.startswith("/vsi"):
                file = os.path.normpath(os.path.join(folder, file) if name.get("relativeToVRT") == "1" else file)
            found.append((src, file, _band_number(src.findtext("SourceBand"))))
        bands.append((band, found))
    return bands


def _band_number(text: str | None) -> int:
    """A VRT source's band (1 when unsaid; 0 for a mask band, 'mask,1', which is no band of the file)."""
    text = (text or "1").strip()
    return int(text) if text.isdigit() else 0
