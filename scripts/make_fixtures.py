"""Cut the small real fixtures (tests/data/) and the demo scene (ksdiff_qgis/resources/sample/) from the data cache.

Crops are taken on whole MS pixels so PAN and MS stay co-registered exactly as in the source.
WorldView-2 pair 3 is the held-apart test scene: its crop (wv2_test_*) only ever scores models in tests.
"""
from __future__ import annotations

import sys
from pathlib import Path

import rasterio
from rasterio.windows import Window

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fetch_data import STEST_ATTRIBUTION, WV2_ATTRIBUTION, data_dir  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# name: (source pan, source ms, PAN window (col, row, width, height), ratio, destination dir)
CROPS = {
    "wv2": ("wv2/pair1_pan.tif", "wv2/pair1_ms.tif", (200, 200, 256, 256), 4, ROOT / "tests/data"),
    "wv2_nodata": ("wv2/pair2_pan.tif", "wv2/pair2_ms.tif", (40, 96, 192, 192), 4, ROOT / "tests/data"),
    "wv2_test": ("wv2/pair3_pan.tif", "wv2/pair3_ms.tif", (200, 300, 256, 256), 4, ROOT / "tests/data"),
    "l8": ("landsat8/pan.tif", "landsat8/ms.tif", (500, 300, 256, 256), 2, ROOT / "tests/data"),
    "demo": ("wv2/pair1_pan.tif", "wv2/pair1_ms.tif", (44, 44, 512, 512), 4, ROOT / "ksdiff_qgis/resources/sample"),
}


def _copy_window(src_path: Path, dst_path: Path, win: Window) -> None:
    with rasterio.open(src_path) as src:
        prof = src.profile
        prof.update(width=int(win.width), height=int(win.height), transform=src.window_transform(win),
                    tiled=False, compress="deflate")
        prof.pop("blockxsize", None)
        prof.pop("blockysize", None)
        nbits = src.tags(1, "IMAGE_STRUCTURE").get("NBITS")
        if nbits:
            prof["nbits"] = int(nbits)
        with rasterio.open(dst_path, "w", **prof) as dst:
            dst.write(src.read(window=win))
            for i in range(1, src.count + 1):
                dst.set_band_description(i, src.descriptions[i - 1] or "")
            dst.update_tags(**src.tags())


def cut(name: str) -> None:
    pan_rel, ms_rel, (c, r, w, h), ratio, dest = CROPS[name]
    src = data_dir()
    dest.mkdir(parents=True, exist_ok=True)
    _copy_window(src / pan_rel, dest / f"{name}_pan.tif", Window(c, r, w, h))
    with rasterio.open(src / pan_rel) as pan, rasterio.open(src / ms_rel) as ms:
        # the MS pixels covering the PAN window (one extra ring where grids are offset, e.g. Landsat 8)
        # a point a quarter PAN pixel inside the window's corner, so float noise cannot pick the neighbour
        x0, y0 = pan.transform * (c + 0.25, r + 0.25)
        row, col = ms.index(x0, y0)
        extra = 0 if (pan.transform.c - ms.transform.c) % ms.transform.a == 0 else 1
        win = Window(col - extra, row - extra, w // ratio + 2 * extra, h // ratio + 2 * extra)
    _copy_window(src / ms_rel, dest / f"{name}_ms.tif", win)


def main() -> int:
    for name in CROPS:
        cut(name)
    (ROOT / "tests/data/ATTRIBUTION.txt").write_text(
        "Fixtures cut by scripts/make_fixtures.py from `make data`'s cache:\n"
        "- wv2_*, wv2_nodata_*: WorldView-2 pairs 1 and 2; wv2_test_*: pair 3 (held-apart test scene, used only to "
        "score models). " + WV2_ATTRIBUTION + "\n"
        "- l8_*: Landsat 8. " + STEST_ATTRIBUTION + "\n"
    )
    (ROOT / "ksdiff_qgis/resources/sample/ATTRIBUTION.txt").write_text(
        "Demo scene: a 256 m x 256 m crop of WorldView-2 pair 1 (PAN 0.5 m, MS B, G, R, NIR 2 m).\n"
        + WV2_ATTRIBUTION + "\nCC BY-SA 4.0 requires this attribution to travel with the imagery.\n"
    )
    print("fixtures written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
