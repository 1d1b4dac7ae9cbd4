"""A shared or hostile MODEL (QA 97): a card of wrong types, a deeply nested card, tensors kept in an external-data
file, a graph whose declared shapes do not fit its card, ONNX Runtime's raw errors, odd files given as MODEL. Each is
refused in one line before any pixel, or said in the log."""
from __future__ import annotations

import json
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ksdiff_qgis.engine import runtime
from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.model_card import check_model_file, load_card, sha256_file
from ksdiff_qgis.engine.pipeline import pansharpen, resolve_model

BANDS = ["Blue", "Green", "Red", "NIR"]


def _graph(pan_shape=(1, 1, "H", "W"), lms_shape=(1, 4, "H", "W"), out_shape=(1, 4, "H", "W"),
           opset: int = 17) -> onnx.ModelProto:
    """hrms = lms + 0 * pan, with the declared shapes given."""
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in
          (("pan", pan_shape), ("lms", lms_shape), ("hrms", out_shape))]
    one = numpy_helper.from_array(np.ones((1, 4, 1, 1), np.float32), "one")
    zero = numpy_helper.from_array(np.zeros((1,), np.float32), "zero")
    nodes = [helper.make_node("Mul", ["lms", "one"], ["l1"]), helper.make_node("Mul", ["pan", "zero"], ["pz"]),
             helper.make_node("Add", ["l1", "pz"], ["hrms"])]
    model = helper.make_model(helper.make_graph(nodes, "qa", io[:2], io[2:], initializer=[one, zero]),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _card(**changes) -> dict:
    card = {"format_version": 1, "sensor": "wv2", "bands": BANDS, "ratio": 4, "scale": 2047.0, "method": "ksdiff",
            "inputs": {"pan": "pan", "lms": "lms"}, "output": "hrms", "layout": "NCHW", "margin": 2,
            "size_multiple": 4, "training": {"note": "qa"}}
    card.update(changes)
    return card


def _save(folder, model: onnx.ModelProto, card: dict, embed: bool = True, embedded_text: str | None = None,
          **save_kwargs) -> str:
    """model.onnx with ``card`` embedded (as model_core.export does; ``embedded_text``: that copy's raw text) and its
    JSON beside it, its sha256 matching: self-consistent, as a sharer could make it."""
    path = folder / "model.onnx"
    del model.metadata_props[:]
    if embed:
        model.metadata_props.add(key="model_card", value=embedded_text or json.dumps(card, sort_keys=True))
    onnx.save(model, str(path), **save_kwargs)
    path.with_suffix(".json").write_text(json.dumps(dict(card, onnx_sha256=sha256_file(path))))
    return str(path)


def _run(data_dir, tmp_path, model: str, fb: RecordingFeedback):
    runtime.clear_cache()
    return pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2",
                      "ksdiff", model_path=model, feedback=fb, tile_size=128, threads=1)


@pytest.mark.parametrize("training, match", [
    ("yes", r"has an invalid 'training' \('yes'\): it must be an object"),
    ({"unfinished": "smoke", "unfinished_at": "x"}, r"has an invalid 'training' unfinished_at \('x'\)"),
    ({"adapted_from": ["x"]}, r"has an invalid 'training' adapted_from"),
    ({"unfinished": 3}, r"has an invalid 'training' unfinished"),
])
def test_a_training_field_of_the_wrong_type_is_refused_in_one_line(tmp_path, data_dir, training, match):
    """QA 97: "training": "yes" or a string unfinished_at ended in an AttributeError traceback, "Internal error"."""
    fb = RecordingFeedback()
    with pytest.raises(InputError, match=match) as e:
        _run(data_dir, tmp_path, _save(tmp_path, _graph(), _card(training=training)), fb)
    assert "\n" not in str(e.value) and str(e.value).startswith("the model card model.json")
    assert not (tmp_path / "o.tif").exists()


