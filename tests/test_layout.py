"""The repository layout: a real plugin folder, root copies that agree, the plugin ships plugin code only."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "ksdiff_qgis"


def test_plugin_folder_has_no_symlinks():
    links = [str(Path(d, n).relative_to(ROOT)) for d, dirs, files in os.walk(PLUGIN) for n in dirs + files
             if Path(d, n).is_symlink()]
    assert not links, f"symlinks break on Windows clones and confuse tools: {links}"
    for name in ("metadata.txt", "LICENSE", "resources/icons/ksdiff.svg", "resources/models"):
        assert (PLUGIN / name).exists(), name


def test_root_copies_agree_with_the_plugin_folder():
    """ksdiff_qgis/metadata.txt and LICENSE are the originals; `make package` refreshes the root copies."""
    for name in ("metadata.txt", "LICENSE"):
        assert (ROOT / name).read_bytes() == (PLUGIN / name).read_bytes(), (
            f"{name} differs from ksdiff_qgis/{name}: edit the plugin folder's copy and run `make package`")


def test_metadata_points_at_real_files():
    meta = dict(line.split("=", 1) for line in (PLUGIN / "metadata.txt").read_text().splitlines() if "=" in line)
    assert meta["hasProcessingProvider"] == "yes"
    assert (PLUGIN / meta["icon"]).is_file()


def test_plugin_ships_no_bench_or_training_helpers():
    """Held-apart areas and Wald test-case files serve the bench and model_core, not the plugin."""
    engine = PLUGIN / "engine"
    assert not (engine / "heldout.py").exists() and not (engine / "wald.py").exists()
    for path in PLUGIN.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "import model_core" not in text and "from model_core" not in text, path


def test_readme_layout_table_matches_the_tree():
    """Every path in README's layout table exists, and every top-level entry of the tree is in the table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("## Layout", 1)[1].split("\n\n", 2)[1]
    named = set()
    for row in table.splitlines()[2:]:
        cell = row.split("|")[1]
        for path in cell.replace("`", "").split(","):
            path = path.strip().rstrip("/")
            assert (ROOT / path).exists(), f"README layout names {path!r}, which does not exist"
            named.add(path.split("/")[0])
    tracked = {p.name for p in ROOT.iterdir() if not p.name.startswith(".") and p.name not in
               {"runs", "dist", "build", "demo-output", "__pycache__"}}
    assert tracked <= named | {"README.md"}, f"not in README's layout table: {sorted(tracked - named)}"


def test_readme_layout_rows_name_every_file_of_their_folder():
    """scripts/, bench/ and docs/: every file (by name or module name) appears in its row of the layout table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = {row.split("|")[1].strip().strip("`").rstrip("/"): row
            for row in text.split("## Layout", 1)[1].split("\n\n", 2)[1].splitlines()[2:]}
    for folder in ("scripts", "bench", "docs"):
        row = rows[folder]
        for p in (ROOT / folder).iterdir():
            if p.name.startswith((".", "__")):
                continue
            assert f"`{p.name}`" in row or f"`{p.stem}`" in row or f"`{p.name}/`" in row, (
                f"README's layout row for {folder}/ does not name {p.name}")


def test_make_test_lints_first_and_requirements_are_layered():
    makefile = (ROOT / "Makefile").read_text()
    assert "\ntest: setup lint\n" in makefile and "\nlint: setup\n\t@$(PY) -m ruff check .\n" in makefile
    assert (ROOT / "ruff.toml").is_file()
    req = {n: (ROOT / "requirements" / f"{n}.txt").read_text() for n in ("plugin", "training", "dev")}
    assert "onnxruntime" in req["plugin"] and "torch" not in req["plugin"]
    assert "-r plugin.txt" in req["training"] and "torch" in req["training"]
    assert "-r training.txt" in req["dev"] and "ruff" in req["dev"] and "pytest" in req["dev"]
    assert "REQ=requirements/dev.txt" in (ROOT / "scripts" / "setup.sh").read_text()


def test_changelog_and_readme_quote_the_current_bench():
    """QA (Plugin Manager): the changelog said "WorldView-2 test pair ERGAS 6.59 -> 5.80, HQNR 0.90 -> 0.93", the
    README 6.05 and 0.924 (the current bench): the newest entry quotes the figures of bench/results.json (what
    docs/BENCHMARKS.md shows) for the bundled WorldView-2 model on the test pair; older figures say their run."""
    import configparser
    import json

    runs = json.loads((ROOT / "bench" / "results.json").read_text(encoding="utf-8"))["bundled_models"]["wv2.onnx"]
    ergas = "ERGAS {:.2f}".format(runs["scenes"]["reduced/wv2_pair3"]["ERGAS"])
    hqnr = "HQNR {:.3f}".format(runs["scenes"]["full/wv2_pair3"]["HQNR"])
    meta = configparser.ConfigParser(interpolation=None)
    meta.read(PLUGIN / "metadata.txt", encoding="utf-8")
    newest = meta["general"]["changelog"].strip().splitlines()[0]
    assert ergas in newest and hqnr in newest, newest
    assert "make bench of" in newest   # the before/after figures of the release name their run
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"KSDiff {ergas}" in readme and hqnr in readme


def test_readme_speed_figures_come_from_one_precision_of_the_bench():
    """QA: the README said "14.3 s with KSDiff (int8 ...), 22x faster than SSDiff", 22x (21.9x) being the float32
    ratio; int8's is 31.7x. Both int8 figures of the summary are read from bench/results.json's int8 rows."""
    import json

    speed = json.loads((ROOT / "bench" / "results.json").read_text(encoding="utf-8"))["speed"]
    scene = {r["method"]: r for r in speed["runs"]}["ksdiff[wv2]@int8"]
    learned = {r["method"]: r for r in speed["learned"]["runs"]}
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert f"{scene['seconds']:.1f} s with KSDiff (int8;" in readme
    assert (f"KSDiff int8 is {learned['ksdiff[wv2]@int8']['ssdiff_over_ksdiff']:.1f}× faster than the pixel-space "
            f"diffusion model SSDiff") in readme
    assert f"{learned['ksdiff[wv2]']['ssdiff_over_ksdiff']:.1f}× in float32" in readme
