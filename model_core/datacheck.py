"""A config's data checked before anything is trained or scored, and the generic sensor's layout taken from it.

Every raster a config names must exist; a pair's PAN and MS must be georeferenced, in one CRS and overlap (in two
CRSs it trained to the end on crops of two places), their pixel-size ratio must be the sensor's (``scenes.align_pan``
crops with the sensor's ratio: on data of another ratio it trained silently on misaligned crops) and the MS band
count the sensor's (a numpy broadcast error came far into the data preparation). ``sensor: generic`` (a sensor not
in the table) takes its band count, ratio and value scale from the data instead (``model.ratio``, when given, must
agree with the data), with its MTF gains (``mtf_ms`` / ``mtf_pan``, else the generic ones); the resolved layout
travels in the config as ``data_layout`` (and so in every checkpoint). Headers only are read, except for the generic
sensor's value scale. Every problem is one ``ValueError`` (a missing raster: ``FileNotFoundError``) naming the
source and what to change.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ksdiff_qgis.engine.sensors import get_sensor

from .config import data_root

RATIO_TOLERANCE = 0.02   # relative: georeference rounding (WorldView-2: 4.0003) is no other ratio


def sources(cfg: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, source) of every raster pair or MS a config names: ``data.train[i]``, ``data.val[i]``,
    ``data.fullres.sources[i]``, ``test.reduced``, ``test.full`` (its ``kind`` taken as ``pair``)."""
    d = cfg.get("data", {})
    for split in ("train", "val"):
        for i, s in enumerate(d.get(split) or []):
            yield f"data.{split}[{i}]", s
    for i, s in enumerate((d.get("fullres") or {}).get("sources") or []):
        yield f"data.fullres.sources[{i}]", dict(s, kind="pair")
    test = cfg.get("test") or {}
    if test.get("reduced"):
        yield "test.reduced", test["reduced"]
    if test.get("full"):
        yield "test.full", dict(test["full"], kind="pair")


def _path(root: Path, spec: dict[str, Any], rel: str, where: str, role: str) -> Path:
    base = Path(spec["root"]) if "root" in spec else root
    path = base / rel
    if not path.is_file():
        hint = "" if Path(rel).is_absolute() else (
            f" (a relative path is read under the data root {base}: the source's root, else data.root, else "
            f"$KSDIFF_DATA or ~/.cache/ksdiff/data; `make data` fetches the project's imagery into "
            f"$KSDIFF_DATA (point KSDIFF_DATA at the folder that holds it); give an absolute path for your own data)")
        raise FileNotFoundError(f"{where}: the {role} raster {path} does not exist{hint}")
    return path


def _ratio(pan, ms, where: str) -> int:
    """The whole PAN/MS pixel-size ratio of two raster headers (``rasters.describe``)."""
    rx, ry = abs(ms.transform.a / pan.transform.a), abs(ms.transform.e / pan.transform.e)
    r = round(rx)
    if r < 1 or abs(rx - r) > RATIO_TOLERANCE * r or abs(ry - r) > RATIO_TOLERANCE * r:
        raise ValueError(f"{where}: the MS pixel is {rx:.4g} x {ry:.4g} PAN pixels; training needs a whole PAN/MS "
                         "ratio (resample the MS onto a whole multiple of the PAN pixel)")
    return r


def _bounds(meta) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of a raster header's extent, whatever the signs of its pixel sizes."""
    xs = [meta.transform.c, meta.transform.c + meta.transform.a * meta.width]
    ys = [meta.transform.f, meta.transform.f + meta.transform.e * meta.height]
    return min(xs), min(ys), max(xs), max(ys)


