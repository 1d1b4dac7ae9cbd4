"""Render ksdiff_qgis/resources/icons/ksdiff.svg to the 128x128 PNG named by metadata.txt (shown by the plugin site)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.PyQt.QtGui import QColor, QImage, QPainter
    from qgis.PyQt.QtSvg import QSvgRenderer
    from qgis.PyQt.QtWidgets import QApplication

    app = QApplication(sys.argv)  # noqa: F841 - QPainter needs an application
    renderer = QSvgRenderer(str(ROOT / "ksdiff_qgis" / "resources" / "icons" / "ksdiff.svg"))
    image = QImage(128, 128, QImage.Format.Format_ARGB32)
    image.fill(QColor(0, 0, 0, 0))
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    out = ROOT / "ksdiff_qgis" / "resources" / "icons" / "ksdiff.png"
    if not image.save(str(out)):
        raise SystemExit(f"cannot write {out}")
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
