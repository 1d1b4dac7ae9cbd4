"""A VRT band takes the name (and colour interpretation) its source band states: gdalbuildvrt copies no band
description, nor with -separate the colour interpretation (QA: an R, G, B, NIR file stacked into a VRT came out with
its Red band labelled Blue, silently)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen

RGBN = ["Red", "Green", "Blue", "NIR"]


@pytest.fixture()
def rgbn(cached, tmp_path) -> tuple[str, str]:
    """(PAN, MS) cut from WorldView-2 pair 1 (a 96 x 96 MS window and its PAN), the MS reordered to R, G, B, NIR
    (from B, G, R, NIR) and its bands named so, as a Pléiades-like product would come."""
    pan, ms = str(tmp_path / "pan.tif"), str(tmp_path / "ms_rgbn.tif")
    gdal.Translate(pan, str(cached("wv2/pair1_pan.tif")), srcWin=[0, 0, 384, 384])
    gdal.Translate(ms, str(cached("wv2/pair1_ms.tif")), srcWin=[0, 0, 96, 96], bandList=[3, 2, 1, 4])
    ds = gdal.Open(ms, gdal.GA_Update)
    for b, name in enumerate(RGBN, 1):
        ds.GetRasterBand(b).SetDescription(name)
    ds = None
    return pan, ms


def _fuse(pan: str, ms: str, out: Path) -> tuple[gdal.Dataset, list[str]]:
    log = RecordingFeedback()
    res = pansharpen(pan, ms, str(out), sensor="wv2", method="mtf_glp_hpm", feedback=log)
    return gdal.Open(res.output_path), log.lines


def _names(ds: gdal.Dataset) -> list[str]:
    return [ds.GetRasterBand(b).GetDescription() for b in range(1, ds.RasterCount + 1)]


def _separate(tmp_path: Path, ms: str, describe: bool, colours: list[int] | None = None) -> str:
    """``gdalbuildvrt -separate rgbn.vrt band_1.tif ... band_4.tif`` of ``ms``'s bands as single-band files, each
    named as its band (``describe``) and/or tagged with ``colours``."""
    src = gdal.Open(ms)
    files = []
    for b in range(1, src.RasterCount + 1):
        f = str(tmp_path / f"band_{b}.tif")
        gdal.Translate(f, src, bandList=[b])
        ds = gdal.Open(f, gdal.GA_Update)
        ds.GetRasterBand(1).SetDescription(RGBN[b - 1] if describe else "")
        if colours:
            ds.GetRasterBand(1).SetColorInterpretation(colours[b - 1])
        ds = None
        files.append(f)
    vrt = str(tmp_path / "rgbn.vrt")
    gdal.BuildVRT(vrt, files, separate=True)
    return vrt


def test_a_vrt_of_a_named_file_keeps_its_band_names(rgbn, tmp_path):
    """gdalbuildvrt ms.vrt ms_rgbn.tif (QGIS's Build Virtual Raster, 'separate' unticked): the VRT's bands had no
    names, were taken in WorldView-2's order (band 1 Blue) and the band holding Red was labelled Blue. Now each
    takes its source band's name, and the output is the .tif's, label for label and pixel for pixel."""
    pan, ms = rgbn
    vrt = str(tmp_path / "ms_rgbn.vrt")
    gdal.BuildVRT(vrt, [ms])
    assert gdal.Open(vrt).GetRasterBand(1).GetDescription() == ""   # what GDAL leaves: no name at all
    direct, _ = _fuse(pan, ms, tmp_path / "from_tif.tif")
    fused, lines = _fuse(pan, vrt, tmp_path / "from_vrt.tif")
    assert _names(fused) == RGBN == _names(direct)
    assert not [line for line in lines if "MS band order assumed" in line], lines
    assert ("MS band names from the band descriptions of the VRT's source files: band 1 Red, band 2 Green, "
            "band 3 Blue, band 4 NIR") in lines
    assert np.array_equal(fused.ReadAsArray(), direct.ReadAsArray())
    assert gdal.GetColorInterpretationName(fused.GetRasterBand(1).GetColorInterpretation()) == "Red"


def test_a_separate_stack_of_named_band_files_keeps_their_names(rgbn, tmp_path):
    """gdalbuildvrt -separate of band_1.tif ... band_4.tif, each file's band named Red, Green, Blue, NIR: only
    Landsat/Sentinel-2 band codes in file names were read, so they were fused as Blue, Green, Red, NIR."""
    pan, ms = rgbn
    vrt = _separate(tmp_path, ms, describe=True)
    direct, _ = _fuse(pan, ms, tmp_path / "from_tif.tif")
    fused, lines = _fuse(pan, vrt, tmp_path / "from_vrt.tif")
    assert _names(fused) == RGBN
    assert not [line for line in lines if "MS band order assumed" in line], lines
    assert np.array_equal(fused.ReadAsArray(), direct.ReadAsArray())


def test_a_separate_stack_of_colour_tagged_files_is_fused_as_tagged(rgbn, tmp_path):
    """Unnamed band files tagged Red, Green, Blue (colour interpretation), stacked with -separate, which copies no
    colour interpretation: the stack was taken in WorldView-2's order without a word, as the tagged file itself is
    not. Now the VRT's bands carry their sources' tags, and tags name unnamed bands (``bands.with_colour_names``):
    the stack is fused as R, G, B and the NIR left by them, as the named file is."""
    pan, ms = rgbn
    vrt = _separate(tmp_path, ms, describe=False,
                    colours=[gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand, gdal.GCI_Undefined])
    assert gdal.Open(vrt).GetRasterBand(1).GetColorInterpretation() == gdal.GCI_Undefined
    fused, lines = _fuse(pan, vrt, tmp_path / "o.tif")
    assert _names(fused) == ["Red", "Green", "Blue", "NIR"], lines
    assert any(line.startswith("MS band names from the file's colour interpretation") and "band 1 Red, band 2 Green, "
               "band 3 Blue" in line for line in lines), lines


def test_a_mosaic_whose_tiles_disagree_takes_no_name(rgbn, tmp_path):
    """Only a name every source of a band states is taken: tiles named otherwise leave the band unnamed (the
    sensor's order, said in the log), rather than one tile's name standing for the others."""
    pan, ms = rgbn
    left, right = str(tmp_path / "left.tif"), str(tmp_path / "right.tif")
    gdal.Translate(left, ms, srcWin=[0, 0, 48, 96])
    gdal.Translate(right, ms, srcWin=[48, 0, 48, 96])
    ds = gdal.Open(right, gdal.GA_Update)
    for b, name in enumerate(["Rot", "Grün", "Blau", "Nahes Infrarot"], 1):   # the same colours, named otherwise
        ds.GetRasterBand(b).SetDescription(name)
    ds = None
    vrt = str(tmp_path / "mosaic.vrt")
    gdal.BuildVRT(vrt, [left, right])
    fused, lines = _fuse(pan, vrt, tmp_path / "o.tif")
    assert _names(fused) == ["Blue", "Green", "Red", "NIR"]
    assert any("MS band order assumed" in line and "band 1 Blue, band 2 Green, band 3 Red, band 4 NIR" in line
               for line in lines), lines