def _check_geometry(pan, ms, pan_path: Path, ms_path: Path, where: str) -> None:
    """A pair is cut into aligned crops by pixel: both rasters must be placed (a geotransform), in one CRS, and
    overlap. A PAN and MS in different CRSs (UTM 31N beside 32N) used to train to the end on crops of two different
    places. Raises ValueError naming the source and the fix."""
    from affine import Affine

    from ksdiff_qgis.engine.grid import crs_name, same_crs

    for role, meta, path in (("PAN", pan, pan_path), ("MS", ms, ms_path)):
        if meta.transform == Affine.identity():
            raise ValueError(f"{where}: the {role} {path.name} is not georeferenced (no geotransform): give it the "
                             "geotransform and CRS of its product, e.g. gdal_translate -a_ullr / -a_srs")
    if not same_crs(pan.crs, ms.crs):
        raise ValueError(f"{where}: the PAN {pan_path.name} is in {crs_name(pan.crs)}, the MS {ms_path.name} in "
                         f"{crs_name(ms.crs)}; a pair is cropped pixel by pixel in one CRS: reproject the MS onto "
                         f"the PAN's CRS (gdalwarp -t_srs), or assign the right CRS if one is mislabelled "
                         "(gdal_translate -a_srs)")
    (pl, pb, pr, pt), (ml, mb, mr, mt) = _bounds(pan), _bounds(ms)
    if min(pr, mr) <= max(pl, ml) or min(pt, mt) <= max(pb, mb):
        raise ValueError(f"{where}: the PAN {pan_path.name} and the MS {ms_path.name} do not overlap (PAN x "
                         f"{pl:.10g}..{pr:.10g}, y {pb:.10g}..{pt:.10g}; MS x {ml:.10g}..{mr:.10g}, y "
                         f"{mb:.10g}..{mt:.10g}): give the MS of the same scene")


def _bands(ms, spec: dict[str, Any], where: str) -> int:
    """The MS bands a source gives the network: its own, or the rows of its ``ms_mix``."""
    mix = spec.get("ms_mix")
    if mix is None:
        return ms.count
    from .data.scenes import BAND_MIXES

    m = np.asarray(BAND_MIXES[mix] if isinstance(mix, str) else mix, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] != ms.count:
        raise ValueError(f"{where}: ms_mix is a {m.shape} matrix; the MS has {ms.count} bands (bands x {ms.count})")
    return m.shape[0]


