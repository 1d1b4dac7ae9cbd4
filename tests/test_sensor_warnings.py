"""What the log says about the sensor before fusing (QA 27): SENSOR=auto's guess from the PAN pixel size alone where
sensors of that size order their MS bands differently; an explicit SENSOR whose PAN pixel size is far from the data's;
and a refused run that prints only its refusal (no warning about the model it was not going to use)."""
from __future__ import annotations

import pytest
from osgeo import gdal, osr
from test_issue14_processing import Log as QgisLog
from test_issue14_processing import _run

from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.raster_io import describe

DOUBT = "from the PAN pixel size alone"
FAR = "far from"


def _pleiades_like(data_dir, tmp_path, photometric: str | None = None) -> str:
    """The real WorldView-2 fixture's MS as Airbus delivers Pléiades: R, G, B, NIR, bands unnamed, 12-bit, no DIMAP
    (``photometric``: RGB writes Red/Green/Blue colour tags on bands 1-3)."""
    src = gdal.Open(str(data_dir / "wv2_ms.tif"))
    path = str(tmp_path / "pleiades_ms.tif")
    options = ["NBITS=12"] + ([f"PHOTOMETRIC={photometric}", "ALPHA=NO"] if photometric else [])
    ds = gdal.GetDriverByName("GTiff").Create(path, src.RasterXSize, src.RasterYSize, 4, gdal.GDT_UInt16, options)
    ds.SetGeoTransform(src.GetGeoTransform())
    ds.SetProjection(src.GetProjection())
    for b, s in enumerate((3, 2, 1, 4), 1):
        ds.GetRasterBand(b).WriteArray(src.GetRasterBand(s).ReadAsArray())
        ds.GetRasterBand(b).SetNoDataValue(0)
    ds = None
    return path


def _scaled(data_dir, tmp_path, factor: float) -> tuple[str, str]:
    """The WorldView-2 fixture pair with its pixels ``factor`` times larger (same ratio): 1.5 m for 3, SPOT 6/7's."""
    out = []
    for role in ("pan", "ms"):
        path = str(tmp_path / f"x{factor:g}_{role}.tif")
        gdal.Translate(path, str(data_dir / f"wv2_{role}.tif"))
        ds = gdal.Open(path, gdal.GA_Update)
        gt = ds.GetGeoTransform()
        ds.SetGeoTransform((gt[0], gt[1] * factor, 0.0, gt[3], 0.0, gt[5] * factor))
        ds = None
        out.append(path)
    return out[0], out[1]


def _warnings(log: RecordingFeedback, text: str) -> list[str]:
    return [line for line in log.lines if line.startswith("WARNING") and text in line]


def _hpm(pan: str, ms: str, out: str, sensor: str, **kw) -> RecordingFeedback:
    log = RecordingFeedback()
    pansharpen(pan, ms, out, sensor, "mtf_glp_hpm", feedback=log, **kw)
    return log


def test_a_guess_by_pan_pixel_size_warns_when_sensors_of_that_size_order_bands_otherwise(data_dir, tmp_path):
    """A 0.5 m R, G, B, NIR product without names or metadata (a Pléiades delivery) is guessed WorldView-2 and was
    fused with Red and Blue swapped, said only in info lines (QA: Wald ERGAS 8.043 against 7.407 as Pléiades).
    Now one warning names the sensors of that pixel size with their band orders and says to set SENSOR."""
    pan, ms = str(data_dir / "wv2_pan.tif"), _pleiades_like(data_dir, tmp_path)
    log = _hpm(pan, ms, str(tmp_path / "auto.tif"), "auto")
    doubt = _warnings(log, DOUBT)
    assert len(doubt) == 1, log.lines
    assert "took WorldView-2" in doubt[0] and "Blue, Green, Red, NIR, as WorldView-2 [wv2]" in doubt[0]
    assert "GeoEye-1 [ge1]" in doubt[0] and "QuickBird [qb]" in doubt[0]
    assert "Pléiades 1A/1B [pleiades] products come as Red, Green, Blue, NIR (MS_BANDS 3,2,1,4)" in doubt[0]
    assert "set SENSOR" in doubt[0] and "Blue and Red would be swapped" in doubt[0]
    assert not _warnings(log, FAR)   # auto: the guess fits the pixel size by construction
    # nothing left to doubt: the sensor set, the bands named, the order chosen with MS_BANDS, or colour tags
    assert not _warnings(_hpm(pan, ms, str(tmp_path / "pl.tif"), "pleiades"), DOUBT)
    assert not _warnings(_hpm(pan, str(data_dir / "wv2_ms.tif"), str(tmp_path / "named.tif"), "auto"), DOUBT)
    assert not _warnings(_hpm(pan, ms, str(tmp_path / "sel.tif"), "auto", ms_bands=[3, 2, 1, 4]), DOUBT)
    (tmp_path / "tags").mkdir()
    tagged = _hpm(pan, _pleiades_like(data_dir, tmp_path / "tags", "RGB"), str(tmp_path / "tags.tif"), "auto")
    # the tags name the bands (tests/test_colour_interp.py)
    assert not _warnings(tagged, DOUBT)
    assert any("from the file's colour interpretation" in line for line in tagged.lines)