def test_a_deeply_nested_card_is_not_a_valid_card(tmp_path):
    """QA 97: "[" * 100000 + "]" * 100000 as the card raised RecursionError, as the card beside or inside the file."""
    deep = "[" * 100000 + "]" * 100000
    path = _save(tmp_path, _graph(), _card(), embed=False)
    (tmp_path / "model.json").write_text(deep)
    with pytest.raises(InputError, match="model.json is not a valid card: its JSON is nested too deep"):
        load_card(path)
    path = _save(tmp_path, _graph(), _card(), embedded_text=deep)
    with pytest.raises(InputError, match=r"the card inside model.onnx is not a valid card"):
        load_card(path)


def test_tensors_in_an_external_data_file_are_refused(tmp_path):
    """QA 97: a weights.bin beside a valid model was outside the sha256 check: changing it changed the output
    silently. A model whose graph uses external data is refused, naming the single-file export."""
    path = _save(tmp_path, _graph(), _card(), save_as_external_data=True, all_tensors_to_one_file=True,
                 location="weights.bin", size_threshold=0)
    assert (tmp_path / "weights.bin").is_file()
    np.full(5, 7.0, np.float32).tofile(tmp_path / "weights.bin")   # tampered: the .onnx and its card still agree
    with pytest.raises(InputError, match=r"keeps tensors in a separate file \(ONNX external data\).*export the "
                                         r"model as a single \.onnx file"):
        load_card(path)


@pytest.mark.parametrize("shapes, match", [
    ({"pan_shape": (1, 1, 64, 64), "lms_shape": (1, 4, 64, 64), "out_shape": (1, 4, 64, 64)},
     r"pan input has a fixed shape \(1x1x64x64\).*export the model with dynamic height and width"),
    ({"out_shape": (1, 3, "H", "W")}, r"output has 3 bands, but its card lists 4 MS bands"),
    ({"pan_shape": (1, "H", "W")}, r"pan input has 3 dimensions"),
])
def test_declared_shapes_that_do_not_fit_the_card_are_refused_before_running(tmp_path, data_dir, shapes, match):
    """QA 97: a fixed 64x64 input failed mid-run with ONNX Runtime's four-line "Got invalid dimensions" text."""
    fb = RecordingFeedback()
    with pytest.raises(InputError, match=match):
        _run(data_dir, tmp_path, _save(tmp_path, _graph(**shapes), _card()), fb)
    assert not (tmp_path / "o.tif").exists()


def test_a_card_of_fewer_bands_than_the_graph_takes_is_refused_before_the_band_plan(tmp_path, data_dir):
    """QA 97: a card listing Blue alone for a 4-band graph first logged "KSDiff fuses ... Blue (band 1)", then failed
    with ONNX Runtime's multi-line text."""
    fb = RecordingFeedback()
    with pytest.raises(InputError, match=r"lms input has 4 bands, but its card lists 1 MS band: the card does not "
                                         r"fit this graph"):
        _run(data_dir, tmp_path, _save(tmp_path, _graph(), _card(bands=["Blue"])), fb)
    assert not [line for line in fb.lines if "fuses" in line], fb.lines


def test_onnx_runtime_errors_are_one_short_line(tmp_path):
    """QA 97: an opset-99 model's load error carried a 770-character C++ signature."""
    card = load_card(_save(tmp_path, _graph(opset=99), _card()))
    runtime.clear_cache()
    with pytest.raises(InputError) as e:
        runtime.get_session(str(card.path), "cpu", 1, sha256=card.sha256)
    text = str(e.value)
    assert "\n" not in text and "::" not in text and "model_load_utils" not in text and len(text) < 450, text
    assert "Opset 99" in text and "export the model again" in text
    four_lines = ("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Got invalid dimensions for input: pan for the following "
                  "indices\n index: 2 Got: 21 Expected: 64\n index: 3 Got: 21 Expected: 64\n Please fix either the "
                  "inputs/outputs or the model.")
    assert runtime.ort_words(RuntimeError(four_lines)) == (
        "INVALID_ARGUMENT: Got invalid dimensions for input: pan for the following indices index: 2 Got: 21 "
        "Expected: 64 index: 3 Got: 21 Expected: 64")


