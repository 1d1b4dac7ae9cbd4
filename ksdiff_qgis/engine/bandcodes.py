"""Landsat and Sentinel-2 band codes, read by one definition wherever they are written: a band description ('B4',
'B05'), or the end of a delivered file's name ('LC08_..._B4.TIF', 'T32TQM_..._B08_10m.jp2').

Landsat 4-7 and 8/9 number their bands B1 ... B11 (some tools pad them: B05); Sentinel-2 writes two characters
after the B: B01 ... B12 and B8A. What colour a number means is the mission's (``bands``: B4 is red on Landsat 8/9,
NIR on Landsat 4-7, Sentinel-2's B04 red).
"""
from __future__ import annotations

import os
import re
from typing import NamedTuple

CODE = r"B(?:1[0-2]|0[1-9]|[1-9]|8A)"   # B1 ... B12, padded B01 ... B09, B8A
_WHOLE = re.compile(CODE, re.IGNORECASE)
# at the end of a file name: Landsat's _B4 (_SR_B4), Sentinel-2's _B04 / _B8A, with its _10m resolution
_FILE_END = re.compile(rf"(?:^|[_\-.])({CODE})(?:_\d{{2}}m)?$", re.IGNORECASE)


class BandCode(NamedTuple):
    """A band code as written, upper case ('B4', 'B05', 'B8A')."""
    text: str

    @property
    def landsat(self) -> int | None:
        """The Landsat band number it can be (B1 ... B11, padded or not); None for B12 and B8A (Sentinel-2 only)."""
        digits = self.text[1:]
        return int(digits) if digits.isdigit() and 1 <= int(digits) <= 11 else None

    @property
    def sentinel2(self) -> str | None:
        """Its Sentinel-2 band, as the two characters Sentinel-2 writes ('04', '8a'); None for an unpadded code
        (B4: Sentinel-2 pads, so it says nothing about a Sentinel-2 band)."""
        return self.text[1:].lower() if len(self.text) == 3 else None


def parse(text: str) -> BandCode | None:
    """The band code ``text`` is, nothing around it but spaces ('b05 ' -> B05), or None ('B13', 'Band 4', 'B4 Red')."""
    m = _WHOLE.fullmatch((text or "").strip())
    return BandCode(m.group(0).upper()) if m else None


def of_file(file: str) -> str | None:
    """The band code a file name ends with ('..._B4.TIF' -> 'B4', Sentinel-2's '..._B04_10m.jp2' -> 'B04'), or None."""
    m = _FILE_END.search(os.path.splitext(os.path.basename(file))[0])
    return m.group(1).upper() if m else None
