"""What adapt starts from (model_core.weights) and scripts/adapt_study.py's summary of per-case figures."""
from __future__ import annotations

import pytest


def test_adapt_starts_from_the_shipped_weights_else_the_run_that_trained_the_bundled_model(tmp_path):
    from ksdiff_qgis.engine.model_card import bundled_cards, load_card
    from model_core.config import CONFIG_DIR, load_config
    from model_core.weights import bundled_checkpoint, weights_path

    shipped = tmp_path / "weights"
    for sensor, onnx in bundled_cards().items():
        name = load_card(onnx).data["training"]["config"]
        cfg = load_config(CONFIG_DIR / name)
        run = tmp_path / cfg["train"]["out_dir"]
        if not run.exists():   # wv2, qb and gf2 share one run
            with pytest.raises(SystemExit, match=f"make train SENSOR={sensor}"):
                bundled_checkpoint(sensor, shipped, tmp_path)
            run.mkdir(parents=True)
            (run / "fullres.pt").write_bytes(b"")
            assert bundled_checkpoint(sensor, shipped, tmp_path) == run / "fullres.pt"
            weights_path(name, shipped).parent.mkdir(exist_ok=True)
            weights_path(name, shipped).write_bytes(b"")
        assert bundled_checkpoint(sensor, shipped, tmp_path) == shipped / f"{name[:-5]}.pt"
    with pytest.raises(SystemExit, match="no bundled model for sensor 'spot6'"):
        bundled_checkpoint("spot6")


def test_summary_compares_the_adapted_model_with_the_bundled_one_and_the_best_classical(load_script):
    study = load_script("adapt_study")

    def case(name, classical, bundled, adapted):
        methods = {k: {"ERGAS": v, "SAM": 1.0} for k, v in classical.items()}
        methods["ksdiff"] = {"ERGAS": bundled, "SAM": 2.0}
        methods[study.ADAPTED] = {"ERGAS": adapted, "SAM": 1.5, "adapt_seconds": 60.0}
        return {"case": name, "methods": methods}

    s = study.summary([case("a", {"mtf_glp_hpm": 2.0, "gsa": 4.0}, 1.6, 1.2),
                       case("b", {"mtf_glp_hpm": 1.0, "mtf_glp_fs": 0.8}, 0.8, 0.88)])
    assert s["adapted_over_bundled"] == round((0.75 + 1.1) / 2, 4)
    assert s["adapted_over_best_classical"] == round((0.6 + 1.1) / 2, 4)
    assert s["bundled_over_best_classical"] == round((0.8 + 1.0) / 2, 4)
    assert s["adapted_better_on"] == 1 and s["cases"] == 2
    assert [r["best_classical"] for r in s["rows"]] == ["mtf_glp_hpm", "mtf_glp_fs"]
    md = "\n".join(study.markdown("validation", s, "note"))
    assert "| a | mtf_glp_hpm 2.000 | 1.600 (2.00) | 1.200 (1.50) | 0.750 | 60 |" in md


def test_adapt_starts_from_the_bundled_file_its_card_came_from(tmp_path, monkeypatch):
    """Review: start_model looked the bundled model up by its card's sensor, not by the file the card was read from:
    a bundled file whose name is not its card's sensor key (here wv2_v2.onnx, card sensor wv2) was not found, and
    adapt scored a re-export instead of the file the plugin runs."""
    import shutil

    from ksdiff_qgis.engine import model_card
    from model_core.adapt import base_card, base_metrics, base_record, start_model
    from model_core.weights import WEIGHTS_DIR

    src = model_card.bundled_cards()["wv2"]
    mine = tmp_path / "wv2_v2.onnx"
    shutil.copy(src, mine)
    shutil.copy(src.with_suffix(".json"), mine.with_suffix(".json"))
    monkeypatch.setattr(model_card, "bundled_cards", lambda: {"wv2_v2": mine})
    checkpoint = WEIGHTS_DIR / f"{model_card.load_card(src).data['training']['config'][:-5]}.pt"
    ck = {"config": {"sensor": "wv2"}}
    assert start_model(base_card(checkpoint, ck)) == mine   # the old lookup by sensor found no "wv2" file: None
    found = base_card(checkpoint, ck)
    assert found[0] == mine and found[1]["sensor"] == "wv2"
    assert base_record(checkpoint, ck) == {k: v for k, v in found[1]["training"].items() if k != "serves_sensor"}
    metrics = base_metrics(found)
    assert metrics is None or metrics["measured_by"].startswith("the base model wv2_v2.onnx before adaptation")