def test_a_fifo_or_a_symlink_loop_is_named_as_such(tmp_path):
    """QA 97: both were reported "the model file ... does not exist"."""
    os.mkfifo(tmp_path / "fifo.onnx")
    os.symlink(tmp_path / "b.onnx", tmp_path / "a.onnx")
    os.symlink(tmp_path / "a.onnx", tmp_path / "b.onnx")
    os.symlink(tmp_path / "gone.onnx", tmp_path / "dangling.onnx")
    with pytest.raises(InputError, match=r"is a named pipe \(FIFO\), not a regular file"):
        check_model_file(tmp_path / "fifo.onnx")
    with pytest.raises(InputError, match="is a symbolic link loop"):
        check_model_file(tmp_path / "a.onnx")
    with pytest.raises(InputError, match="is a symbolic link to .*gone.onnx.*, which does not exist"):
        check_model_file(tmp_path / "dangling.onnx")


def test_an_unknown_sensor_warns_and_a_model_without_its_embedded_card_is_said(tmp_path):
    """QA 97: a card's sensor missing from the sensor table was accepted silently (a known other sensor warns); a
    model without an embedded card skipped the edit check without a word."""
    fb = RecordingFeedback()
    resolve_model("wv2", _save(tmp_path, _graph(), _card(sensor="zzz_not_a_sensor")), fb)
    assert [line for line in fb.lines if line.startswith("WARNING") and "'zzz_not_a_sensor'" in line
            and "does not know" in line], fb.lines
    fb = RecordingFeedback()
    resolve_model("wv2", _save(tmp_path, _graph(), _card(), embed=False), fb)
    assert [line for line in fb.lines if "carries no copy of its card" in line], fb.lines


def test_band_names_of_any_length_are_refused_in_a_short_line(tmp_path):
    """QA 97: band names of 100 000 characters were printed in full."""
    with pytest.raises(InputError, match="invalid bands") as e:
        load_card(_save(tmp_path, _graph(), _card(bands=["B" * 100000] * 4)))
    assert len(str(e.value)) < 300
    with pytest.raises(InputError, match="invalid sensor"):
        load_card(_save(tmp_path, _graph(), _card(sensor="\u202e\u0000evil" * 1000)))


def test_markdown_under_the_model_card_key_is_no_embedded_card(tmp_path, data_dir):
    """Review: another exporter's Markdown notes under the ``model_card`` metadata key were refused as "not a valid
    card"; text that is not JSON at all is no card of ours: the model runs, the log says it carries no copy of its
    card. JSON that is not an object is still refused."""
    path = _save(tmp_path, _graph(), _card(), embedded_text="# My model\n\nTrained on *four* bands.")
    card = load_card(path)
    assert card.embedded is False
    fb = RecordingFeedback()
    resolve_model("wv2", path, fb)
    assert [line for line in fb.lines if "carries no copy of its card" in line], fb.lines
    _run(data_dir, tmp_path, path, fb)   # the session's own copy of the metadata is read alike
    assert (tmp_path / "o.tif").is_file()
    for text in ('["a", "list"]', "42"):
        with pytest.raises(InputError, match=r"the card inside model.onnx is not a valid card \(not a JSON object\)"):
            load_card(_save(tmp_path, _graph(), _card(), embedded_text=text))


def test_the_model_file_is_walked_once_for_its_card_and_graph(tmp_path, monkeypatch):
    """Review: the model file was opened three times by load_card (sha256, a second protobuf reader for the
    metadata, the graph scan); the metadata now come from the graph scan, and an edited card is still found."""
    import builtins

    path = _save(tmp_path, _graph(), _card())
    opened = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        if str(file) == path:
            opened.append(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    assert load_card(path).embedded is True
    assert len(opened) == 2, opened   # sha256 and the one scan
    card = json.loads((tmp_path / "model.json").read_text())
    (tmp_path / "model.json").write_text(json.dumps(dict(card, ratio=2)))
    with pytest.raises(InputError, match="differs from the card inside model.onnx: it was edited"):
        load_card(path)
