"""A PAN or MS with a GDAL mask (an internal mask, GDAL_TIFF_INTERNAL_MASK=YES, or a .msk beside it: COG writers and
``gdal_translate -mask`` leave them) is shown by QGIS's GDAL provider with one extra alpha band. The plugin counts the
file's bands as GDAL reads them (``common.gdal_band_count``): the nodata check, the dialog's PAN/MS preselection and
MS_BANDS do not take that extra band for one of the file's. On real WorldView-2 pair 1 crops, through Processing."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

PAN_WIN, MS_WIN = [64, 64, 256, 256], [16, 16, 64, 64]   # the same ground at ratio 4
HIDDEN = (slice(0, 16), slice(0, 20))                    # MS pixels the MS mask hides


def _masked(src, dest, window, internal: bool, hide=None) -> str:
    """A crop of ``src`` (nodata 0 declared) with a per-dataset mask: inside the GeoTIFF (``internal``) or in a .msk
    beside it. The mask is band 1's validity, as ``gdal_translate -mask 1`` writes it, with ``hide`` (rows, columns)
    hidden too."""
    gdal.SetConfigOption("GDAL_TIFF_INTERNAL_MASK", "YES" if internal else "NO")
    try:
        ds = gdal.Translate(str(dest), str(src), options=gdal.TranslateOptions(srcWin=window, maskBand="1"))
        if hide is not None:
            mask = ds.GetRasterBand(1).GetMaskBand()
            values = mask.ReadAsArray()
            values[hide] = 0
            mask.WriteArray(values)
            mask = None
        ds = None
    finally:
        gdal.SetConfigOption("GDAL_TIFF_INTERNAL_MASK", None)
    ds = gdal.Open(str(dest))
    assert ds.GetRasterBand(1).GetMaskFlags() == gdal.GMF_PER_DATASET and ds.GetRasterBand(1).GetNoDataValue() == 0
    return str(dest)


@pytest.fixture()
def masked_pair(cached, tmp_path):
    """(PAN with a .msk, MS with an internal mask hiding ``HIDDEN``): paths of crops of WV2 pair 1."""
    pan = _masked(cached("wv2/pair1_pan.tif"), tmp_path / "pan_m.tif", PAN_WIN, internal=False)
    ms = _masked(cached("wv2/pair1_ms.tif"), tmp_path / "ms_m.tif", MS_WIN, internal=True, hide=HIDDEN)
    assert (tmp_path / "pan_m.tif.msk").exists() and not (tmp_path / "ms_m.tif.msk").exists()
    return pan, ms


def _layer(path: str, name: str):
    from qgis.core import QgsRasterLayer

    layer = QgsRasterLayer(path, name, "gdal")
    assert layer.isValid()
    return layer


def _pansharpen(pan, ms, out, log=None, **extra):
    import processing
    from test_issue14_processing import Log

    log = log if log is not None else Log()
    res = processing.run("ksdiff:pansharpen", {"PAN": pan, "MS": ms, "SENSOR": "wv2", "METHOD": "mtf_glp_hpm",
                                               "OUTPUT": str(out), **extra}, feedback=log)
    return res, log


def test_qgis_shows_a_files_mask_as_one_more_band_the_file_does_not_have(qgis_app, masked_pair):
    """What the fix stands on: QGIS 3.22's provider counts the mask, GDAL does not; ``gdal_band_count`` is GDAL's."""
    from ksdiff_qgis.algorithms.common import gdal_band_count

    for path, bands in zip(masked_pair, (1, 4)):
        layer = _layer(path, "masked")
        assert gdal.Open(path).RasterCount == bands and layer.bandCount() == bands + 1
        assert gdal_band_count(layer) == bands


def test_a_files_own_alpha_band_is_one_of_its_bands(qgis_app, cached, tmp_path):
    """An alpha band the file has (ALPHA=YES) is a band of the file, counted as GDAL counts it."""
    from ksdiff_qgis.algorithms.common import gdal_band_count

    src = gdal.Open(str(cached("wv2/pair1_ms.tif")))
    ds = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "alpha.tif"), 64, 64, 5, gdal.GDT_UInt16,
                                              ["ALPHA=YES"])
    ds.SetGeoTransform(src.GetGeoTransform())
    ds.SetProjection(src.GetProjection())
    ds.WriteRaster(0, 0, 64, 64, src.ReadRaster(0, 0, 64, 64), band_list=[1, 2, 3, 4])
    ds.GetRasterBand(5).Fill(65535)
    ds = None
    layer = _layer(str(tmp_path / "alpha.tif"), "alpha")
    assert layer.bandCount() == gdal_band_count(layer) == 5


def test_masked_inputs_with_nodata_are_not_warned_of_differing_nodata(qgis_app, masked_pair, tmp_path):
    """QA: a masked 4-band MS with nodata 0 warned "band 1: 0; band 2: 0; band 3: 0; band 4: 0; band 5: none", a masked
    PAN "band 1: 0; band 2: none": band 5 and 2 are QGIS's mask band. No warning now; the mask still hides its
    pixels in the output."""
    pan, ms = masked_pair
    res, log = _pansharpen(pan, _layer(ms, "ms_m"), tmp_path / "o.tif")
    assert not any("different nodata values" in line for line in log.lines), log.lines
    out = gdal.Open(res["OUTPUT"]).ReadAsArray()
    assert (out[:, :64, :80] == 0).all() and (out[:, 64:, 80:] != 0).mean() > 0.99


def test_bands_that_really_differ_are_still_warned_without_the_mask_band(qgis_app, masked_pair, tmp_path):
    """A value set on band 2 alone of a masked MS is warned, listing the file's four bands (no 'band 5')."""
    from qgis.core import QgsRasterRange

    pan, ms = masked_pair
    layer = _layer(ms, "ms_m")
    layer.dataProvider().setUserNoDataValue(2, [QgsRasterRange(77, 77)])
    _, log = _pansharpen(pan, layer, tmp_path / "o.tif")
    said = [line for line in log.lines if "different nodata values" in line]
    assert len(said) == 1 and "(band 1: 0; band 2: 0, 77; band 3: 0; band 4: 0)" in said[0], said