def test_a_guess_where_every_sensor_of_that_size_orders_bands_alike_is_not_doubted(data_dir, tmp_path):
    """1.5 m, 4 bands: SPOT 6/7 only (IKONOS's 0.82 m and Pléiades' 0.7 m are beyond a factor 1.5): no warning."""
    pan, ms = _scaled(data_dir, tmp_path, 3.0)
    log = _hpm(pan, _pleiades_like_on(ms, data_dir, tmp_path), str(tmp_path / "o.tif"), "auto")
    assert any("[spot67]" in line for line in log.lines) and not _warnings(log, DOUBT), log.lines


def _pleiades_like_on(grid_of: str, data_dir, tmp_path) -> str:
    """``_pleiades_like`` on the grid of ``grid_of``."""
    path = _pleiades_like(data_dir, tmp_path)
    ds = gdal.Open(path, gdal.GA_Update)
    ds.SetGeoTransform(gdal.Open(grid_of).GetGeoTransform())
    ds = None
    return path


@pytest.mark.parametrize("factor, sensor, warned, fits", [
    (3.0, "pleiades", True, "SPOT 6/7 [spot67]"),     # a SPOT-like 1.5 m product run as Pléiades (0.7 m)
    (1.0, "ikonos", True, "Pléiades 1A/1B [pleiades]"),   # WorldView-2's 0.5 m run as IKONOS (0.82 m)
    (3.0, "spot67", False, None),
    (1.0, "pleiades", False, None),   # Pléiades 1A/1B is delivered at 0.5 m
    (1.0, "wv3_4", False, None),      # so are WorldView-3 products (0.31 m)
    (1.0, "ge1", False, None),
    (1.0, "generic", False, None),
])
def test_an_explicit_sensor_far_from_the_pan_pixel_size_is_warned(data_dir, tmp_path, factor, sensor, warned, fits):
    pan, ms = _scaled(data_dir, tmp_path, factor)
    far = _warnings(_hpm(pan, ms, str(tmp_path / "o.tif"), sensor), FAR)
    assert len(far) == int(warned), far
    if warned:
        assert "Check 'Sensor' (SENSOR)" in far[0] and fits in far[0] \
            and f"The PAN pixel is {0.5 * factor:.2f} m" in far[0]


