"""Parameter text that cannot run is refused by the algorithms' checkParameterValues, with the words the run would
use: processing.run raises "Unable to execute algorithm\\n<message>" and the dialog shows it before the run. Refused
in prepareAlgorithm, QGIS kept only "There were errors executing the algorithm." (QA: MTF_GAINS "0,3", MS_BANDS "a",
an EXTENT in an unknown CRS, ksdiff:assess without anything to compare with); a missing MODEL ran silently with a
classical METHOD."""
from __future__ import annotations

import os

import pytest

UNABLE = "Unable to execute algorithm\n"

PANSHARPEN_REFUSED = [
    ({"MTF_GAINS": "0,3"}, "MTF_GAINS: '0,3' reads as the gains 0, 3, which must lie between 0 and 1: use a decimal "
                           "point (0.3)"),
    ({"MS_BANDS": "a"}, "MS_BANDS: 'a' is not a list of band numbers (1 for the first band): give them as 4,3,2,1"),
    ({"MS_BANDS": "3,9"}, "MS_BANDS: band 9 does not exist (the MS raster has 4 bands)"),
    ({"MS_BANDS": "2 2"}, "MS_BANDS: a band is selected twice"),
    ({"EXTENT": "593270,593370,5747557,5747657 [FOO:1]"},
     'EXTENT: the text in brackets could not be read as a CRS: "FOO:1". Use EPSG:xxxx'),
    ({"EXTENT": "593270,593370"}, 'EXTENT: "593270,593370" gives no rectangle'),
    ({"MODEL": "/nope/model.onnx"}, 'MODEL: the model file "/nope/model.onnx" does not exist; give the model\'s .onnx '
                                    "file (its model card beside it), or leave MODEL empty for the bundled model"),
    ({"CREATE_OPTIONS": "ZLEVEL=9|TILED"}, "creation option 'TILED' is not of the form KEY=VALUE"),
    ({"CREATE_OPTIONS": "NBITS=eleven"}, "creation option NBITS=eleven is not a whole number"),
    ({"TILE_SIZE": 64, "OVERLAP": 40}, "(OVERLAP) is 40; with 'Tile size (PAN pixels, 64–8192)' (TILE_SIZE) 64 it "
                                       "must be 0 to 32"),
]


@pytest.mark.parametrize("given, says", PANSHARPEN_REFUSED, ids=[str(g) for g, _ in PANSHARPEN_REFUSED])
@pytest.mark.parametrize("method", ["brovey", "auto"])
def test_pansharpen_text_refused_by_the_check(qgis_app, pair, tmp_path, given, says, method):
    """Each refusal reaches processing.run with its own words, for a classical METHOD as for auto (a missing MODEL
    too: brovey ignored it silently), and checkParameterValues (the dialog's check) says the same; nothing written."""
    import processing
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingException

    out = tmp_path / "fused.tif"
    params = {**pair, "METHOD": method, **given, "OUTPUT": str(out)}
    with pytest.raises(QgsProcessingException) as raised:
        processing.run("ksdiff:pansharpen", params)
    assert str(raised.value).startswith(UNABLE) and says in str(raised.value), str(raised.value)
    alg = QgsApplication.processingRegistry().algorithmById("ksdiff:pansharpen")
    ok, msg = alg.checkParameterValues(params, QgsProcessingContext())
    assert not ok and says in msg, msg
    assert not out.exists()


def test_pansharpen_good_text_passes_the_check(qgis_app, pair, data_dir, tmp_path):
    """The forms the run takes pass the check: gains and bands in any separator, an extent in a known CRS, a MODEL
    that exists, creation options, the largest overlap."""
    from qgis.core import QgsApplication, QgsProcessingContext

    from ksdiff_qgis.engine.model_card import bundled_cards

    alg = QgsApplication.processingRegistry().algorithmById("ksdiff:pansharpen")
    for given in ({"MTF_GAINS": "0.3"}, {"MTF_GAINS": "0.34 0.32;0.30, 0.22"}, {"MS_BANDS": "4;3 2,1"},
                  {"MS_BANDS": [3, 2, 1]}, {"EXTENT": "593270,593370,5747557,5747657 [EPSG:32631]"},
                  {"MODEL": str(bundled_cards()["wv2"])}, {"CREATE_OPTIONS": "ZLEVEL=9|NBITS=11"},
                  {"TILE_SIZE": 64, "OVERLAP": 32}, {"MS_BANDS": None, "MTF_GAINS": "", "EXTENT": None}):
        ok, msg = alg.checkParameterValues({**pair, **given, "OUTPUT": str(tmp_path / "o.tif")},
                                           QgsProcessingContext())
        assert ok, (given, msg)


@pytest.mark.parametrize("given, says", [
    ({}, "Give a reference raster, or the original PAN and MS, or both: FUSED alone has nothing to be compared with"),
    ({"PAN": "pan"}, "needs both the original PAN and the original MS: PAN is given, MS is not. Give the original MS "
                     "too, or leave PAN empty and give a reference MS (REFERENCE)"),
    ({"MS": "ms", "REFERENCE": "ms"}, "needs both the original PAN and the original MS: MS is given, PAN is not. "
                                      "Give the original PAN too, or leave MS empty to assess against the reference "
                                      "alone"),
])
def test_assess_without_anything_to_compare_is_refused_by_the_check(qgis_app, pair, tmp_path, given, says):
    import processing
    from qgis.core import QgsProcessingException

    report = tmp_path / "report.html"
    params = {"FUSED": pair["MS"], "OUTPUT_HTML": str(report), **{k: pair[v.upper()] for k, v in given.items()}}
    with pytest.raises(QgsProcessingException) as raised:
        processing.run("ksdiff:assess", params)
    assert str(raised.value).startswith(UNABLE) and says in str(raised.value), str(raised.value)
    assert not report.exists()


def test_install_runtime_missing_wheel_is_refused_by_the_check(qgis_app, tmp_path):
    """QGIS checks only that WHEEL ends in .whl; the install's own check says the file is missing (checked only:
    a run would install)."""
    from qgis.core import QgsApplication, QgsProcessingContext

    alg = QgsApplication.processingRegistry().algorithmById("ksdiff:install_runtime")
    wheel = str(tmp_path / "onnxruntime-1.32.0-cp311-cp311-manylinux_2_27_x86_64.whl")
    ok, msg = alg.checkParameterValues({"WHEEL": wheel}, QgsProcessingContext())
    assert not ok and msg.startswith(f'the wheel "{wheel}" does not exist or is not a .whl file: give a downloaded '
                                     "onnxruntime .whl"), msg
    assert alg.checkParameterValues({"PACKAGE": "onnxruntime"}, QgsProcessingContext())[0]


def test_a_refused_check_lets_go_of_the_inputs_it_loaded(qgis_app, pair, tmp_path):
    """QGIS loads file inputs into the context while checking them; a refused check is followed by no run, so it
    lets go of them itself: a script (or the Python console, which keeps the last exception) held them open."""
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingException

    context = QgsProcessingContext()
    with pytest.raises(QgsProcessingException):
        processing.run("ksdiff:pansharpen", {**pair, "MTF_GAINS": "0,3", "OUTPUT": str(tmp_path / "o.tif")},
                       context=context)
    left = [layer.source() for layer in context.temporaryLayerStore().mapLayers().values()]
    assert not any(os.path.samefile(s, pair[k]) for s in left for k in ("PAN", "MS")), left
