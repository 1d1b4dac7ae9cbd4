"""A delivery's quality, angle or classification layer stacked among the MS bands is refused before anything is
written (QA137: a Landsat QA_PIXEL file stacked by QGIS's Build Virtual Raster as band 5 had its bit codes fused with
PAN texture, silently, under SENSOR auto)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine.auxlayers import aux_bands, layer_kind
from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.pipeline import pansharpen

PRODUCT = "LC08_L1TP_020039_20150804_20200908_02_T1_"
QA_CODES = (21824, 22280)   # QA_PIXEL's clear-land and cloud codes, as the real scene holds them


@pytest.fixture()
def landsat(data_dir, tmp_path) -> dict[str, str]:
    """A Landsat 8 delivery of single-band GeoTIFFs cut from the real fixture, named as USGS names them: B2 ... B5,
    B8 (PAN) and a QA_PIXEL of real QA codes on the MS grid."""
    ms = gdal.Open(str(data_dir / "l8_ms.tif"))
    files = {}
    for b, code in enumerate(("B2", "B3", "B4", "B5"), 1):
        files[code] = str(tmp_path / f"{PRODUCT}{code}.TIF")
        ds = gdal.Translate(files[code], ms, bandList=[b])
        ds.GetRasterBand(1).SetDescription("")   # USGS files name no band
        ds = None
    files["B8"] = str(tmp_path / f"{PRODUCT}B8.TIF")
    gdal.Translate(files["B8"], str(data_dir / "l8_pan.tif"))
    files["QA_PIXEL"] = str(tmp_path / f"{PRODUCT}QA_PIXEL.TIF")
    qa = gdal.Translate(files["QA_PIXEL"], ms, bandList=[1])
    nir = ms.GetRasterBand(4).ReadAsArray()
    qa.GetRasterBand(1).WriteArray(np.where(nir > np.median(nir), *QA_CODES).astype(np.uint16))
    qa.GetRasterBand(1).SetDescription("")
    qa = None
    return files


def _stack(files: dict[str, str], codes: list[str], out: Path) -> str:
    """``gdalbuildvrt -separate`` of the delivery's files ``codes``, as QGIS's Build Virtual Raster makes it."""
    gdal.BuildVRT(str(out), [files[c] for c in codes], separate=True)
    return str(out)


def _refusal(pan: str, ms: str, out: Path, **kw) -> str:
    with pytest.raises(InputError) as e:
        pansharpen(pan, ms, str(out), method=kw.pop("method", "mtf_glp_hpm"), **kw)
    assert not out.exists() and not list(out.parent.glob(out.stem + "*.tmp*"))   # nothing written
    return str(e.value)


def test_a_qa_pixel_file_stacked_as_band_5_is_refused_naming_ms_bands(landsat, tmp_path):
    """SENSOR auto fused the QA band as a fifth spectral band (METHOD auto too: KSDiff for B2-B5, MTF-GLP-HPM for it).
    Now each is refused, naming band 5, its file and MS_BANDS 1,2,3,4; with that MS_BANDS the stack fuses."""
    vrt = _stack(landsat, ["B2", "B3", "B4", "B5", "QA_PIXEL"], tmp_path / "ms.vrt")
    for kw in ({}, {"method": "auto"}, {"sensor": "landsat8"}):
        msg = _refusal(landsat["B8"], vrt, tmp_path / "o.tif", **kw)
        assert msg.startswith("MS band 5 is not a spectral band but a quality, angle or classification layer"), msg
        assert f"(its file {PRODUCT}QA_PIXEL.TIF: Landsat pixel quality bits)" in msg, msg
        assert "'MS bands to fuse' (MS_BANDS, under Advanced Parameters; a batch list's ms_bands column) set to " \
               "1,2,3,4" in msg, msg
    res = pansharpen(landsat["B8"], vrt, str(tmp_path / "o.tif"), method="mtf_glp_hpm", ms_bands=[1, 2, 3, 4])
    out = gdal.Open(res.output_path)
    assert out.RasterCount == 4 and out.GetMetadataItem("KSDIFF_SENSOR") == "landsat8"
    msg = _refusal(landsat["B8"], vrt, tmp_path / "p.tif", ms_bands=[5, 4, 3])   # chosen, in the user's order
    assert "MS band 5 is not" in msg and "set to 4,3" in msg, msg


def test_a_scene_classification_named_by_its_band_description_is_refused(landsat, tmp_path):
    """A layer known by its band description alone (a stack written to one GeoTIFF): band 4 'SCL'."""
    ms = str(tmp_path / "stack.tif")
    ds = gdal.Translate(ms, _stack(landsat, ["B2", "B3", "B4", "QA_PIXEL"], tmp_path / "s.vrt"))
    ds.GetRasterBand(4).SetDescription("SCL")
    ds = None
    msg = _refusal(landsat["B8"], ms, tmp_path / "o.tif", sensor="generic")
    assert msg.startswith("MS band 4 is not a spectral band") and "(its description SCL: Sentinel-2 scene " \
        "classification); leave it out" in msg and msg.endswith("set to 1,2,3"), msg
    both = _stack(landsat, ["B2", "B3", "B4", "QA_PIXEL", "QA_PIXEL"], tmp_path / "two.vrt")
    msg = _refusal(landsat["B8"], both, tmp_path / "o.tif", ms_bands=[4, 5])   # nothing spectral is left
    assert msg.startswith("MS bands 4 and 5 are not spectral bands") and f"(band 4: its file {PRODUCT}QA_PIXEL.TIF: " \
        "Landsat pixel quality bits; band 5: its file" in msg and msg.endswith("spectral band files instead"), msg


@pytest.mark.parametrize("name", [
    f"{PRODUCT}QA_PIXEL.TIF", f"{PRODUCT}QA_RADSAT.TIF", f"{PRODUCT}SR_QA_AEROSOL.TIF", "LC08_x_BQA.TIF",
    f"{PRODUCT}SAA.TIF", f"{PRODUCT}SZA.TIF", f"{PRODUCT}VAA.TIF", f"{PRODUCT}VZA.TIF", f"{PRODUCT}ST_QA.TIF",
    "T18SUJ_20200101T153619_SCL_20m.jp2", "T18SUJ_20200101T153619_AOT_10m.jp2", "T18SUJ_20200101T153619_WVP_10m.jp2",
    "MSK_CLDPRB_20m.jp2", "MSK_SNWPRB_20m.jp2",
    "MSK_CLASSI_B00.jp2", "MSK_DETFOO_B8A.jp2", "L2A_T18SUJ_CLD_20m.jp2", "L2A_T18SUJ_SNW_20m.jp2", "QA_PIXEL", "SCL"])
def test_quality_angle_and_classification_names(name):
    assert layer_kind(name) is not None


@pytest.mark.parametrize("name", [
    f"{PRODUCT}B5.TIF", f"{PRODUCT}SR_B4.TIF", f"{PRODUCT}ST_B10.TIF", "T18SUJ_20200101T153619_B8A_20m.jp2",
    "B5 NIR", "Blue", "Band 5", "NIR1", "0.478 um", "pan_tci_x.tif", "msk.tif", "scaled.tif",
    "T18SUJ_20200101T153619_TCI_10m.jp2"])
def test_spectral_band_names_are_no_such_layer(name):
    assert layer_kind(name) is None


def test_processing_refuses_the_qa_band_and_fuses_without_it(qgis_app, landsat, tmp_path):
    """Through ksdiff:pansharpen, as QA met it (SENSOR and METHOD auto): refused, nothing written; MS_BANDS 1,2,3,4
    fuses the four spectral bands."""
    import processing
    from qgis.core import QgsProcessingException

    vrt = _stack(landsat, ["B2", "B3", "B4", "B5", "QA_PIXEL"], tmp_path / "ms.vrt")
    out = tmp_path / "o.tif"
    params = {"PAN": landsat["B8"], "MS": vrt, "METHOD": "mtf_glp_hpm", "OUTPUT": str(out)}
    with pytest.raises(QgsProcessingException, match=r"MS band 5 is not a spectral band.* set to 1,2,3,4"):
        processing.run("ksdiff:pansharpen", params)
    assert not out.exists()
    processing.run("ksdiff:pansharpen", {**params, "MS_BANDS": "1,2,3,4"})
    assert gdal.Open(str(out)).RasterCount == 4


def test_a_multiband_file_is_not_refused_for_its_name(data_dir, tmp_path):
    """QA140: a user's 4-band copy named 'wv2_ms_scl.tif' ('scaled') was refused as a scene classification, 4 times."""
    ms = tmp_path / "wv2_ms_scl.tif"
    gdal.Translate(str(ms), str(data_dir / "wv2_ms.tif"))
    assert aux_bands(str(ms), [""] * 4) == {}
    res = pansharpen(str(data_dir / "wv2_pan.tif"), str(ms), str(tmp_path / "o.tif"), "generic", "gsa")
    assert gdal.Open(res.output_path).RasterCount == 4
