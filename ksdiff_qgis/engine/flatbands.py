"""MS bands that hold one value wherever they have data (0: an empty band; any other: a constant band), and what the
chosen method makes of them.

QA: MS band 3 at 500 everywhere came out of MTF-GLP-HPM ranging 3–2047 (std 101), of Brovey 7–2047, of KSDiff
66–1578 — the PAN's texture in a band that has none — without a word, while an all-zero band was warned. A ratio
method multiplies the band by a PAN ratio (0 stays 0, any other value takes the PAN's detail); GSA and MTF-GLP-FS
inject detail with a gain regressed on the band, 0 for a band without variation; EXP injects none; a learned model
draws the PAN's detail into any band it fuses.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import labels
from .classical import BEST_CLASSICAL, RATIO_METHODS
from .errors import shown_name
from .raster_io import RasterInfo, is_nodata

Flat = tuple[tuple[int, float], ...]   # (0-based MS band, its one value)


def band_list(bands: list[int], ms: RasterInfo, numbers: list[int] | None = None) -> str:
    """'band 4 (NIR) is' / 'bands 3 (Red), 4 (NIR) are' from 0-based positions in ``ms``. ``numbers``: the file's
    1-based number of each band of ``ms`` (``BandPlan.indices`` of a view MS_BANDS cut; None: ``ms`` is the file),
    the numbers the user sees and MS_BANDS takes."""
    named = [band_name(b, ms, numbers) for b in bands]
    return f"band {named[0]} is" if len(named) == 1 else f"bands {', '.join(named)} are"


def band_name(band: int, ms: RasterInfo, numbers: list[int] | None = None) -> str:
    """'4 (NIR)': the 0-based ``band`` of ``ms`` by its file number (``file_number``) and its name, if any."""
    name = ms.descriptions[band]
    return f"{file_number(band, numbers)}" + (f" ({shown_name(name)})" if name else "")


def file_number(band: int, numbers: list[int] | None) -> int:
    """The file's 1-based number of the 0-based ``band`` of a view holding the file's bands ``numbers`` (None:
    all of them, in order)."""
    return numbers[band] if numbers else band + 1


def flat_bands(ms_lr: np.ndarray, ms: RasterInfo) -> Flat:
    """The MS bands of the sample ``ms_lr`` (C, ...) that hold one value wherever they have data (nodata and
    non-finite values left out), with that value; () when none does."""
    flat = []
    for b in range(ms.bands):
        v = ms_lr[b][np.isfinite(ms_lr[b])]
        if ms.nodata is not None:
            v = v[~is_nodata(v, ms.nodata, ms.dtype)]
        if v.size and v.min() == v.max():
            flat.append((b, float(v.flat[0])))
    return tuple(flat)


def _gets_pan_detail(method: str, band: int, value: float, model: list[int] | None) -> bool:
    """Whether ``method`` writes the PAN's detail into a band of one ``value`` (``model``: the bands a learned
    model fuses, None: all; the others go to ``BEST_CLASSICAL``)."""
    if method == "ksdiff":
        if model is None or band in model:
            return True
        method = BEST_CLASSICAL
    return method in RATIO_METHODS and value != 0


def flat_band_note(method: str, flat: Flat, ms: RasterInfo, model: list[int] | None = None,
                   numbers: list[int] | None = None, written: Callable[[float], float] | None = None) -> str | None:
    """The warning for the ``flat`` bands (``flat_bands``) under ``method`` (the one that fuses): which bands hold
    one value, which of them the method fills with the PAN's detail and which it keeps. None when there are none.
    ``numbers``: the file's number of each band of ``ms`` (``band_list``). ``written``: the value the output stores
    for a kept one (a value equal to the output's nodata is moved one step off it); None: as it is."""
    if not flat:
        return None
    values = dict(flat)
    zero = [b for b, v in flat if v == 0]
    constant = [b for b, v in flat if v != 0]
    said = []
    if zero:
        said.append(f"MS {band_list(zero, ms, numbers)} 0 everywhere on the scene "
                    f"({_verb(zero, 'an empty band', 'empty bands')})")
    if constant:
        kind = _verb(constant, "a constant band", "constant bands")
        said.append(f"MS {_bands(constant, ms, numbers)} {_verb(constant, 'holds', 'hold')} one value everywhere "
                    f"on the scene ({_values(constant, values)}: {kind})")
    name = labels.method(method)
    textured = [b for b, v in flat if _gets_pan_detail(method, b, v, model)]
    kept = [b for b, _ in flat if b not in textured]
    mixed = bool(textured) and bool(kept)   # name the bands of each effect only when they differ
    effects = []
    if textured:
        them = _bands(textured, ms, numbers) if mixed else _verb(textured, "it", "them")
        how = f"puts the PAN's detail into {them}" if method == "ksdiff" else \
            f"multiplies {them} by a PAN ratio, which puts the PAN's detail into {_verb(textured, 'it', 'them')}"
        effects.append(f"{name} {how}: texture {_verb(textured, 'that band does', 'those bands do')} not have")
    if kept:
        them = _bands(kept, ms, numbers) if mixed else _verb(kept, "it", "them")
        effects.append(f"{'it' if mixed else name} keeps {them} at {_values(kept, values)}"
                       + _moved([values[b] for b in kept], written))
    listed = [b for b, _ in flat]   # the advice speaks of every band the warning lists
    advice = f"leave {_verb(listed, 'it', 'them')} out with MS bands to fuse (MS_BANDS)"
    if textured and constant:
        advice += (", or fuse with GSA or MTF-GLP-FS, which keep "
                   + _verb(textured, "such a band at its value", "such bands at their values"))
    elif textured:
        advice += (f", or fuse with a classical method, which keeps {_verb(textured, 'it', 'them')} at 0"
                   + _moved([0.0], written))
    return (f"{'; '.join(said)}: {'; '.join(effects)}. If {_verb(listed, 'the band', 'the bands')} should hold data, "
            f"check the MS; else {advice}.")


def _moved(kept: list[float], written: Callable[[float], float] | None) -> str:
    """' (0 is the output's nodata value: written as 1)' for the kept values the writer moves off nodata, or ''
    (QA119: 'keeps it at 0' beside a band written as all 1s)."""
    moved = {v: written(v) for v in kept if written is not None and written(v) != v}
    return "".join(f" ({v:g} is the output's nodata value: written as {w:g})" for v, w in moved.items())


def _verb(bands: list[int], one: str, many: str) -> str:
    """``one`` for a single band, else ``many``."""
    return one if len(bands) == 1 else many


def _bands(bands: list[int], ms: RasterInfo, numbers: list[int] | None) -> str:
    """'band 3 (Red)' / 'bands 3 (Red), 4 (NIR)'."""
    return band_list(bands, ms, numbers).rsplit(" ", 1)[0]


def _values(bands: list[int], values: dict[int, float]) -> str:
    """'500' / '500, 0' in the order of ``bands``."""
    return ", ".join(f"{values[b]:.6g}" for b in bands)
