"""A generic product of a band count no bundled network has (5 bands Blue, Green, Red, Red Edge, NIR as RapidEye or
PlanetScope name them; Sentinel-2's B02 ... B08 codes; 5 bands of an 8-band Sentinel-2 stack picked with MS_BANDS):
the 4-band network fuses its named Blue, Green, Red and NIR, MTF-GLP-HPM the others, as on a Pléiades Neo product.
QA (2026-12-07): METHOD ksdiff was refused ("no bundled KSDiff model fits 5 MS bands at ratio 4") and auto went
straight to MTF-GLP-HPM (truth ERGAS 1.874 against 1.724 with the network on six Sentinel-2 bands). Unnamed bands
are not guessed. Real Sentinel-2 L1C bands of the data cache."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.model_card import bundled_cards
from ksdiff_qgis.engine.pipeline import pansharpen

pytestmark = pytest.mark.skipif("wv2" not in bundled_cards(), reason="no bundled wv2 model")

S2_CODES = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A"]
FIVE = [0, 1, 2, 3, 6]   # B02, B03, B04, B05, B08 of the 20 m stack


def _write(path: Path, arr: np.ndarray, gt: tuple, wkt: str, names: list[str] | None) -> str:
    ds = gdal.GetDriverByName("GTiff").Create(str(path), arr.shape[2], arr.shape[1], arr.shape[0], gdal.GDT_UInt16)
    ds.SetGeoTransform(gt)
    ds.SetProjection(wkt)
    for i in range(arr.shape[0]):
        ds.GetRasterBand(i + 1).WriteArray(arr[i])
        if names:
            ds.GetRasterBand(i + 1).SetDescription(names[i])
    ds = None
    return str(path)


@pytest.fixture(scope="module")
def s2_pair(tmp_path_factory, request):
    """A ratio-4 pair cut from the real Sentinel-2 scene: a PAN of the 10 m B02, B03, B04, B08 averaged (256 x 256)
    and the 20 m stack's eight bands averaged 2 x 2 to 40 m (64 x 64), on the same ground. Returns (folder, PAN path,
    MS array (8, 64, 64), MS geotransform, CRS)."""
    cached = request.getfixturevalue("cached")
    ten, twenty = gdal.Open(str(cached("sentinel2/s2_10m.tif"))), gdal.Open(str(cached("sentinel2/s2_20m.tif")))
    folder = tmp_path_factory.mktemp("s2_named")
    r20, c20, n = 200, 200, 128
    g10, g20 = ten.GetGeoTransform(), twenty.GetGeoTransform()
    # the 20 m grid starts one 10 m pixel east of the 10 m one
    c10, r10 = round((g20[0] + c20 * g20[1] - g10[0]) / g10[1]), round((g20[3] + r20 * g20[5] - g10[3]) / g10[5])
    pan = ten.ReadAsArray(c10, r10, 2 * n, 2 * n).astype(np.float64).mean(axis=0)
    ms = twenty.ReadAsArray(c20, r20, n, n).astype(np.float64).reshape(8, n // 2, 2, n // 2, 2).mean(axis=(2, 4))
    x0, y0 = g10[0] + c10 * g10[1], g10[3] + r10 * g10[5]
    wkt = ten.GetProjection()
    pan_path = _write(folder / "pan.tif", np.round(pan)[None].astype(np.uint16), (x0, 10.0, 0, y0, 0, -10.0), wkt,
                      ["PAN"])
    return folder, pan_path, np.round(ms).astype(np.uint16), (x0, 40.0, 0, y0, 0, -40.0), wkt


def _ms(s2_pair, name: str, bands: list[int], names: list[str] | None) -> str:
    folder, _, ms, gt, wkt = s2_pair
    return _write(folder / f"{name}.tif", ms[bands], gt, wkt, names)


def _read(path: str) -> np.ndarray:
    return gdal.Open(path).ReadAsArray().astype(np.float64)


def test_a_named_five_band_product_fuses_blue_green_red_nir_with_the_network(s2_pair, tmp_path):
    """METHOD ksdiff is accepted; the network's bands differ from MTF-GLP-HPM's, the red edge is MTF-GLP-HPM's
    pixel for pixel; the log names the network and the bands it fuses."""
    pan = s2_pair[1]
    ms = _ms(s2_pair, "five_names", FIVE, ["Blue", "Green", "Red", "Red Edge", "NIR"])
    log = RecordingFeedback()
    ks = pansharpen(pan, ms, str(tmp_path / "ks.tif"), "auto", "ksdiff", feedback=log)
    hpm = pansharpen(pan, ms, str(tmp_path / "hpm.tif"), "auto", "mtf_glp_hpm")
    assert ks.method == "ksdiff" and ks.sensor == "generic"
    assert ks.band_names == ["Blue", "Green", "Red", "Red Edge", "NIR"]
    assert any(line.startswith("WARNING generic sensor: no bundled network fits 5 MS bands at ratio 4")
               and "wv2.onnx" in line for line in log.lines), log.lines
    assert any("KSDiff fuses the bands its model knows: Blue (band 1), Green (band 2), Red (band 3), NIR (band 5)"
               in line and "Red Edge" in line for line in log.lines), log.lines
    a, h = _read(ks.output_path), _read(hpm.output_path)
    assert np.array_equal(a[3], h[3])   # Red Edge: MTF-GLP-HPM's
    for b in (0, 1, 2, 4):   # Blue, Green, Red, NIR: the network's
        assert np.abs(a[b] - h[b]).mean() > 1, b


def test_sentinel2_codes_and_an_ms_bands_pick_of_an_eight_band_stack(s2_pair, tmp_path):
    """Band codes name the bands too (B02, B03, B04, B08); an MS_BANDS pick of five of eight bands takes the same
    path, and gives the same pixels as the five-band file."""
    pan = s2_pair[1]
    five = _ms(s2_pair, "five_codes", FIVE, [S2_CODES[b] for b in FIVE])
    eight = _ms(s2_pair, "eight_codes", list(range(8)), S2_CODES)
    ks = pansharpen(pan, five, str(tmp_path / "five.tif"), "generic", "ksdiff")
    picked = pansharpen(pan, eight, str(tmp_path / "picked.tif"), "auto", "ksdiff", ms_bands=[1, 2, 3, 4, 7])
    assert ks.method == picked.method == "ksdiff"
    assert picked.band_names == ["B02", "B03", "B04", "B05", "B08"]
    assert np.array_equal(_read(ks.output_path), _read(picked.output_path))


def test_method_auto_checks_the_combined_output(s2_pair, tmp_path):
    """METHOD auto scores the network (on its four bands, MTF-GLP-HPM on the red edge) against the classical
    methods: it no longer goes straight to MTF-GLP-HPM."""
    pan = s2_pair[1]
    ms = _ms(s2_pair, "five_auto", FIVE, ["Blue", "Green", "Red", "Red Edge", "NIR"])
    res = pansharpen(pan, ms, str(tmp_path / "auto.tif"), "auto", "auto")
    assert res.selfcheck.learned is not None and res.selfcheck.pixels > 0
    # on this cut the network wins the check (Wald ERGAS 2.239 against MTF-GLP-HPM's 2.398), and what auto writes is
    # the forced run's output: the same combined fuser
    assert res.method == "ksdiff", res.selfcheck.reason
    ks = pansharpen(pan, ms, str(tmp_path / "ks.tif"), "auto", "ksdiff")
    assert np.array_equal(_read(res.output_path), _read(ks.output_path))


def test_unnamed_bands_are_not_guessed(s2_pair, tmp_path):
    """Without names, which band is the NIR is not guessed: ksdiff is refused with how to let it run, auto stays
    classical."""
    pan = s2_pair[1]
    ms = _ms(s2_pair, "five_bare", FIVE, None)
    with pytest.raises(InputError, match="no bundled KSDiff model fits 5 MS bands at ratio 4 .*name them"):
        pansharpen(pan, ms, str(tmp_path / "ks.tif"), "auto", "ksdiff")
    res = pansharpen(pan, ms, str(tmp_path / "auto.tif"), "auto", "auto")
    assert res.method != "ksdiff" and res.selfcheck.learned is None
    # named, but without a NIR: no network either
    no_nir = _ms(s2_pair, "no_nir", [0, 1, 2, 3, 4], S2_CODES[:5])
    with pytest.raises(InputError, match="no bundled KSDiff model fits 5 MS bands"):
        pansharpen(pan, no_nir, str(tmp_path / "k2.tif"), "auto", "ksdiff")