def survey(cfg: dict[str, Any], parts: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """Per source (of those whose place starts with one of ``parts``, default all): where, the source, the MS path
    and header, the PAN's (None for a simulated source), the measured ratio (None without a PAN) and the band count.
    Raises for a missing raster or a PAN with more than one band."""
    from .rasters import describe

    root, out = data_root(cfg), []
    for where, spec in sources(cfg):
        if parts and not where.startswith(parts):
            continue
        for key in ("match", "match_pan"):   # reference rasters whose statistics a source is mapped to
            for rel in spec.get(key) or []:
                _path(root, spec, rel, where, f"{key} reference")
        ms_path = _path(root, spec, spec["ms"], where, "MS")
        ms = describe(ms_path)
        row = {"where": where, "spec": spec, "ms_path": ms_path, "ms": ms, "pan_path": None, "pan": None,
               "ratio": None, "bands": _bands(ms, spec, where)}
        if spec.get("kind") == "simulated":
            n = len(spec.get("pan_weights") or [])
            if n != ms.count:
                raise ValueError(f"{where}: pan_weights has {n} weights; the MS {ms_path} has {ms.count} bands")
        elif spec.get("pan"):
            row["pan_path"] = _path(root, spec, spec["pan"], where, "PAN")
            row["pan"] = pan = describe(row["pan_path"])
            if pan.count != 1:
                raise ValueError(f"{where}: the PAN {row['pan_path']} has {pan.count} bands, a PAN has one (PAN and "
                                 "MS swapped?)")
            _check_geometry(pan, ms, row["pan_path"], ms_path, where)
            row["ratio"] = _ratio(pan, ms, where)
        out.append(row)
    return out


def card_layout(card: dict[str, Any]) -> dict[str, Any]:
    """A generic model card's layout as a config's ``data_layout``: what scoring it on a generic config needs."""
    layout = {"bands": len(card["bands"]), "band_names": list(card["bands"]), "ratio": int(card["ratio"]),
              "scale": float(card["scale"]), "how": card.get("sensor_layout") or "from the model card"}
    if card.get("mtf"):   # the gains it was trained with (cards before 2026-12-07: the generic ones)
        layout.update(mtf_ms=list(card["mtf"]["ms"]), mtf_pan=float(card["mtf"]["pan"]))
    return layout


def _expected_ratio(row: dict[str, Any], ratio: int) -> int:
    """The PAN/MS ratio a source's rasters must have: its own ``pan_ratio`` (Landsat 8's real PAN in a ratio-4
    triple), else the sensor's."""
    return int(row["spec"].get("pan_ratio") or ratio) if row["where"] != "test.full" else ratio


def value_scale(rows: list[dict[str, Any]]) -> tuple[float, str]:
    """The generic sensor's value scale, and how it was found: the training rasters' NBITS, their 8-bit range, else
    the smallest 2**k - 1 at or above their largest value (a 12-bit product without NBITS: 4095)."""
    from .rasters import read

    train = [r for r in rows if r["where"].startswith("data.train")] or rows
    metas = [m for r in train for m in (r["ms"], r["pan"]) if m is not None]
    nbits = [m.nbits for m in metas if m.nbits]
    if nbits:
        return float(2 ** max(nbits) - 1), f"NBITS {max(nbits)} of the training rasters"
    if all(m.dtype == np.uint8 for m in metas):
        return 255.0, "8-bit training rasters"
    top = max(float(np.nanmax(read(p).data)) for r in train for p in (r["ms_path"], r["pan_path"]) if p is not None)
    bits = max(1, math.ceil(math.log2(top + 1))) if top > 0 else 1
    return float(2 ** bits - 1), f"the training rasters' largest value {top:g} (no NBITS): {bits}-bit"


def checked(cfg: dict[str, Any], parts: tuple[str, ...] | None = None) -> dict[str, Any]:
    """``cfg`` after its data (the sources whose place starts with one of ``parts``, e.g. ``("test.",)``; default
    all) passed the checks; for ``sensor: generic`` a copy with ``data_layout`` (bands, ratio, scale, band names, how
    they were found) and ``model.ratio`` set, unless it has its layout already (a checkpoint's, a card's): then the
    data must fit that. Raises ``ValueError`` / ``FileNotFoundError`` (one line each). PanCollection files
    (``data.pancollection``) are checked by ``check_pancollection``."""
    if "pancollection" in cfg.get("data", {}) and (not parts or "data.pancollection".startswith(parts)):
        check_pancollection(cfg)
    from .config import sensor_spec

    sensor = sensor_spec(cfg) if cfg.get("data_layout") else get_sensor(cfg["sensor"])
    rows = survey(cfg, parts)
    given = cfg.get("model", {}).get("ratio")
    fix = "choose the sensor of your data, or `sensor: generic` (bands, ratio and scale from the data)"
    if not sensor.generic:
        if given is not None and int(given) != sensor.ratio:
            raise ValueError(f"model.ratio {given} differs from sensor {sensor.key}'s ratio {sensor.ratio}")
        for row in rows:
            want = _expected_ratio(row, sensor.ratio)
            if row["ratio"] is not None and row["ratio"] != want:
                raise ValueError(f"{row['where']}: the data's PAN/MS ratio is {row['ratio']} ({row['pan_path'].name} "
                                 f"{row['pan'].transform.a:g}, {row['ms_path'].name} {row['ms'].transform.a:g} per "
                                 f"pixel); sensor {sensor.key} has ratio {want}: {fix}")
            if row["bands"] != sensor.n_bands:
                raise ValueError(f"{row['where']}: the MS {row['ms_path'].name} has {row['bands']} bands; sensor "
                                 f"{sensor.key} has {sensor.n_bands} ({', '.join(sensor.band_names)}): {fix}")
        return cfg
    return _generic(cfg, rows, given)


def check_pancollection(cfg: dict[str, Any]) -> None:
    """``data.pancollection: {train, val}``: HDF5 files that exist and are PanCollection's (``PanCollection``), with
    reduced-resolution samples (``gt``), the sensor's MS bands and ratio; instead of ``data.train`` / ``data.val``,
    not beside them, and for a sensor of the table (the files carry no value scale to measure). Raises ValueError /
    FileNotFoundError naming the file and what to change."""
    from .data.pancollection import PanCollection, files

    d = cfg["data"]
    pc = d["pancollection"]
    if not isinstance(pc, dict) or not pc.get("train"):
        raise ValueError("data.pancollection: give the files as {train: train.h5, val: valid.h5} (val optional)")
    if d.get("train") or d.get("val"):
        raise ValueError("data.pancollection and data.train / data.val both give the training data: keep one")
    sensor = get_sensor(cfg["sensor"])
    if sensor.generic:
        raise ValueError("data.pancollection: sensor generic measures its value scale on GeoTIFF rasters; give the "
                         "sensor the PanCollection files come from (wv3, wv2, qb, gf2, …)")
    for split, path in files(pc, data_root(cfg)).items():
        where = f"data.pancollection.{split}"
        if not path.is_file():
            raise FileNotFoundError(f"{where}: the PanCollection file {path} does not exist (a relative path is read "
                                    f"under the data root {data_root(cfg)})")
        f = PanCollection(path, sensor.scale)
        if not f.has_gt:
            raise ValueError(f"{where}: {path.name} has no gt (a full-resolution test file?); training reads the "
                             "reduced-resolution files, whose gt is the reference")
        if f.bands != sensor.n_bands:
            raise ValueError(f"{where}: {path.name} has {f.bands} MS bands; sensor {sensor.key} has "
                             f"{sensor.n_bands} ({', '.join(sensor.band_names)}): give the sensor of the file")
        if f.ratio != sensor.ratio:
            raise ValueError(f"{where}: {path.name}'s PAN/MS ratio is {f.ratio}; sensor {sensor.key} has ratio "
                             f"{sensor.ratio}: give the sensor of the file")


def _generic(cfg: dict[str, Any], rows: list[dict[str, Any]], given: int | None) -> dict[str, Any]:
    """``checked`` for the generic sensor: one band count and one ratio over every source, ``model.ratio`` agreeing."""
    if not rows:
        raise ValueError("sensor generic: the config names no data to take the bands and the ratio from")
    bands = {row["bands"] for row in rows}
    if len(bands) != 1:
        raise ValueError("sensor generic: the sources' MS have different band counts ("
                         + ", ".join(f"{r['where']} {r['bands']}" for r in rows) + "); one model fuses one layout")
    measured = {row["where"]: row["ratio"] for row in rows
                if row["ratio"] is not None and "pan_ratio" not in row["spec"]}
    ratios = set(measured.values())
    if len(ratios) > 1:
        raise ValueError("sensor generic: the sources' PAN/MS ratios differ ("
                         + ", ".join(f"{w} {r}" for w, r in measured.items()) + "); one model fuses one ratio")
    if given is not None and ratios and int(given) not in ratios:
        raise ValueError(f"sensor generic: model.ratio is {given}, the data's PAN/MS ratio is {ratios.pop()} "
                         f"({', '.join(measured)}): remove model.ratio or correct it")
    if given is None and not ratios:
        raise ValueError("sensor generic: no source has a PAN to measure the ratio from; give model.ratio")
    ratio = int(given) if given is not None else ratios.pop()
    n = bands.pop()
    first = next((r for r in rows if r["where"].startswith("data.train")), rows[0])
    names = [d.strip() for d in first["ms"].descriptions] if first["spec"].get("ms_mix") is None else []
    if len(names) != n or not all(names) or len(set(names)) != n:
        names = [f"Band {i}" for i in range(1, n + 1)]
    scale, how = value_scale(rows)
    from .config import gains_words, mtf_gains

    ms_gains, pan_gain = mtf_gains(cfg, n)   # a list of another length than the bands: refused here, before a step
    gains = (f"MTF gains {gains_words(ms_gains)} for MS, {pan_gain:g} for PAN "
             + ("(mtf_ms / mtf_pan)" if "mtf_ms" in cfg or "mtf_pan" in cfg else "(the generic ones)"))
    out = copy.deepcopy(cfg)
    out["data_layout"] = {"bands": n, "band_names": names, "ratio": ratio, "scale": scale,
                          "how": f"sensor generic: {n} bands and ratio {ratio} "
                                 + ("(model.ratio, agreeing with the data)" if given is not None and measured
                                    else "(model.ratio)" if given is not None else "(measured from the data)")
                                 + f"; values / {scale:g} ({how}); {gains}",
                          "mtf_ms": list(ms_gains), "mtf_pan": pan_gain}
    if out.get("method") != "ssdiff":   # the network's own tile statistics work at the ratio (nets: ``ratio``)
        out.setdefault("model", {})["ratio"] = ratio
    return out


def _rasters(root: Path, spec: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(role, the name as the source gives it, its resolved real path) of a source's PAN and MS."""
    import os

    base = Path(spec["root"]) if "root" in spec else root
    for role in ("pan", "ms"):
        if spec.get(role):
            yield role, str(spec[role]), os.path.realpath(base / spec[role])


def _inside(window, held) -> bool:
    c, r, w, h = window
    hc, hr, hw, hh = held
    return hc <= c and hr <= r and c + w <= hc + hw and r + h <= hr + hh


def test_overlaps(cfg: dict[str, Any]) -> list[str]:
    """Where a test raster of ``cfg`` is also a training, validation or full-resolution raster (by resolved real
    path), in words; empty when the test case is held apart. A shared raster is held apart only when the test case is
    a ``window`` inside the held-apart window of its MS (``datacache.HELD_APART``) and every training source names
    that raster as the cache does, so that training blanks the window (``scenes._blank_held``): the Landsat 8 and
    Sentinel-2 configs, whose test corner lies in their training scene."""
    from .datacache import HELD_APART

    if "pancollection" in cfg.get("data", {}):
        return []
    root = data_root(cfg)
    used: dict[str, list[tuple[str, str]]] = {}   # real path -> [(where, the name the source gives it)]
    for where, spec in sources(cfg):
        if where.startswith("data."):
            for role, name, real in _rasters(root, spec):
                used.setdefault(real, []).append((f"{where}.{role}", name))
    out = []
    for where, spec in sources(cfg):
        if not where.startswith("test."):
            continue
        window, held = spec.get("window"), HELD_APART.get(str(spec.get("ms", "")))
        windowed = bool(window) and held is not None and _inside(window, held)
        for role, _, real in _rasters(root, spec):
            leaks = [w for w, name in used.get(real, []) if not (windowed and HELD_APART.get(name) is not None)]
            if leaks:
                out.append(f"{where}'s {role.upper()} {real} is also {', '.join(leaks)}")
    return out


def check_held_apart(cfg: dict[str, Any]) -> None:
    """Refuse a config whose test case is also training data (``test_overlaps``): its card would call the test
    scene held apart. Raises ValueError, before anything is trained or written."""
    leaks = test_overlaps(cfg)
    if leaks:
        raise ValueError(f"the test case is not held apart: {leaks[0]}"
                         + (f" (and {len(leaks) - 1} more)" if len(leaks) > 1 else "")
                         + "; give test.reduced / test.full a scene that no data.train, data.val or data.fullres "
                           "source uses")
