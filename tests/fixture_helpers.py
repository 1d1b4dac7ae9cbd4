"""Small helpers several test files share: the batch command line in a child process, fake system files."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ksdiff_qgis.engine.feedback import Feedback

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, preexec_fn=None) -> subprocess.CompletedProcess:
    """``python -m ksdiff_qgis.batch ARGS --no-progress`` from the repository root, output captured; ``preexec_fn``
    runs in the child before it starts (e.g. ``resource.setrlimit``)."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "ksdiff_qgis.batch", *args, "--no-progress"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180, preexec_fn=preexec_fn)


def fake_files(root: Path, files: dict[str, str]) -> str:
    """Write ``files`` (absolute paths such as /proc/self/status -> text) under ``root``; returns ``root``."""
    for path, text in files.items():
        p = root / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return str(root)


def lonlat_window(pan: Path) -> tuple[float, float, float, float]:
    """PAN pixels 64..192 of the raster ``pan`` (the WV2 fixture) as longitudes and latitudes (EPSG:4326)."""
    from osgeo import gdal, osr

    ds = gdal.Open(str(pan))
    gt = ds.GetGeoTransform()
    src, dst = osr.SpatialReference(), osr.SpatialReference()
    src.ImportFromWkt(ds.GetProjection())
    dst.ImportFromEPSG(4326)
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(src, dst)
    lon0, lat0, _ = ct.TransformPoint(gt[0] + 64 * gt[1], gt[3] + 192 * gt[5])
    lon1, lat1, _ = ct.TransformPoint(gt[0] + 192 * gt[1], gt[3] + 64 * gt[5])
    return lon0, lat0, lon1, lat1


def tagged_copy(src, dst, scale: float, offset: float = 0.0) -> str:
    """A copy of ``src`` (same stored values) declaring ``scale``/``offset`` on every band."""
    import shutil

    from osgeo import gdal

    dst = str(shutil.copy(str(src), str(dst)))
    ds = gdal.Open(dst, gdal.GA_Update)
    for b in range(1, ds.RasterCount + 1):
        ds.GetRasterBand(b).SetScale(scale)
        ds.GetRasterBand(b).SetOffset(offset)
    ds = None
    return dst


def physical_copy(src, dst, scale: float, offset: float) -> str:
    """A float32 copy of ``src`` in physical values (stored x ``scale`` + ``offset``), declaring no scale/offset."""
    import numpy as np
    from osgeo import gdal

    ds_in = gdal.Open(str(src))
    ds = gdal.GetDriverByName("GTiff").Create(str(dst), ds_in.RasterXSize, ds_in.RasterYSize, ds_in.RasterCount,
                                              gdal.GDT_Float32)
    ds.SetGeoTransform(ds_in.GetGeoTransform())
    ds.SetProjection(ds_in.GetProjection())
    for b in range(1, ds_in.RasterCount + 1):
        band = ds.GetRasterBand(b)
        band.WriteArray(ds_in.GetRasterBand(b).ReadAsArray().astype(np.float64) * scale + offset)
        band.SetDescription(ds_in.GetRasterBand(b).GetDescription())
    ds = None
    return str(dst)


def write_on_grid(path, arr, like, dtype: int | None = None, nodata: float | None = None) -> str:
    """``arr`` (C, H, W) as a GeoTIFF on the grid of ``like`` (a path or an open GDAL dataset), of GDAL ``dtype``
    (default Float32), each band's nodata ``nodata`` if given."""
    from osgeo import gdal

    src = like if isinstance(like, gdal.Dataset) else gdal.Open(str(like))
    ds = gdal.GetDriverByName("GTiff").Create(str(path), arr.shape[2], arr.shape[1], arr.shape[0],
                                              gdal.GDT_Float32 if dtype is None else dtype)
    ds.SetGeoTransform(src.GetGeoTransform())
    ds.SetProjection(src.GetProjection())
    for b in range(arr.shape[0]):
        ds.GetRasterBand(b + 1).WriteArray(arr[b])
        if nodata is not None:
            ds.GetRasterBand(b + 1).SetNoDataValue(nodata)
    ds = None
    return str(path)



class StopAfter(Feedback):
    """Engine feedback that asks to cancel once ``n`` progress reports have arrived."""

    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0

    def progress(self, fraction: float) -> None:
        self.seen += 1

    def is_cancelled(self) -> bool:
        return self.seen >= self.n