def test_assess_of_masked_inputs_says_nothing_of_differing_nodata(qgis_app, masked_pair, tmp_path):
    """ksdiff:assess runs the same check on its PAN and MS."""
    import processing
    from test_issue14_processing import Log

    pan, ms = masked_pair
    res, _ = _pansharpen(pan, ms, tmp_path / "fused.tif")
    log = Log()
    processing.run("ksdiff:assess", {"FUSED": res["OUTPUT"], "PAN": pan, "MS": ms, "SENSOR": "wv2",
                                     "OUTPUT_HTML": str(tmp_path / "r.html")}, feedback=log)
    assert (tmp_path / "r.html").exists()
    assert not any("different nodata values" in line for line in log.lines), log.lines


def test_the_dialog_preselects_a_masked_pan_and_ms(qgis_app, masked_pair):
    """A masked PAN has two bands for QGIS, and was never taken for a PAN (one band): the pair is preselected."""
    from qgis.core import QgsProject

    from ksdiff_qgis.algorithms.layer_pair import plausible_pair

    project = QgsProject()   # a project of its own, never QgsProject.instance()
    pan, ms = _layer(masked_pair[0], "pair1_pan"), _layer(masked_pair[1], "pair1_ms")
    project.addMapLayers([pan, ms])
    assert plausible_pair(project) == (pan.id(), ms.id())


def test_ms_bands_naming_the_mask_band_is_refused_saying_what_it_is(qgis_app, masked_pair, tmp_path):
    """QGIS's band picker lists the mask as band 5 of a masked 4-band MS ("Select All" picks it): the run is refused
    before anything is written, saying band 5 is the file's mask and what to choose; the file's bands fuse."""
    from qgis.core import QgsProcessingException
    from test_issue14_processing import Log

    pan, ms = masked_pair
    out, log = tmp_path / "o.tif", Log()
    with pytest.raises(QgsProcessingException) as refused:   # by the parameter check, before the run
        _pansharpen(pan, ms, out, log=log, MS_BANDS=[1, 2, 3, 4, 5])
    said = str(refused.value)
    assert "MS_BANDS: band 5 of the layer 'ms_m' is not a band of its file but the file's mask" in said, said
    assert "The file has 4 band(s) (1–4)" in said and not out.exists()
    res, _ = _pansharpen(pan, ms, out, MS_BANDS=[4, 3, 2])
    ds = gdal.Open(res["OUTPUT"])
    assert ds.RasterCount == 3 and np.any(ds.ReadAsArray())


def test_the_preselection_opens_a_file_only_where_its_mask_decides_and_never_a_remote_one(qgis_app, masked_pair,
                                                                                         tmp_path, monkeypatch):
    """Review: each time the dialog opened, every project raster whose last band is alpha was opened with GDAL,
    remote ones too. A file is opened only where QGIS's count may hold a mask band and that decides: 2 bands shown
    (a masked PAN) and 4 or more (a masked MS); not 3 (two bands besides the alpha one: no MS either way), nor a
    source that is no local file (``/vsimem/`` here, as ``/vsicurl/``)."""
    from qgis.core import QgsProject

    from ksdiff_qgis.algorithms import common
    from ksdiff_qgis.algorithms.layer_pair import plausible_pair

    gdal.SetConfigOption("GDAL_TIFF_INTERNAL_MASK", "YES")
    try:
        for dest, src, bands in ((str(tmp_path / "two_m.tif"), masked_pair[1], [1, 2]),
                                 ("/vsimem/review51/pan_m.tif", masked_pair[0], None)):
            gdal.Translate(dest, src, options=gdal.TranslateOptions(bandList=bands, maskBand="1"))   # closed: unheld
    finally:
        gdal.SetConfigOption("GDAL_TIFF_INTERNAL_MASK", None)
    opened: list[str] = []
    real = common.open_dataset

    def counted(path, *args, **kwargs):
        opened.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(common, "open_dataset", counted)
    try:
        project = QgsProject()   # a project of its own, never QgsProject.instance()
        layers = {name: _layer(path, name) for name, path in (
            ("pair1_pan", masked_pair[0]), ("pair1_ms", masked_pair[1]), ("two", str(tmp_path / "two_m.tif")),
            ("remote_pan", "/vsimem/review51/pan_m.tif"))}
        assert [layers[n].bandCount() for n in layers] == [2, 5, 3, 2]   # QGIS's counts, with the mask band
        project.addMapLayers(list(layers.values()))
        assert plausible_pair(project) == (layers["pair1_pan"].id(), layers["pair1_ms"].id())
        assert sorted(opened) == sorted(masked_pair), opened
    finally:
        gdal.Unlink("/vsimem/review51/pan_m.tif")
