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
