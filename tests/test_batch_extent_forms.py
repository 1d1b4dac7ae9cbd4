"""A scene list's ``extent`` cell in both forms it takes, each in its own order: QGIS's ``xmin,xmax,ymin,ymax
[EPSG:...]`` (as EXTENT and the output tag KSDIFF_EXTENT give it) and gdalwarp's ``xmin ymin xmax ymax``. QA (docs
walkthrough): a KSDIFF_EXTENT pasted into a row was read in gdalwarp's order and fused a 455 x 365 window instead of
its 282 x 295, exit 0; QGIS's order written with spaces fused the whole scene with a mere warning. A box that is empty
in the order read, that misses the PAN, or that reaches beyond it while the other order lies inside it, now stops the
list before any scene, naming the order. A regional area of interest larger than the PAN is cut to it with a warning
(review: a 4 x 4 km box around WorldView-2 pair 1's 300 m PAN was refused as 178 times the PAN's area)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixture_helpers import run_cli
from osgeo import gdal

from ksdiff_qgis import batch
from ksdiff_qgis.engine import provenance
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.scenes import SceneListError, read_scenes

DATA = Path(__file__).resolve().parent / "data"
PAN, MS = DATA / "wv2_pan.tif", DATA / "wv2_ms.tif"
BOX = (593380.29, 5747440.4, 593450.3, 5747520.4)   # xmin, ymin, xmax, ymax inside the 128 x 128 m PAN (UTM 31N)
HEADER = "pan,ms,sensor,method,output,extent,extent_wkt\n"


def _write(tmp_path: Path, *rows: str) -> str:
    path = tmp_path / "s.csv"
    path.write_text(HEADER + "".join(f"{PAN},{MS},wv2,exp,{r}\n" for r in rows))
    return str(path)


def test_a_ksdiff_extent_pasted_into_a_row_fuses_its_window_as_the_space_form_does(tmp_path):
    ref = tmp_path / "ref.tif"
    pansharpen(str(PAN), str(MS), str(ref), "wv2", "exp", extent=BOX)
    tag = provenance.extent_text(BOX, gdal.Open(str(PAN)).GetProjection())   # KSDIFF_EXTENT's own text
    assert tag.endswith("[EPSG:32631]")
    x0, y0, x1, y1 = BOX
    csv_path = _write(tmp_path, f'qgis.tif,"{tag}",', f"gdal.tif,{x0} {y0} {x1} {y1},EPSG:32631")
    scenes = read_scenes(csv_path)
    assert [s.kwargs["extent"] for s in scenes] == [BOX, BOX]
    assert scenes[0].kwargs["extent_wkt"] == "EPSG:32631"
    p = run_cli(csv_path, "--workers", "1")
    assert p.returncode == 0, p.stdout + p.stderr
    want = gdal.Open(str(ref)).ReadAsArray()
    for name in ("qgis.tif", "gdal.tif"):
        assert np.array_equal(gdal.Open(str(tmp_path / name)).ReadAsArray(), want), name


def test_qgis_order_written_with_spaces_is_refused_before_any_scene(tmp_path):
    """xmin xmax ymin ymax with spaces reads as a box 5.15e6 m wide: refused in one line naming the order read."""
    x0, y0, x1, y1 = BOX
    csv_path = _write(tmp_path, f"ok.tif,{x0} {y0} {x1} {y1},", f"bad.tif,{x0} {x1} {y0} {y1},EPSG:32631")
    p = run_cli(csv_path, "--workers", "1")
    assert p.returncode == batch.EXIT_USAGE, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ksdiff batch: line 3: column 'extent': "), p.stderr
    assert "read as xmin ymin xmax ymax (spaces: gdalwarp -te order)" in lines[0]
    assert "reaching beyond the PAN" in lines[0] and "read as xmin,xmax,ymin,ymax" in lines[0], lines[0]
    assert "lies inside the PAN" in lines[0]
    assert not (tmp_path / "ok.tif").exists() and not (tmp_path / "bad.tif").exists()


@pytest.mark.parametrize("cell, message", [
    # gdalwarp's order written with commas: read in QGIS's order, a box 5.15e6 m wide
    ('"593380.29,5747440.4,593450.3,5747520.4"', r".*read as xmin,xmax,ymin,ymax \(commas: QGIS's order.* reaching "
                                                 r"beyond the PAN.*read as xmin ymin xmax ymax \(spaces.*lies inside"),
    # a box beside the PAN in the order read that overlaps it in the other: the other order is named
    ('"593380.29,593450.3,5747640.4,5747700.4"', r".*read as xmin,xmax,ymin,ymax \(commas.*does not overlap the PAN"
                                                 r".*read as xmin ymin xmax ymax \(spaces.*would overlap it"),
    # beside the PAN in either order
    ("600000 5747440.4 600100 5747520.4", r".*read as xmin ymin xmax ymax \(spaces.*does not overlap the PAN "
                                          r"\(the PAN covers .*\): give an area on the PAN"),
    ("593450.3 5747440.4 593380.29 5747520.4", r"cannot read .*read as xmin ymin xmax ymax \(spaces.*empty box"),
    ("593380.29 5747440.4 593450.3", "cannot read .*an extent is four numbers"),
    ('"[593380.29, 5747440.4, 593450.3, 5747520.4]"', "cannot read .*neither of the two forms"),
])
def test_an_extent_empty_in_the_order_read_or_in_no_form_is_refused(tmp_path, cell, message):
    with pytest.raises(SceneListError, match=r"^line 2: column 'extent': " + message):
        read_scenes(_write(tmp_path, f"o.tif,{cell},"))


def test_a_crs_in_brackets_that_contradicts_extent_wkt_is_refused(tmp_path):
    x0, y0, x1, y1 = BOX
    with pytest.raises(SceneListError, match=r"line 2: column 'extent' names the CRS EPSG:32631 in brackets but "
                                             r'extent_wkt says "EPSG:4326": keep one of them'):
        read_scenes(_write(tmp_path, f'o.tif,"{x0},{x1},{y0},{y1} [EPSG:32631]",EPSG:4326'))


def test_a_regional_extent_larger_than_the_pan_is_cut_to_it_with_a_warning(tmp_path, cached):
    """Review: a 4 x 4 km box around WorldView-2 pair 1's 300 x 300 m PAN, in QGIS's form with its CRS, was refused as
    '178 times the PAN's area ... is it in the other order?'; the README says an EXTENT beyond the overlap is cut."""
    pan, ms = cached("wv2/pair1_pan.tif"), cached("wv2/pair1_ms.tif")
    gt = gdal.Open(str(pan)).GetGeoTransform()
    cx, cy = gt[0] + 150, gt[3] - 150
    path = tmp_path / "s.csv"
    path.write_text(f'pan,ms,sensor,method,output,extent\n{pan},{ms},wv2,exp,{tmp_path / "o.tif"},'
                    f'"{cx - 2000},{cx + 2000},{cy - 2000},{cy + 2000} [EPSG:32631]"\n')
    scenes = read_scenes(str(path))
    assert scenes[0].kwargs["extent"] == (cx - 2000, cy - 2000, cx + 2000, cy + 2000)
    p = run_cli(str(path), "--workers", "1")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "EXTENT reaches beyond the PAN/MS overlap" in p.stdout + p.stderr
    out = gdal.Open(str(tmp_path / "o.tif"))
    assert out.GetGeoTransform() == gt and (out.RasterXSize, out.RasterYSize) == (600, 600)
