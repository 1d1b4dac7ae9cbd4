"""A run finds and reads its deliveries' metadata files once (``engine/metascan.py``): the sensor guess, the DIMAP
band names and the Landsat mission each globbed the folders and read every metadata file again (review: a Landsat
MTL was opened six times in one SENSOR=auto run, a DIMAP three). Real deliveries rebuilt in tmp_path from the
fixture crops.
"""
from __future__ import annotations

import builtins
import glob
import os
from collections import Counter

from test_deliveries import DISPLAY_V2, SCENE, _dimap_product, _landsat_delivery, _stack
from test_sensors_bands import Log

from ksdiff_qgis.engine.pipeline import pansharpen


def _count_opens(monkeypatch) -> Counter:
    """Every file opened through Python's open() (text or bytes; ElementTree's parse too), by absolute path."""
    opened: Counter = Counter()
    real = builtins.open

    def counting(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)):
            opened[os.path.abspath(os.fspath(file))] += 1
        return real(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting)
    return opened


def _count_globs(monkeypatch) -> Counter:
    """Every glob pattern searched, as given."""
    searched: Counter = Counter()
    real = glob.glob

    def counting(pattern, *args, **kwargs):
        searched[pattern] += 1
        return real(pattern, *args, **kwargs)

    monkeypatch.setattr(glob, "glob", counting)
    return searched


def test_a_landsat_delivery_reads_its_mtl_once_per_run(data_dir, tmp_path, monkeypatch):
    """USGS band files beside their MTL, stacked by QGIS's Build Virtual Raster elsewhere, SENSOR=auto: the MTL names
    the bands (Landsat 8/9 band codes) and the sensor, read once; the folder searched once. A second run in the same
    session, after the MTL changed, reads the new file (no cache outlives a run)."""
    files = _landsat_delivery(data_dir, tmp_path / "delivery")
    vrt = _stack(tmp_path / "work" / "ms_4325.vrt", [files[c] for c in ("B4", "B3", "B2", "B5")])
    mtl = str(tmp_path / "delivery" / f"{SCENE}_MTL.txt")
    opened, searched = _count_opens(monkeypatch), _count_globs(monkeypatch)
    log = Log()
    res = pansharpen(files["B8"], vrt, str(tmp_path / "o.tif"), "auto", "gsa", feedback=log)
    assert res.sensor == "landsat8"
    assert any(f"{SCENE}_MTL.txt says LANDSAT_8" in x and "SENSOR=auto" in x for x in log.lines), log.lines
    assert any("band 1 B4 Red" in x and f"{SCENE}_MTL.txt says LANDSAT_8" in x for x in log.lines), log.lines
    assert opened[mtl] == 1, opened[mtl]
    delivery_globs = {p: n for p, n in searched.items() if p.startswith(glob.escape(str(tmp_path / "delivery")))}
    assert delivery_globs and set(delivery_globs.values()) == {1}, delivery_globs
    # the next run, after the file changed: read again, once, and what it says now is what counts
    with open(mtl, encoding="utf-8") as f:
        text = f.read()
    with open(mtl, "w", encoding="utf-8") as f:
        f.write(text.replace('SPACECRAFT_ID = "LANDSAT_8"', 'SPACECRAFT_ID = "LANDSAT_9"'))
    opened.clear()
    log = Log()
    res = pansharpen(files["B8"], vrt, str(tmp_path / "o2.tif"), "auto", "gsa", feedback=log)
    assert res.sensor == "landsat8" and opened[mtl] == 1, opened[mtl]
    assert any(f"{SCENE}_MTL.txt says LANDSAT_9" in x and "SENSOR=auto" in x for x in log.lines), log.lines


def test_a_dimap_delivery_reads_each_dimap_once_per_run(data_dir, tmp_path, monkeypatch):
    """Pléiades PAN and MS, each a DIMAP given as the input (DIM_*.XML): the MS's names its bands and both name the
    satellite; each DIMAP is opened once in the run (its band layout too)."""
    pan = _dimap_product(data_dir / "wv2_pan.tif", tmp_path / "IMG_PHR1A_P_001", "P", [1], "")
    ms = _dimap_product(data_dir / "wv2_ms.tif", tmp_path / "IMG_PHR1A_MS_001", "MS", [3, 2, 1, 4], DISPLAY_V2)
    opened = _count_opens(monkeypatch)
    log = Log()
    res = pansharpen(pan, ms, str(tmp_path / "o.tif"), "auto", "gsa", feedback=log)
    assert res.sensor == "pleiades" and res.band_names == ["Red", "Green", "Blue", "NIR"]
    assert any("band names from DIM_PHR1A_MS" in x for x in log.lines), log.lines
    assert opened[os.path.abspath(ms)] == 1 and opened[os.path.abspath(pan)] == 1, \
        (opened[os.path.abspath(ms)], opened[os.path.abspath(pan)])
