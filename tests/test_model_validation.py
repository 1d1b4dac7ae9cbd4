"""A user's MODEL is checked before any pixel is written: card fields within bounds, the graph probed."""
from __future__ import annotations

import json
import math
import os

import onnx
import pytest
from onnx import TensorProto, helper

from ksdiff_qgis.engine import runtime
from ksdiff_qgis.engine.model_card import sha256_file

BANDS = ["Blue", "Green", "Red", "NIR"]


def _graph(kind: str, bands: int = 4) -> onnx.ModelProto:
    """Small graphs (pan, lms) -> hrms: 'identity' works; the others are broken in one way each."""
    pan = helper.make_tensor_value_info("pan", TensorProto.FLOAT, ["N", 1, "H", "W"])
    lms = helper.make_tensor_value_info("lms", TensorProto.FLOAT, ["N", bands, "H", "W"])
    out = helper.make_tensor_value_info("hrms", TensorProto.FLOAT, None)
    inits = [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])]
    nodes = [helper.make_node("Mul", ["pan", "zero"], ["z"])]
    if kind == "identity":
        nodes.append(helper.make_node("Add", ["lms", "z"], ["hrms"]))
    elif kind == "one_band":       # returns only the first band
        inits += [helper.make_tensor(n, TensorProto.INT64, [1], [v]) for n, v in (("s", 0), ("e", 1), ("a", 1))]
        nodes += [helper.make_node("Slice", ["lms", "s", "e", "a"], ["first"]),
                  helper.make_node("Add", ["first", "z"], ["hrms"])]
    elif kind == "half_size":      # returns a half-resolution image
        nodes += [helper.make_node("Add", ["lms", "z"], ["full"]),
                  helper.make_node("AveragePool", ["full"], ["hrms"], kernel_shape=[2, 2], strides=[2, 2])]
    elif kind == "nan":            # 0 / 0 everywhere
        nodes += [helper.make_node("Div", ["z", "z"], ["nan"]), helper.make_node("Add", ["lms", "nan"], ["hrms"])]
    elif kind == "dark_nan":       # sqrt(pan - 0.1): NaN on dark pixels only, which the probe ramp lacks
        inits.append(helper.make_tensor("tenth", TensorProto.FLOAT, [], [0.1]))
        nodes += [helper.make_node("Sub", ["pan", "tenth"], ["d"]), helper.make_node("Sqrt", ["d"], ["r"]),
                  helper.make_node("Mul", ["r", "zero"], ["r0"]), helper.make_node("Add", ["lms", "r0"], ["hrms"])]
    graph = helper.make_graph(nodes, kind, [pan, lms], [out], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def make_model(folder, kind: str = "identity", **card_changes):
    """An ONNX file and its card (sha256 matching) in ``folder``; ``card_changes`` overrides card fields."""
    path = folder / f"{kind}.onnx"
    onnx.save(_graph(kind), str(path))
    card = {"format_version": 1, "sensor": "wv2", "bands": BANDS, "ratio": 4, "scale": 2047.0, "method": "ksdiff",
            "inputs": {"pan": "pan", "lms": "lms"}, "output": "hrms", "layout": "NCHW", "margin": 2,
            "size_multiple": 4, "onnx_sha256": sha256_file(path)}
    card.update(card_changes)
    card = {k: v for k, v in card.items() if v is not None}
    path.with_suffix(".json").write_text(json.dumps(card))   # json writes NaN/Infinity as bare words
    return path


def _expect_refused(data_dir, tmp_path, model, match):
    import processing
    from qgis.core import QgsProcessingException

    runtime.clear_cache()
    out = tmp_path / "o.tif"
    with pytest.raises(QgsProcessingException, match=match):
        processing.run("ksdiff:pansharpen", {"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"),
                                             "SENSOR": "wv2", "METHOD": "ksdiff", "MODEL": str(model),
                                             "TILE_SIZE": 128, "OVERLAP": 16, "THREADS": 1, "OUTPUT": str(out)})
    assert not out.exists()
    assert not [f for f in os.listdir(tmp_path) if "partial" in f]


