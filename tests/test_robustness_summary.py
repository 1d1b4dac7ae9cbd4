"""scripts/robustness.py's suite summary: the issue-12 targets computed from per-case ERGAS."""
from __future__ import annotations


def test_summary_reports_both_precisions_against_the_best_classical_method(load_script):
    rb = load_script("robustness")

    def case(name, classical, ks, ks8, auto):
        methods = {k: {"ERGAS": v} for k, v in classical.items()}
        methods.update({"ksdiff": {"ERGAS": ks}, "ksdiff@int8": {"ERGAS": ks8}, "auto": {"ERGAS": auto}})
        return {"case": name, "sensor": "wv2", "what": "synthetic figures", "methods": methods}

    results = [case("a", {"mtf_glp_hpm": 2.0, "gsa": 4.0}, 1.6, 1.5, 1.5),
               case("b", {"mtf_glp_hpm": 1.0, "mtf_glp_fs": 0.8}, 0.84, 0.72, 0.8)]
    s = rb.summarise(results)
    assert s["ksdiff_vs_best_classical_mean_ratio"] == round((0.8 + 1.05) / 2, 4)
    assert s["ksdiff_int8_vs_best_classical_mean_ratio"] == round((0.75 + 0.9) / 2, 4)
    assert s["default_never_worse_than_best_classical"] and s["default_cases_ok"] == "2/2"
    assert s["int8_within_1_percent"] is False
    md = rb.markdown(results, s, ["mtf_glp_hpm", "ksdiff", "ksdiff@int8", "auto"], "note")
    assert "0.925 in float32" in md and "0.825 in the CPU default precision" in md


def test_landsat_like_cases_are_ratio_2_landsat_dn_with_the_pan_responses(load_script, data_dir, monkeypatch):
    """The other-ground cases Landsat models are chosen on (validate_models --landsat8): ratio 2, Landsat Level-1
    DN, one case per PAN response and window, the PAN a blurred band mix of the reference."""
    import numpy as np

    from model_core.rasters import read

    rb = load_script("robustness")
    src = read(str(data_dir / "wv2_test_ms.tif"))
    stack = np.concatenate([src.data, src.data]).astype(np.float64) * 10.0   # 8 bands standing in for the 20 m stack
    monkeypatch.setattr(rb, "_read", lambda path, window=None: (stack, src.transform, src.crs))
    cases = rb.landsat_like_cases([2, 3])
    assert [c.name for c in cases] == ["s2_20m_w2_oli_pan", "s2_20m_w2_etm_pan", "s2_20m_w3_oli_pan",
                                       "s2_20m_w3_etm_pan"]
    for c in cases:
        assert c.ratio == 2 and c.sensor == "landsat8" and c.dtype == "uint16"
        assert c.ms.shape[1] * 2 == c.ref.shape[1] == c.pan.shape[0]
    ref = stack[[0, 1, 2, 6]][:, : stack.shape[1] // 2 * 2, : stack.shape[2] // 2 * 2]
    assert np.array_equal(cases[0].ref, rb._landsat_dn(ref))   # (reflectance + 0.1) / 2e-5
    assert rb._landsat_dn(np.array([1000.0]))[0] == 10000
    oli, etm = (np.tensordot(np.asarray(w), ref, axes=1) for _, w in rb.LANDSAT_PANS)
    for case, mix, other in ((cases[0], oli, etm), (cases[1], etm, oli)):   # each PAN follows its own response
        pan = case.pan.ravel().astype(float)
        own = np.corrcoef(pan, mix.ravel())[0, 1]
        assert own > 0.95 and own > np.corrcoef(pan, other.ravel())[0, 1]


def test_landsat7_cases_keep_the_8_bit_product_at_ratio_2(load_script, data_dir, monkeypatch, tmp_path):
    """The second real Landsat scene's cases (validate_models --landsat8, l7_ratio): 8-bit like the source, ratio 2,
    one per Landsat PAN response."""
    import numpy as np

    from model_core.rasters import read

    rb = load_script("robustness")
    src = read(str(data_dir / "wv2_test_ms.tif"))
    stack = np.clip(src.data / 8.0, 1, 255).astype(np.uint8)
    (tmp_path / "landsat7").mkdir()
    (tmp_path / "landsat7/ms.tif").touch()   # the scene's place in a cache (its pixels come from the fixture)
    monkeypatch.setattr(rb, "data_root", lambda: tmp_path)
    monkeypatch.setattr(rb, "_read", lambda path, window=None: (stack, src.transform, src.crs))
    cases = rb.landsat7_cases()
    assert [c.name for c in cases] == ["landsat7_oli_pan", "landsat7_etm_pan"]
    for c in cases:
        assert c.ratio == 2 and c.sensor == "landsat8" and c.dtype == "uint8"
        assert c.pan.dtype == c.ms.dtype == c.ref.dtype == np.uint8
        assert c.ms.shape[1] * 2 == c.ref.shape[1] == c.pan.shape[0]
    assert np.array_equal(cases[0].ref, stack[:, : stack.shape[1] // 2 * 2, : stack.shape[2] // 2 * 2])


def test_landsat7_cases_ask_for_make_data_when_the_scene_is_missing(load_script, tmp_path, monkeypatch):
    import pytest

    rb = load_script("robustness")
    monkeypatch.setattr(rb, "data_root", lambda: tmp_path)
    with pytest.raises(SystemExit, match="run `make data` again"):
        rb.landsat7_cases()


def test_case_scores_carry_d_rho_against_the_cases_pan(load_script, data_dir):
    """Each fused case is also scored by Dρ against its own PAN: the reference itself (real detail that follows the
    PAN) scores far better than the upsampled MS (no detail), and ERGAS is 0 for the reference."""
    import numpy as np
    from affine import Affine

    from ksdiff_qgis.engine.filters import upsample
    from model_core.rasters import read

    rb = load_script("robustness")
    ref = read(str(data_dir / "wv2_test_ms.tif")).data.astype(np.float64)[:, :64, :64]
    pan = read(str(data_dir / "wv2_test_pan.tif")).data.astype(np.float64)[0, :256, :256]
    pan = pan.reshape(64, 4, 64, 4).mean(axis=(1, 3))   # a PAN on the reference grid
    ms = ref.reshape(4, 16, 4, 16, 4).mean(axis=(2, 4))
    case = rb.Case("t", "wv2", "test", pan, ms, ref, Affine.identity(), "", "uint16", 4)
    own, flat = rb.score_array(ref, case), rb.score_array(upsample(ms.astype(np.float32), 4, (64, 64)), case)
    assert own["ERGAS"] == 0 and own["D_rho"] < flat["D_rho"] - 0.1
