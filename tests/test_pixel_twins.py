"""GaoFen-2 (0.81 m, 10-bit) and IKONOS (0.82 m nominal, 11-bit) share a PAN pixel size: SENSOR=auto without product
metadata tells them apart by the MS's bit depth, and says so when it cannot (QA round 58: an IKONOS product at 0.80 m
was taken as GaoFen-2 and its 11-bit values fed to the gf2 network divided by 1023). Pairs rebuilt in tmp_path from a
crop of the cached WorldView-2 pair 1 (its 11-bit values), as QA's build.py did."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal
from test_sensors_bands import Log, _info

from ksdiff_qgis.engine.model_card import bundled_cards
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.sensor_detect import detect_sensor


def _pair(cached, folder: Path, top: int, nbits: int | None = None, pixel: float = 0.8) -> tuple[str, str]:
    """PAN (512 px) and MS (128 px, B, G, R, NIR) at ``pixel`` m, their values scaled from pair 1's 11 bits to
    0-``top``, no metadata beside them; ``nbits``: declared on both."""
    folder.mkdir(parents=True)
    paths = []
    for name, src, side, px in (("pan", "wv2/pair1_pan.tif", 512, pixel), ("ms", "wv2/pair1_ms.tif", 128, 4 * pixel)):
        ds = gdal.Open(str(cached(src)))
        arr = ds.ReadAsArray(0, 0, side, side).astype(np.float64)
        arr = np.atleast_3d(arr) if arr.ndim == 3 else arr[None]
        arr = np.clip(np.rint(arr * top / 2047.0), 0, top).astype(np.uint16)
        path = str(folder / f"{name}.tif")
        out = gdal.GetDriverByName("GTiff").Create(path, side, side, len(arr), gdal.GDT_UInt16,
                                                  [f"NBITS={nbits}"] if nbits else [])
        out.SetGeoTransform((500000.0, px, 0.0, 4800000.0, 0.0, -px))
        out.SetProjection(ds.GetProjection())
        for i, band in enumerate(arr, 1):
            out.GetRasterBand(i).WriteArray(band)
        out = None
        paths.append(path)
    return paths[0], paths[1]


def test_an_11_bit_product_at_0_8_m_is_ikonos(cached, tmp_path):
    """Values up to 2047 (QA's IKONOS mock: 1941 on this crop) at a 0.80 m PAN pixel: no GaoFen-2 product holds them."""
    pan, ms = _pair(cached, tmp_path / "ik", 2047)
    found = detect_sensor(_info(pan), _info(ms), 4)
    assert found.key == "ikonos", found.message()
    assert "fits GaoFen-2 [gf2] (0.81 m, 10-bit) and IKONOS [ikonos] (0.82 m, 11-bit) alike: the MS's values reach" \
        in found.message() and "beyond GaoFen-2's 10-bit range (0-1023), within IKONOS's 11-bit" in found.message()
    assert not found.warnings, found.warnings


def test_a_declared_bit_depth_decides(cached, tmp_path):
    """NBITS=11 on a dark product (values within 1023): IKONOS's; NBITS=10: GaoFen-2's."""
    pan, ms = _pair(cached, tmp_path / "dark11", 1000, nbits=11)
    found = detect_sensor(_info(pan), _info(ms), 4)
    assert found.key == "ikonos" and "the MS declares NBITS=11, IKONOS's" in found.message(), found.message()
    pan, ms = _pair(cached, tmp_path / "ten", 1023, nbits=10)
    found = detect_sensor(_info(pan), _info(ms), 4)
    assert found.key == "gf2" and "NBITS=10, GaoFen-2's" in found.message() and not found.warnings


def test_values_both_sensors_hold_keep_gaofen2_and_warn_naming_both(cached, tmp_path):
    """10-bit values without NBITS: either sensor's product; GaoFen-2 (as before) with a warning that names both and
    how to choose IKONOS. Values beyond both (a 12-bit product at 0.80 m): no known sensor fits, generic (it took
    IKONOS's wider range until 2026-12-07)."""
    pan, ms = _pair(cached, tmp_path / "gf2", 1023)
    found = detect_sensor(_info(pan), _info(ms), 4)
    assert found.key == "gf2", found.message()
    assert len(found.warnings) == 1, found.warnings
    warning = found.warnings[0]
    assert warning.startswith("SENSOR=auto: the PAN pixel (0.80 m) fits GaoFen-2 [gf2] (0.81 m, 10-bit) and IKONOS "
                              "[ikonos] (0.82 m, 11-bit) alike"), warning
    assert "within each one's range: GaoFen-2 [gf2] is used" in warning and "(SENSOR=ikonos)" in warning, warning
    pan, ms = _pair(cached, tmp_path / "twelve", 4095)
    found = detect_sensor(_info(pan), _info(ms), 4)
    assert found.key == "generic" and found.unrecognised and "beyond each one's range: no known sensor fits" in \
        found.message() and not found.warnings, found.message()
    # a 1 m product is IKONOS's standard one: no doubt said there
    pan, ms = _pair(cached, tmp_path / "one", 1023, pixel=1.0)
    found = detect_sensor(_info(pan), _info(ms), 4)
    assert found.key == "ikonos" and not found.warnings


@pytest.mark.skipif("qb" not in bundled_cards(), reason="no bundled QuickBird model")
def test_an_ikonos_product_is_not_fused_by_the_gaofen2_network(cached, tmp_path):
    """The run: IKONOS's gains and nearest network (qb, 11-bit scale), not gf2.onnx dividing 11-bit data by 1023."""
    pan, ms = _pair(cached, tmp_path / "ik", 2047)
    log = Log()
    res = pansharpen(pan, ms, str(tmp_path / "o.tif"), "auto", "ksdiff", feedback=log)
    assert res.sensor == "ikonos"
    assert any("model qb.onnx" in line and "values divided by 2047" in line for line in log.lines), log.lines
    assert not any("gf2.onnx" in line for line in log.lines), log.lines


def test_values_beyond_every_candidates_range_are_no_known_sensor(cached, tmp_path):
    """QA round 103: a KOMPSAT-3-like 14-bit product at 0.70 m (values to 6997) was fused as IKONOS (its MTF gains,
    the qb network) though the log said its values were beyond both GaoFen-2's and IKONOS's range. Now no known sensor
    fits, and the run says so and fuses as generic; Pléiades (0.7 m, 12-bit) is among the sensors weighed."""
    pan, ms = _pair(cached, tmp_path / "k3", 7000, pixel=0.7)
    found = detect_sensor(_info(pan), _info(ms), 4)
    assert found.key == "generic" and found.unrecognised and not found.warnings, found.message()
    message = found.message()
    assert message.startswith("Sensor not recognised (ratio 4, 4 MS bands: the PAN pixel (0.70 m) fits GaoFen-2 "
                              "[gf2] (0.81 m, 10-bit), IKONOS [ikonos] (0.82 m, 11-bit) and Pléiades 1A/1B [pleiades] "
                              "(0.7 m, 12-bit) alike, but the MS's values reach"), message
    assert "beyond each one's range: no known sensor fits)" in message and "Set 'Sensor'" in message, message
    log = Log()
    res = pansharpen(pan, ms, str(tmp_path / "o.tif"), "auto", "mtf_glp_hpm", feedback=log)
    assert res.sensor == "generic" and gdal.Open(str(tmp_path / "o.tif")).GetMetadataItem("KSDIFF_SENSOR") == "generic"
    assert any("no known sensor fits" in line for line in log.lines), log.lines
    assert not any("IKONOS's" in line for line in log.lines if line.startswith("MTF gains")), log.lines


def test_a_12_bit_product_at_0_7_m_is_pleiades(cached, tmp_path):
    """Pléiades 1A/1B's own 0.7 m pixel (its 0.5 m products stay WorldView-2's, whose network serves them): 12-bit
    values beyond GaoFen-2's and IKONOS's ranges are Pléiades's; 11-bit ones fit IKONOS and Pléiades alike: IKONOS,
    as before, with a warning that names Pléiades and SENSOR=pleiades (not GaoFen-2, whose range they exceed)."""
    pan, ms = _pair(cached, tmp_path / "phr", 4095, pixel=0.7)
    found = detect_sensor(_info(pan), _info(ms), 4)
    assert found.key == "pleiades" and not found.warnings, found.message()
    assert "within Pléiades 1A/1B's 12-bit" in found.message(), found.message()
    pan, ms = _pair(cached, tmp_path / "eleven", 2047, pixel=0.72)
    found = detect_sensor(_info(pan), _info(ms), 4)
    assert found.key == "ikonos" and len(found.warnings) == 1, (found.message(), found.warnings)
    assert "within IKONOS's and Pléiades 1A/1B's ranges, beyond GaoFen-2's 10-bit range (0-1023): IKONOS [ikonos] " \
        "is used. For Pléiades 1A/1B's products, set 'Sensor' (SENSOR=pleiades)" in found.warnings[0], found.warnings


@pytest.mark.parametrize("pair", ["wv2/pair1", "wv2/pair2", "wv2/pair3", "landsat8/"])
def test_the_real_scenes_keep_their_sensor(cached, pair):
    """The cached real scenes, SENSOR auto: WorldView-2 pairs 1-3 stay wv2 and the Landsat 8 scene landsat8 (a check
    that the pixel-size candidates changed nothing for them, not a choice made on pair 3)."""
    pan, ms = cached(f"{pair}{'_' if pair.startswith('wv2') else ''}pan.tif"), \
        cached(f"{pair}{'_' if pair.startswith('wv2') else ''}ms.tif")
    ratio = 2 if pair.startswith("landsat8") else 4
    found = detect_sensor(_info(str(pan)), _info(str(ms)), ratio)
    assert found.key == ("landsat8" if ratio == 2 else "wv2") and not found.unrecognised, found.message()