@pytest.mark.parametrize("field,value,match", [
    ("margin", -5, "invalid margin"),
    ("margin", 3000, "invalid margin"),
    ("margin", 2.5, "invalid margin"),
    ("size_multiple", 0, "invalid size_multiple"),
    ("size_multiple", 4096, "invalid size_multiple"),
    ("ratio", 1, "invalid ratio"),
    ("ratio", True, "invalid ratio"),
    ("ratio", 32, "invalid ratio"),
    ("scale", math.inf, "invalid scale"),
    ("scale", math.nan, "invalid scale"),
    ("scale", 0, "invalid scale"),
    ("scale", "2047", "invalid scale"),
    ("scale", 1e9, "invalid scale"),
    ("bands", "BGRN", "invalid bands"),
    ("bands", [1, 2, 3, 4], "invalid bands"),
    ("bands", [], "invalid bands"),
    ("inputs", {"pan": "pan"}, "invalid inputs"),
    ("output", 3, "invalid output"),
    ("layout", "NHWC", "invalid layout"),
])
def test_card_fields_out_of_bounds(qgis_app, data_dir, tmp_path, field, value, match):
    _expect_refused(data_dir, tmp_path, make_model(tmp_path, **{field: value}), match)


def test_card_names_tensors_the_graph_lacks(qgis_app, data_dir, tmp_path):
    _expect_refused(data_dir, tmp_path, make_model(tmp_path, inputs={"pan": "panchro", "lms": "lms"}),
                    "names the pan input 'panchro'.*inputs are pan, lms")
    _expect_refused(data_dir, tmp_path, make_model(tmp_path, output="fused"), "names the output 'fused'")


@pytest.mark.parametrize("kind,match", [
    ("one_band", r"shape \(1, 1, .*promises \(1, 4,"),
    ("half_size", r"shape \(1, 4, 4, 4\) for a 8x8 tile"),
    ("nan", "NaN or infinite values"),
])
def test_broken_graphs(qgis_app, data_dir, tmp_path, kind, match):
    _expect_refused(data_dir, tmp_path, make_model(tmp_path, kind), match)


def test_graph_producing_nan_on_the_data(qgis_app, data_dir, tmp_path):
    """Passes the probe, but returns NaN on dark pixels: refused instead of silently writing nodata."""
    _expect_refused(data_dir, tmp_path, make_model(tmp_path, "dark_nan"), "returned NaN or infinite values on the tile")


def test_valid_model_runs(qgis_app, data_dir, tmp_path):
    import processing
    from osgeo import gdal

    runtime.clear_cache()
    model = make_model(tmp_path, size_multiple=None)    # size_multiple is optional (1)
    out = str(tmp_path / "ok.tif")
    processing.run("ksdiff:pansharpen", {"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"),
                                         "SENSOR": "wv2", "METHOD": "ksdiff", "MODEL": str(model), "THREADS": 1,
                                         "OUTPUT": out})
    arr = gdal.Open(out).ReadAsArray()
    assert arr.shape == (4, 256, 256) and (arr > 0).all()


def test_probe_side():
    from ksdiff_qgis.engine.learned import probe_side
    from ksdiff_qgis.engine.model_card import ModelCard

    card = lambda m, k: ModelCard(None, {"margin": m, "size_multiple": k})  # noqa: E731
    assert probe_side(card(0, 1)) == 8
    assert probe_side(card(10, 1)) == 21
    assert probe_side(card(10, 16)) == 32
    assert probe_side(card(256, 64)) == 576


def test_an_edited_card_is_refused(tmp_path, data_dir):
    """A card whose fields were edited beside an untouched ONNX (the hash still matches): refused, since the ONNX
    carries the card it was exported with (an edited int8 scale ran; an edited ratio gave a misleading refusal)."""
    import json
    import shutil

    from ksdiff_qgis.engine.errors import InputError
    from ksdiff_qgis.engine.model_card import bundled_cards
    from ksdiff_qgis.engine.pipeline import pansharpen

    src = bundled_cards()["wv2"]
    onnx = tmp_path / "mine.onnx"
    shutil.copy(src, onnx)
    card = json.loads(src.with_suffix(".json").read_text())
    card["notes"] = "edited"
    onnx.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(InputError, match="differs from the card inside"):
        pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2",
                   "ksdiff", model_path=str(onnx))


