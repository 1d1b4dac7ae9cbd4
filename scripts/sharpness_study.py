"""Which difference between the suite's Sentinel-2 kinds makes the bundled model lose: PAN response, PAN blur,
MS MTF, radiometry or the sensor card? One factor at a time on validation windows (never the held-apart corner).

    python scripts/sharpness_study.py [--windows 0,1,2] [--models DIR]

Each variant is built as ``robustness.sentinel2_cases`` builds its cases (``robustness.simulated_pan_case``:
simulated PAN = band mix + Gaussian blur, MS Wald-degraded with the given MTF, cast to the product type) and fused
by GSA, MTF-GLP-HPM and the forced model (float32); the last column is the model's ERGAS over the better classical
one (< 1: the model wins).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import robustness as R  # noqa: E402

from ksdiff_qgis.engine.sensors import get_sensor  # noqa: E402

WV2_MTF = get_sensor("wv2").mtf_ms
VISIBLE, FLAT = (0.3, 0.35, 0.35, 0.0), (0.25,) * 4
# name, sensor card, PAN weights, PAN blur (px), MS MTF, product type, 99.5th percentile (None: keep values)
VARIANTS = (
    ("fit_blur0.8_wv2mtf_11bit", "wv2", R.FIT, 0.8, WV2_MTF, "uint16", 1800.0),
    ("fit_blur0_qbmtf_refl16", "qb", R.FIT, 0.0, R.QB_MTF, "uint16", None),
    ("fit_blur0.8_qbmtf_refl16", "qb", R.FIT, 0.8, R.QB_MTF, "uint16", None),
    ("visible_blur0_qbmtf_refl16 (suite kind)", "qb", VISIBLE, 0.0, R.QB_MTF, "uint16", None),
    ("visible_blur0.8_qbmtf_refl16", "qb", VISIBLE, 0.8, R.QB_MTF, "uint16", None),
    ("visible_blur0_wv2mtf_refl16", "qb", VISIBLE, 0.0, WV2_MTF, "uint16", None),
    ("visible_blur0_qbmtf_11bit", "qb", VISIBLE, 0.0, R.QB_MTF, "uint16", 1800.0),
    ("visible_blur0_qbmtf_refl16_as_wv2", "wv2", VISIBLE, 0.0, R.QB_MTF, "uint16", None),
    ("flat_blur0.5_geoeye_8bit (suite kind)", "qb", FLAT, 0.5, R.GEOEYE_MTF, "uint8", 250.0),
    ("flat_blur0.5_wv2mtf_8bit", "qb", FLAT, 0.5, WV2_MTF, "uint8", 250.0),
    ("flat_blur0.5_geoeye_11bit", "qb", FLAT, 0.5, R.GEOEYE_MTF, "uint16", 1800.0),
    ("fit_blur0.5_geoeye_8bit", "qb", R.FIT, 0.5, R.GEOEYE_MTF, "uint8", 250.0),
)
METHODS = ("gsa", "mtf_glp_hpm", "ksdiff")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", default="0,1,2", help="indices into robustness.VALIDATION_WINDOWS")
    ap.add_argument("--models", type=Path, help="folder with {wv2,qb}.onnx (default: the bundled models)")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ksdiff_sharpness_") as tmp:
        for wi in (int(w) for w in a.windows.split(",")):
            s2, tf, crs = R._read(R.data_root() / "sentinel2/s2_10m.tif", R.VALIDATION_WINDOWS[wi][0])
            for name, sensor, weights, blur, mtf, dtype, top in VARIANTS:
                case = R.simulated_pan_case(name, sensor, name, s2, tf, crs, weights, blur, mtf, dtype, top)
                res = R.run_case(case, list(METHODS), Path(tmp) / f"{name}_{wi}", a.models)["methods"]
                e = {k: res[k]["ERGAS"] for k in METHODS}
                ratio = e["ksdiff"] / min(e["gsa"], e["mtf_glp_hpm"])
                print(f"window {wi}  {name:40s} GSA {e['gsa']:.3f}  MTF-GLP-HPM {e['mtf_glp_hpm']:.3f}  "
                      f"model {e['ksdiff']:.3f}  model/best classical {ratio:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
