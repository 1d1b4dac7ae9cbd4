"""scripts/paired_seeds.py bookkeeping: which run folder a seed's checkpoint is in, and earlier recipes' figures
kept (with their date) when a new run measures other recipes."""
from __future__ import annotations

import json


def test_checkpoint_folders(tmp_path, monkeypatch, load_script):
    ps = load_script("paired_seeds")
    monkeypatch.setattr(ps, "ROOT", tmp_path)
    assert ps.checkpoint("rr4_x", 2) == tmp_path / "runs" / "rr4_x_seed2" / "fullres.pt"
    # seed 0 trained with --seed 0 lives in the suffixed folder; without --seed in the config's own one
    assert ps.checkpoint("rr4_x", 0) == tmp_path / "runs" / "rr4_x_seed0" / "fullres.pt"
    own = tmp_path / "runs" / "rr4_x" / "fullres.pt"
    own.parent.mkdir(parents=True)
    own.write_bytes(b"")
    assert ps.checkpoint("rr4_x", 0) == own


def test_earlier_recipes_are_kept_with_their_date(tmp_path, monkeypatch, load_script):
    ps = load_script("paired_seeds")
    out = tmp_path / "seeds.json"

    def recipe(ks: float) -> dict:
        return {"seeds": [{"seed": 0, "cases": {"ksdiff": {}, "fusionnet": {}}, "ksdiff_mean": ks,
                           "fusionnet_mean": 2.0}], "verdict": ps.verdict({"ksdiff": [ks], "fusionnet": [2.0]})}

    old = {"date_utc": "2026-12-04 08:44 UTC", "cases": [], "recipes": {"hpm": recipe(3.0), "new": recipe(3.0)}}
    out.write_text(json.dumps(old))
    fresh = recipe(1.0)
    monkeypatch.setattr(ps, "run_recipe", lambda recipe, seeds, ablation: fresh if recipe == "new" else None)
    assert ps.main(["--recipes", "new", "--seeds", "0", "--out", str(out), "--md", str(tmp_path / "s.md")]) == 0
    res = json.loads(out.read_text())
    assert res["recipes"]["hpm"]["date_utc"] == "2026-12-04 08:44 UTC"
    assert res["recipes"]["new"]["date_utc"] == res["date_utc"] != "2026-12-04 08:44 UTC"
    assert res["recipes"]["new"]["seeds"][0]["ksdiff_mean"] == 1.0   # measured now replaces the earlier figures
    md = (tmp_path / "s.md").read_text()
    assert "## Recipe `hpm`" in md and "Measured 2026-12-04 08:44 UTC." in md and "## Recipe `new`" in md
