"""A scene on Landsat 8's grid layout whose full-resolution truth is known, built from the real Landsat 8 fixture.

The truth ``X`` is a PAN-resolution image of real content: the fixture's MS upsampled onto the PAN grid plus the real
PAN's detail. Its MS is ``X`` as the MS sensor sees it, computed independently of the engine's reprojection: every
band low-passed with its MTF Gaussian (``metrics.mtf_filter``, on the fine grid) and picked at the MS pixel centres,
which on Landsat 8 fall on PAN pixel centres (the fixture's MS grid starts 3.5 PAN pixels up and left of the PAN's,
so MS pixel (i, j) is centred on PAN pixel (2i - 3, 2j - 3)). With ``X`` as the fused image, the reprojection indices
must find no error.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from osgeo import gdal

from ksdiff_qgis.engine import metrics as M
from ksdiff_qgis.engine.filters import lowpass, upsample
from ksdiff_qgis.engine.sensors import get_sensor
from model_core.rasters import write_geotiff

PAD = 128            # PAN pixels of truth around the PAN raster (mirrored real data): context a tile may ask for
MS_CORNER = -3.5     # the fixture's MS top-left corner on the PAN grid (rows and columns)


def landsat_truth_scene(data_dir: Path, out: Path, collar: int = 0) -> dict:
    """Write ``fused.tif`` (the truth on the PAN grid) and ``ms.tif`` (its MS, Landsat 8 layout and georeference)
    into ``out``; ``collar`` MS pixels around the MS are nodata (0). Returns the paths (``pan`` is the real fixture
    PAN), the truth with ``PAD`` pixels of context (``truth_padded``) and the band gains."""
    pan_ds, ms_ds = gdal.Open(str(data_dir / "l8_pan.tif")), gdal.Open(str(data_dir / "l8_ms.tif"))
    pan = pan_ds.ReadAsArray().astype(np.float32)
    ms = ms_ds.ReadAsArray().astype(np.float32)
    names = [ms_ds.GetRasterBand(b + 1).GetDescription() for b in range(ms_ds.RasterCount)]
    sensor = get_sensor("landsat8")
    gains = list(sensor.mtf_ms)
    k = sensor.ratio
    lms = upsample(ms, k, pan.shape, (MS_CORNER, MS_CORNER))
    detail = pan - lowpass(pan, sensor.mtf_pan, k)
    truth = (lms + detail[None] * (lms.mean(axis=(1, 2)) / pan.mean())[:, None, None]).astype(np.float32)
    padded = np.pad(truth, ((0, 0), (PAD, PAD), (PAD, PAD)), mode="symmetric")
    seen = M.mtf_filter(padded, gains, k)
    centres = (np.arange(ms.shape[1]) * k + MS_CORNER + k / 2 - 0.5 + PAD).astype(int)   # integers on Landsat 8
    ms_truth = seen[:, centres][:, :, centres].astype(np.float32)
    if collar:
        ring = np.ones(ms_truth.shape[1:], bool)
        ring[collar:-collar, collar:-collar] = False
        ms_truth[:, ring] = 0
    fused = write_geotiff(str(out / "fused.tif"), truth, pan_ds.GetGeoTransform(), pan_ds.GetProjection(), None,
                          names)
    ms_path = write_geotiff(str(out / "ms.tif"), ms_truth, ms_ds.GetGeoTransform(), ms_ds.GetProjection(), 0, names)
    return {"pan": str(data_dir / "l8_pan.tif"), "ms": ms_path, "fused": fused, "truth_padded": padded,
            "gains": gains, "ratio": k}
