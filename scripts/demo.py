"""`make demo`: pansharpen the bundled WorldView-2 demo scene through QGIS Processing, write a quicklook.

Runs the default method (auto: the bundled KSDiff model, checked on the scene against the best classical
method) with the default sensor detection, as a user who only picks the two layers would.

Writes demo-output/fused.tif and demo-output/quicklook.png (MS upsampled | PAN | fused).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "ksdiff_qgis" / "resources" / "sample"
OUT = ROOT / "demo-output"
sys.path.insert(0, str(ROOT))

import warnings  # noqa: E402

warnings.filterwarnings("ignore", message="Unable to import Axes3D")  # Debian's mpl_toolkits beside the venv's
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from model_core.rasters import read  # noqa: E402


def start_processing():
    """A headless QGIS with Processing and the plugin's provider, as qgis_process has it."""
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    sys.path.insert(0, "/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing

    Processing.initialize()
    import ksdiff_qgis

    plugin = ksdiff_qgis.classFactory(None)
    plugin.initProcessing()
    return app, plugin


def stretch(rgb: np.ndarray) -> np.ndarray:
    """2-98 % stretch per band to [0, 1], shared low/high across the panels via the caller's limits."""
    lo, hi = np.percentile(rgb, (2, 98), axis=(1, 2), keepdims=True)
    return np.clip((rgb - lo) / np.maximum(hi - lo, 1e-6), 0, 1).transpose(1, 2, 0)


def quicklook(pan_path: Path, ms_path: Path, fused_path: Path, dest: Path, method: str) -> None:
    f = read(fused_path)
    pan = read(pan_path).data[0].astype(float)
    fused = f.data[[2, 1, 0]].astype(float)
    ms = read(ms_path, out_shape=(f.height, f.width)).data[[2, 1, 0]]
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.4), dpi=110)
    for ax, img, title in zip(axes, (stretch(ms.astype(float)), pan, stretch(fused)),
                              ("MS (2 m, upsampled)", "PAN (0.5 m)", f"Fused (0.5 m, {method})")):
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None,
                  vmin=np.percentile(img, 2) if img.ndim == 2 else None,
                  vmax=np.percentile(img, 98) if img.ndim == 2 else None)
        ax.set_title(title)
        ax.axis("off")
    fig.suptitle("KSDiff for QGIS demo: WorldView-2, Rotterdam (SpaceNet 6, CC BY-SA 4.0)")
    fig.tight_layout()
    fig.savefig(dest)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    from ksdiff_qgis.engine.classical import BEST_CLASSICAL

    OUT.mkdir(exist_ok=True)
    app, plugin = start_processing()
    import processing
    from qgis.core import QgsProcessingFeedback

    fused = OUT / "fused.tif"
    # the default method (auto): KSDiff checked on this scene against the best classical method
    class Warnings(QgsProcessingFeedback):
        """Says the run's warnings on the terminal, as the dialog's log shows them."""

        def pushWarning(self, message):  # noqa: N802 - QGIS API
            print(f"make demo: warning: {message}")
            super().pushWarning(message)

        def pushInfo(self, info):  # noqa: N802 - QGIS API
            if info.startswith("SENSOR=auto"):   # what was taken for the sensor, and why
                print(f"make demo: {info}")
            super().pushInfo(info)

    res = processing.run("ksdiff:pansharpen", {"PAN": str(SAMPLE / "demo_pan.tif"),
                                               "MS": str(SAMPLE / "demo_ms.tif"), "OUTPUT": str(fused)},
                         feedback=Warnings())
    method = res.get("SELFCHECK_METHOD") or BEST_CLASSICAL
    if res.get("SELFCHECK_REASON"):
        print(f"make demo: self-check (KSDiff against {res.get('SELFCHECK_CLASSICAL_METHOD')}, the best classical "
              f"method on this scene) chose {method}: {res['SELFCHECK_REASON']}")
    look = OUT / "quicklook.png"
    quicklook(SAMPLE / "demo_pan.tif", SAMPLE / "demo_ms.tif", fused, look, method)
    plugin.unload()
    print(f"make demo: method {method}")
    print(f"  fused scene: {fused}")
    print(f"  quicklook:   {look}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
