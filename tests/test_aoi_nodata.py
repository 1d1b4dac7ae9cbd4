"""An EXTENT on a scene with nodata: METHOD auto's check, the refusal of an all-nodata EXTENT and the registration
warning speak of the area of interest, not the scene (QA 49l, on a mosaic of WorldView-2 pair 2)."""
from __future__ import annotations

from pathlib import Path

import pytest
from osgeo import gdal

from ksdiff_qgis.engine import selfcheck
from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.feedback import Feedback
from ksdiff_qgis.engine.grid import plan_grid
from ksdiff_qgis.engine.labels import PARAMS
from ksdiff_qgis.engine.pipeline import estimate_scene_stats, pansharpen
from ksdiff_qgis.engine.raster_io import open_raster
from ksdiff_qgis.engine.sensors import get_sensor

# WorldView-2 pair 2 (600^2 PAN, 150^2 MS): its top 32 % (north of y 5751391.27, PAN row 192) is nodata (0)
EDGE_Y = 5751391.27
X0, X1 = 595500.0, 595700.0   # 200 m wide


class Recorder(Feedback):
    def __init__(self):
        self.infos, self.warnings = [], []

    def info(self, message: str) -> None:
        self.infos.append(message)

    def warning(self, message: str) -> None:
        self.warnings.append(message)


def test_a_mostly_nodata_extent_is_checked_on_the_scene_around_it(tmp_path, cached):
    """QA: a 200 x 100 m EXTENT at the nodata edge, 8 % valid, was not checked ('the scene offers only 0 valid MS
    pixels for the self-check') and fused with MTF-GLP-HPM, while a 12 m one was checked on the scene around it."""
    said = Recorder()
    res = pansharpen(str(cached("wv2/pair2_pan.tif")), str(cached("wv2/pair2_ms.tif")), str(tmp_path / "e.tif"),
                     "wv2", "auto", extent=(X0, EDGE_Y - 8, X1, EDGE_Y + 92), feedback=said)
    assert res.selfcheck.pixels >= selfcheck.MIN_PIXELS, res.selfcheck.reason
    assert res.selfcheck.outputs()["SELFCHECK_CLASSICAL_METHOD"] in selfcheck.CLASSICAL_CANDIDATES
    widened = [m for m in said.infos if "the check samples the scene around it (150 x 150 MS pixels)" in m]
    assert widened and widened[0].startswith("Method auto: the area of interest (99 x 50 MS pixels) offers only 0 "
                                             "valid MS pixels"), said.infos


def test_a_check_without_enough_data_names_the_area_of_interest(cached):
    """The reason of a check that found too little data says 'area of interest' for an EXTENT's area, 'scene'
    otherwise (it said 'the scene offers only 0 valid MS pixels' for an EXTENT in a 68 % valid scene)."""
    pan_ds, pan = open_raster(str(cached("wv2/pair2_pan.tif")), "PAN")
    ms_ds, ms = open_raster(str(cached("wv2/pair2_ms.tif")), "MS")
    plan = plan_grid(pan, ms, ms_ds)
    stats = estimate_scene_stats(pan_ds, ms_ds, pan, ms, plan, gains=get_sensor("wv2").mtf_ms)
    nodata = (10, 2, 100, 40)   # MS pixels north of the edge (MS row 48)
    assert selfcheck.usable_pixels(pan_ds, ms_ds, pan, ms, plan, stats, nodata) == 0
    for where in ("area of interest", "scene"):
        res = selfcheck.run_check(pan_ds, ms_ds, pan, ms, plan, get_sensor("wv2"), None, stats, nodata, where=where)
        assert res.reason.startswith(f"the {where} offers only 0 valid MS pixels"), res.reason


def test_an_all_nodata_extent_is_refused_naming_the_extent(tmp_path, cached):
    """QA: an EXTENT entirely in nodata read 'the overlap of PAN and MS holds (almost) no valid pixels: everything is
    nodata' (the scene is 68 % valid; EXTENT not mentioned). Refused before anything is written."""
    out = tmp_path / "n.tif"
    with pytest.raises(InputError) as e:
        pansharpen(str(cached("wv2/pair2_pan.tif")), str(cached("wv2/pair2_ms.tif")), str(out), "wv2",
                   "mtf_glp_hpm", extent=(X0, EDGE_Y + 9, X1, EDGE_Y + 89))
    text = str(e.value)
    assert text.startswith("the EXTENT (x 595499.81 to 595700.307, y 5751400.27 to 5751480.77 in the PAN CRS) holds "
                           "(almost) no valid pixels of PAN and MS"), text
    assert "leave EXTENT empty" in text and "overlap of PAN and MS" not in text
    assert not out.exists() and list(tmp_path.iterdir()) == []


def _shifted_ms(src: Path, dst: Path, pan_pixels: int) -> str:
    """The MS with its georeference moved ``pan_pixels`` PAN pixels east: its content lies that far off the PAN's."""
    gdal.Translate(str(dst), str(src))
    ds = gdal.Open(str(dst), gdal.GA_Update)
    g = list(ds.GetGeoTransform())
    g[0] += pan_pixels * g[1] / 4
    ds.SetGeoTransform(g)
    ds = None
    return str(dst)


@pytest.mark.parametrize("coregister", [False, True])
def test_the_registration_line_says_it_was_measured_on_the_area_of_interest(tmp_path, cached, coregister):
    """QA: with an EXTENT the PAN/MS offset is measured on the area of interest, yet the warning said 'measured on
    the scene' (and the co-registration line 'by the offset measured on the scene')."""
    pan = str(cached("wv2/pair1_pan.tif"))
    ms = _shifted_ms(cached("wv2/pair1_ms.tif"), tmp_path / "ms.tif", 2)
    said = Recorder()
    pansharpen(pan, ms, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm", feedback=said, coregister=coregister,
               extent=(593300.0, 5747400.0, 593500.0, 5747600.0))
    # the option's own label, quoted in advice, is no measurement (it once read '... by the offset measured on the
    # scene')
    lines = [m.replace(PARAMS["COREGISTER"], "") for m in said.infos + said.warnings]
    lines = [m for m in lines if "measured on the" in m]
    assert lines and all("measured on the area of interest" in m for m in lines), lines
    assert not any("measured on the scene" in m for m in lines), lines
