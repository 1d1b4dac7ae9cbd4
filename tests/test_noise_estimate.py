"""The PAN noise the pull works with: the 3 x 3 Laplacian on the sample's flattest blocks (engine/noise.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import noise

DEMO_PAN = Path(noise.__file__).parents[1] / "resources/sample/demo_pan.tif"   # WV2 pair 1, 512 x 512
SCENE_MAX = {"wv2_pan.tif": 1848.0, "wv2_nodata_pan.tif": 1864.0}   # the maxima of pairs 1 and 2, whose crops these are


def _read(path) -> tuple[np.ndarray, np.ndarray]:
    a = gdal.Open(str(path)).ReadAsArray().astype(np.float64)
    return a, a != 0   # 0 is the pairs' nodata


def _all_pixels(d: noise.Detail) -> float:
    return float(np.median(np.concatenate([d.blocks[:, 1:].ravel(), d.loose]))) / noise.MAD_TO_SIGMA


def test_the_laplacian_reads_white_noise_sigma():
    """median |L| / 6 / 0.6745 is sigma on white Gaussian noise (a plane under it cancels), on one window or on many
    windows too small for a block (the fallback over all pixels). The flattest quartile of pure noise is its quieter
    blocks: read ~8 % low, left so (docs/VALIDATION.md: nothing calibrated but the Wiener threshold)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:600, :600]
    a = 1000 + 0.7 * x - 0.3 * y + rng.normal(0, 5, (600, 600))
    ones = np.ones(a.shape, dtype=bool)
    assert _all_pixels(noise.window_detail(a, ones)) == pytest.approx(5.0, rel=0.03)
    small = [noise.window_detail(a[r:r + 17, c:c + 17], ones[:17, :17]) for r in range(0, 583, 17)
             for c in range(0, 583, 17)]
    assert not any(len(d.blocks) for d in small)
    assert noise.pooled_sigma(small) == pytest.approx(5.0, rel=0.03)
    assert 0.88 < noise.noise_sigma(a) / 5.0 < 0.97
    # an undeclared fill (zeros) has no noise: a sample window leaves it out
    holed = a.copy()
    holed[:, :400] = 0
    assert noise.pooled_sigma([noise.window_detail(holed, ones)]) == pytest.approx(noise.noise_sigma(a), rel=0.1)
    assert noise.pooled_sigma([]) is None and noise.noise_sigma(np.ones((2, 2))) == 0.0


def test_the_quartile_is_chosen_over_the_pooled_blocks():
    """The scene's noise is read on the flattest quarter of all its sample's blocks, not window by window: a real
    PAN window (WV2 pair 1, noise ~8 DN) pooled with a flat one (2 DN) leaves the flat one's quieter half to read it
    (Donoho's median over every pixel read both: 4.0)."""
    flat = 1000 + np.random.default_rng(1).normal(0, 2, (512, 512))
    pan, valid = _read(DEMO_PAN)
    pooled = noise.pooled_sigma([noise.window_detail(flat, np.ones(flat.shape, dtype=bool)),
                                 noise.window_detail(pan, valid)])
    assert pooled == pytest.approx(noise.noise_sigma(flat), rel=0.05)
    assert noise.noise_sigma(pan, valid) > 3 * pooled


def test_texture_is_not_read_as_noise():
    """On a real PAN (WV2 pair 1), a fine texture (+-30 DN) added on the half of its 16 x 16 blocks with the larger
    mean gradient leaves the estimate where its flat ground puts it (one step of the integer Laplacian: +3 %);
    Donoho's estimate, used before, read it as noise (+150 %)."""
    pan, valid = _read(DEMO_PAN)
    s0 = noise.noise_sigma(pan, valid)
    grad = np.abs(np.diff(pan, axis=1))[:496, :496] + np.abs(np.diff(pan, axis=0))[:496, :496]
    grad = grad.reshape(31, 16, 31, 16).mean(axis=(1, 3))
    busy = np.kron(grad > np.median(grad), np.ones((16, 16), dtype=bool))
    textured = pan.copy()
    checker = np.where((np.add.outer(np.arange(496), np.arange(496)) % 2) == 0, 30.0, -30.0)
    textured[:496, :496] += np.where(busy, checker, 0.0)
    assert noise.noise_sigma(textured, valid) == pytest.approx(s0, rel=0.05)


@pytest.mark.parametrize("name", sorted(SCENE_MAX))
def test_an_8bit_pan_reads_its_noise(data_dir, name):
    """The 8-bit product of a real PAN (scaled by 255 / its scene's maximum, rounded): the estimate is above 0 and
    within 1.5 x the 16-bit estimate scaled alike, or above the 8-bit step's own noise (0.29) where that is larger."""
    pan, valid = _read(data_dir / name)
    scale = 255.0 / SCENE_MAX[name]
    pan8 = np.round(pan * scale)
    est8, est16 = noise.noise_sigma(pan8, valid & (pan8 != 0)), noise.noise_sigma(pan, valid) * scale
    assert est8 > 0
    assert est8 <= 1.5 * max(est16, 0.29) and est8 >= min(est16, 0.29) / 1.5


@pytest.mark.parametrize("path", [DEMO_PAN, Path(__file__).parent / "data/wv2_nodata_pan.tif"])
def test_added_noise_is_read(path):
    """Real PAN windows of pairs 1 and 2 plus white noise of sigma 5, 10, 20 DN: sqrt(estimate^2 - clean estimate^2)
    within 25 % of sigma (the Wiener threshold is the pull's, not the estimate's)."""
    pan, valid = _read(path)
    clean = noise.noise_sigma(pan, valid)
    rng = np.random.default_rng(3)
    for sigma in (5.0, 10.0, 20.0):
        est = noise.noise_sigma(pan + rng.normal(0, sigma, pan.shape), valid)
        assert np.sqrt(max(est * est - clean * clean, 0.0)) == pytest.approx(sigma, rel=0.25)


def test_a_saturated_area_does_not_silence_the_noise(data_dir):
    """A cloud clipped at the sensor's maximum over 40 % of a window: its constant blocks were the flattest, so the
    noise read 0 and the pull did nothing (QA: pair 2's water came back at the network's noise). The window's highest
    value is left out like a zero fill: the rest of the window reads what it read alone."""
    a, valid = _read(data_dir / "wv2_pan.tif")
    clipped = a.copy()
    rows = int(0.4 * a.shape[0])
    clipped[:rows] = 2047.0
    plain = noise.pooled_sigma([noise.window_detail(a[rows:], valid[rows:])])
    assert noise.pooled_sigma([noise.window_detail(clipped, valid)]) == pytest.approx(plain, rel=0.05)


def test_the_run_says_what_noise_the_pull_uses(data_dir, tmp_path):
    """The pull's noise is logged (it was never said, so a pull switched off went unseen), a warning when it is 0."""
    from ksdiff_qgis.engine.feedback import RecordingFeedback
    from ksdiff_qgis.engine.pipeline import pansharpen

    log = RecordingFeedback()
    pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2", "ksdiff",
               feedback=log)
    said = [line for line in log.lines if "blended towards MTF-GLP-HPM's" in line]
    assert len(said) == 1 and not said[0].startswith("WARNING") and " DN)" in said[0], log.lines
    line, warn = noise.pull_note(0.0)
    assert warn and "is not blended towards MTF-GLP-HPM's" in line
