"""An MS fill of zeros is an area, not every pixel 0 in all bands (QA128): an 8-bit product with shadows clipped to 0
is fused as without the MS-fill rule, BDSD-PC included; an MS of zeros almost everywhere is refused as such."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import pipeline
from ksdiff_qgis.engine.errors import InputError

SHARE = 0.02   # of the MS pixels set to 0 in every band, scattered (WV2 pair 1 in 8 bits: 1.6 %)


def _eight_bit(src: Path, dst: Path, dark: np.ndarray | None = None) -> str:
    """``src`` stretched to 8 bits (p2 -> 0, p99.5 -> 255, as a display stretch), no nodata declared, the ``dark``
    pixels 0 in every band."""
    a = gdal.Open(str(src)).ReadAsArray().astype(np.float64)
    a = a[None] if a.ndim == 2 else a
    for b in a:
        lo, hi = np.percentile(b, [2, 99.5])
        b[:] = np.clip((b - lo) / (hi - lo) * 255, 0, 255).round()
    if dark is not None:
        a[:, dark] = 0
    ds = gdal.Translate(str(dst), str(src), options=gdal.TranslateOptions(outputType=gdal.GDT_Byte, noData="none"))
    for i, b in enumerate(a, 1):
        ds.GetRasterBand(i).WriteArray(b.astype(np.uint8))
    ds = None
    return str(dst)


def _scattered(shape: tuple[int, int]) -> np.ndarray:
    """SHARE of the pixels, none touching another (shadows of a few MS pixels each, no area)."""
    rng = np.random.default_rng(7)
    dark = np.zeros(shape, dtype=bool)
    cells = rng.choice(shape[0] * shape[1] // 4, size=round(SHARE * shape[0] * shape[1]), replace=False)
    dark.reshape(shape[0] // 2, 2, shape[1] // 2, 2)[cells // (shape[1] // 2), 0, cells % (shape[1] // 2), 0] = True
    return dark


@pytest.fixture
def eight_bit(data_dir, tmp_path) -> tuple[str, str]:
    pan = _eight_bit(data_dir / "wv2_pan.tif", tmp_path / "pan8.tif")
    ms = _eight_bit(data_dir / "wv2_ms.tif", tmp_path / "ms8.tif", _scattered((64, 64)))
    return pan, ms


@pytest.mark.parametrize("method", ["bdsd_pc", "gsa", "mtf_glp_fs"])
def test_scattered_dark_pixels_are_no_fill(eight_bit, tmp_path, monkeypatch, method):
    """Each grown by the filters' reach, the dark pixels took BDSD-PC's whole sample ("0 usable MS pixels"), and
    GSA / MTF-GLP-FS moved by a few DN: now the fused pixels of the rule's absence, bit for bit."""
    pan, ms = eight_bit
    out, said = {}, []
    for name in ("rule", "without"):
        if name == "without":
            monkeypatch.setattr(pipeline, "ms_fill_over_pan_data",
                                lambda pan_lr, ms_lr, *a: np.zeros(ms_lr.shape[1:], dtype=bool).ravel())
        res = pipeline.pansharpen(pan, ms, str(tmp_path / f"{name}.tif"), "wv2", method, workers=1)
        out[name] = gdal.Open(res.output_path).ReadAsArray().astype(np.int16)
        said += [w for w in res.warnings if w.startswith("The MS raster declares no nodata value")]
    diff = np.abs(out["rule"] - out["without"])
    assert not diff.any(), (float((diff > 0).mean()), int(diff.max()))
    # the zeros are still warned of (2 % of the sample), but not as left out
    assert len(said) == 2 and not any("left out of the scene statistics" in w for w in said), said


def test_an_ms_of_zeros_is_refused_as_such(data_dir, tmp_path):
    """An MS 0 in every band but a 3 x 3 patch, nothing declared: said to be an empty MS or an undeclared fill, with
    the way to declare it, not "everything is nodata"."""
    src = data_dir / "wv2_ms.tif"
    ms = str(tmp_path / "ms_zero.tif")
    ds = gdal.Translate(ms, str(src), options=gdal.TranslateOptions(noData="none"))
    for b in range(1, ds.RasterCount + 1):
        a = ds.GetRasterBand(b).ReadAsArray()
        patch = a[30:33, 30:33].copy()
        a[:] = 0
        a[30:33, 30:33] = patch
        ds.GetRasterBand(b).WriteArray(a)
    ds = None
    with pytest.raises(InputError) as err:
        pipeline.pansharpen(str(data_dir / "wv2_pan.tif"), ms, str(tmp_path / "out.tif"), "wv2", "gsa", workers=1)
    said = str(err.value)
    assert "the MS is 0 in every band almost everywhere" in said and "nodata value" in said, said
    assert "gdal_edit" in said and "everything is nodata" not in said, said