def test_a_wrong_sensor_with_another_ratio_is_one_warning_saying_what_is_used(data_dir, tmp_path):
    """QA: SENSOR=wv2 on a Landsat 8 pair gave two warnings for one cause (the pixel size, the ratio), neither saying
    that WorldView-2's MTF gains were still applied. Now one warning says both and what the fusion uses."""
    log = _hpm(str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif"), str(tmp_path / "o.tif"), "wv2")
    warned = [line for line in log.lines if line.startswith("WARNING")]
    far = [line for line in warned if FAR in line]
    assert len(far) == 1 and not [w for w in warned if "not 4 as for" in w], warned
    assert "its PAN/MS ratio is 2, not 4" in far[0] and "uses ratio 2 with WorldView-2's MTF gains (" in far[0], far


def _geographic(data_dir, tmp_path, lat: float, px_deg: float) -> tuple[str, str]:
    """The WorldView-2 fixture pair placed in WGS 84 degrees at latitude ``lat``, PAN pixel ``px_deg``."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    out = []
    for role, k in (("pan", 1), ("ms", 4)):
        path = str(tmp_path / f"geo{lat:g}_{role}.tif")
        gdal.Translate(path, str(data_dir / f"wv2_{role}.tif"), outputSRS=srs.ExportToWkt())
        ds = gdal.Open(path, gdal.GA_Update)
        ds.SetGeoTransform((5.0, px_deg * k, 0.0, lat, 0.0, -px_deg * k))
        ds = None
        out.append(path)
    return out[0], out[1]


def test_the_pixel_size_check_reads_degrees_as_metres_only_when_it_can(data_dir, tmp_path):
    """A geographic CRS is converted at the raster's latitude (4.5e-6 degrees at the equator: 0.50 m, IKONOS warned);
    square degrees far north (far from square on the ground) and a raster without a CRS say nothing."""
    from ksdiff_qgis.engine.sensor_detect import pan_pixel_m

    pan, ms = _geographic(data_dir, tmp_path, 0.0, 4.5e-6)
    assert pan_pixel_m(describe(gdal.Open(pan), pan)) == pytest.approx(0.50, abs=0.01)
    assert _warnings(_hpm(pan, ms, str(tmp_path / "ik.tif"), "ikonos"), FAR)
    assert not _warnings(_hpm(pan, ms, str(tmp_path / "wv.tif"), "wv2"), FAR)
    north, _ = _geographic(data_dir, tmp_path, 65.0, 8e-6)
    assert pan_pixel_m(describe(gdal.Open(north), north)) is None
    bare = str(tmp_path / "nocrs.tif")
    gdal.Translate(bare, str(data_dir / "wv2_pan.tif"))
    ds = gdal.Open(bare, gdal.GA_Update)
    ds.SetProjection("")
    ds = None
    assert pan_pixel_m(describe(gdal.Open(bare), bare)) is None


def test_a_refused_run_prints_only_its_refusal(data_dir, tmp_path):
    """SENSOR=pleiades on a 3-band MS warned 'no KSDiff model was trained on Pléiades ...; using qb.onnx' and then
    stopped on the band count; a ratio-2 pair run as Pléiades Neo warned 'using landsat8.onnx' and then stopped on
    the band count; METHOD ksdiff on a ratio-2 pair as Pléiades warned of qb.onnx and stopped on the ratio."""
    ms3 = str(tmp_path / "ms3.tif")
    gdal.Translate(ms3, str(data_dir / "wv2_ms.tif"), bandList=[1, 2, 3])
    cases = [(str(data_dir / "wv2_pan.tif"), ms3, "pleiades", "auto", "has 3 bands but sensor Pléiades"),
             (str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif"), "pneo", "auto", "has 4 bands but sensor Pl"),
             (str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif"), "pleiades", "ksdiff",
              "trained for ratio 4; the data has ratio 2 .*SENSOR=landsat8")]
    for i, (pan, ms, sensor, method, refusal) in enumerate(cases):
        log = RecordingFeedback()
        with pytest.raises(InputError, match=refusal):
            pansharpen(pan, ms, str(tmp_path / f"r{i}.tif"), sensor, method, feedback=log)
        assert not [line for line in log.lines if ".onnx" in line or "KSDiff model" in line], (sensor, log.lines)
        assert not (tmp_path / f"r{i}.tif").exists()
    # a run that goes ahead still says which model it borrows
    log = RecordingFeedback()
    pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "ok.tif"), "pleiades",
               "ksdiff", feedback=log)
    assert _warnings(log, "no KSDiff model was trained on Pléiades") and _warnings(log, "qb.onnx")


def test_through_processing_the_band_order_doubt_is_a_warning(qgis_app, data_dir, tmp_path):
    """Through QGIS Processing the band-order doubt reaches pushWarning (it was two pushInfo lines)."""
    log = QgisLog()
    _run({"PAN": str(data_dir / "wv2_pan.tif"), "MS": _pleiades_like(data_dir, tmp_path), "SENSOR": "auto",
          "METHOD": "mtf_glp_hpm", "OUTPUT": str(tmp_path / "auto.tif")}, log)
    assert len([line for line in log.lines if line.startswith("WARNING") and DOUBT in line]) == 1, log.lines


def test_through_processing_a_refusal_comes_alone(qgis_app, data_dir, tmp_path):
    """Through QGIS Processing a run refused on its band count pushes no warning about the model first."""
    from qgis.core import QgsProcessingException

    log = QgisLog()
    with pytest.raises(QgsProcessingException, match="has 4 bands but sensor"):
        _run({"PAN": str(data_dir / "l8_pan.tif"), "MS": str(data_dir / "l8_ms.tif"), "SENSOR": "pneo",
              "METHOD": "auto", "OUTPUT": str(tmp_path / "pneo.tif")}, log)
    assert not [line for line in log.lines if line.startswith("WARNING")], log.lines
    assert not (tmp_path / "pneo.tif").exists()