def test_a_card_edited_after_its_model_ran_is_refused(tmp_path, data_dir):
    """The same refusal when the card is edited after a run in the same session (QA: the cached session's probe
    skipped the comparison, so the edited card ran; a fresh process refused it)."""
    import json
    import shutil

    from ksdiff_qgis.engine.errors import InputError
    from ksdiff_qgis.engine.model_card import bundled_cards
    from ksdiff_qgis.engine.pipeline import pansharpen

    src = bundled_cards()["wv2"]
    onnx = tmp_path / "mine.onnx"
    shutil.copy(src, onnx)
    shutil.copy(src.with_suffix(".json"), onnx.with_suffix(".json"))
    args = (str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"))
    pansharpen(*args, str(tmp_path / "first.tif"), "wv2", "ksdiff", model_path=str(onnx))
    card = json.loads(src.with_suffix(".json").read_text())
    card["notes"] = "edited"
    onnx.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(InputError, match="differs from the card inside"):
        pansharpen(*args, str(tmp_path / "o.tif"), "wv2", "ksdiff", model_path=str(onnx))


@pytest.mark.parametrize("field, value", [("ratio", 4), ("sensor", "wv2")])
def test_an_edited_ratio_or_sensor_is_refused_as_edited_before_it_is_used(tmp_path, data_dir, field, value):
    """QA 49a: a card's ratio edited to 4 was refused with "the model mine.onnx was trained for ratio 4; the data has
    ratio 2" (the edit acted on), and an edited sensor first warned "trained for WorldView-2". The card is compared
    with the one inside the ONNX before any field is used: refused as edited, no other message, no output."""
    import json
    import shutil

    from ksdiff_qgis.engine.errors import InputError
    from ksdiff_qgis.engine.feedback import RecordingFeedback
    from ksdiff_qgis.engine.model_card import bundled_cards
    from ksdiff_qgis.engine.pipeline import pansharpen

    src = bundled_cards()["landsat8"]   # ratio 2, as the Landsat 8 fixture
    model = tmp_path / "mine.onnx"
    shutil.copy(src, model)
    card = json.loads(src.with_suffix(".json").read_text())
    card[field] = value
    model.with_suffix(".json").write_text(json.dumps(card))
    fb = RecordingFeedback()
    with pytest.raises(InputError) as e:
        pansharpen(str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif"), str(tmp_path / "o.tif"), "landsat8",
                   "ksdiff", model_path=str(model), feedback=fb)
    assert "the model card mine.json differs from the card inside mine.onnx: it was edited" in str(e.value)
    assert not [line for line in fb.lines if "WorldView-2" in line or "trained for" in line], fb.lines
    assert not (tmp_path / "o.tif").exists()


def test_a_model_without_its_card_says_how_to_get_one(tmp_path):
    """QA 49a: "the model mine.onnx has no model card (mine.json beside it)" said what was wrong, not how to fix it."""
    import shutil

    from ksdiff_qgis.engine.errors import InputError
    from ksdiff_qgis.engine.model_card import bundled_cards, load_card

    shutil.copy(bundled_cards()["wv2"], tmp_path / "mine.onnx")
    with pytest.raises(InputError, match=r"has no model card \(mine\.json beside it\): copy the mine\.json exported "
                                         r"with it into the same folder, or export the model again"):
        load_card(tmp_path / "mine.onnx")


def test_a_model_of_more_bands_than_the_ms_has_gets_advice_that_can_work(tmp_path, data_dir, qgis_app):
    """QA 49a: a copy of the bundled 8-band wv3.onnx as MODEL on a 4-band WorldView-2 MS said "they were not all found
    among the selected MS bands (Blue, Green, Red, NIR): include them in MS_BANDS", which no selection can do. Now it
    says the MS has 4 bands and the model needs 8, and offers a classical method or a 4-band model."""
    import shutil

    from ksdiff_qgis.engine.model_card import bundled_cards

    src = bundled_cards()["wv3"]
    model = tmp_path / "eight.onnx"
    shutil.copy(src, model)
    shutil.copy(src.with_suffix(".json"), model.with_suffix(".json"))
    _expect_refused(data_dir, tmp_path, model,
                    r"the model expects 8 MS bands \(Coastal.*\); the MS raster has 4 \(Blue, Green, Red, NIR\): "
                    r"choose a classical method \(it fuses any bands\), or a 4-band model \(MODEL empty")


@pytest.mark.parametrize("name, match", [
    ("mine.json", r"MODEL mine\.json is a model card: MODEL is the model's \.onnx file \(mine\.onnx\), with this card "
                  r"beside it"),
    ("mine.onnx.txt", r"MODEL mine\.onnx\.txt is not an ONNX model: MODEL is the model's \.onnx file, with its model "
                      r"card \(the \.json exported with it\) beside it")])
def test_model_given_a_card_or_another_file_says_what_model_takes(tmp_path, data_dir, qgis_app, name, match):
    """QA 49a: MODEL given the card (.json) instead of the .onnx got QGIS's bare "Incorrect parameter value for
    MODEL". Now it says MODEL is the .onnx file and its card sits beside it."""
    import shutil

    from ksdiff_qgis.engine.model_card import bundled_cards

    src = bundled_cards()["wv2"]
    shutil.copy(src, tmp_path / "mine.onnx")
    shutil.copy(src.with_suffix(".json"), tmp_path / "mine.json")
    shutil.copy(src, tmp_path / "mine.onnx.txt")
    _expect_refused(data_dir, tmp_path, tmp_path / name, match)
