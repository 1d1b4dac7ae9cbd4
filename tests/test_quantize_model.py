"""scripts/quantize_model.py's detail measure: how much of the reference's fine detail a fusion carries, per band."""
from __future__ import annotations

import numpy as np


def test_detail_ratio_on_real_imagery(wv2_arrays, load_script):
    from ksdiff_qgis.engine.filters import lowpass, upsample

    qm = load_script("quantize_model")
    pan, ms = wv2_arrays
    lms = upsample(ms, 4, pan.shape)
    ref = (lms * (pan / lowpass(pan, 0.3, 4))).astype(np.float64)   # an HPM fusion as the "reference"
    assert qm.detail_ratio(ref, ref, 4) == [1.0] * 4
    smooth = qm.detail_ratio(lowpass(ref, 0.6, 4), ref, 4)
    assert all(0.1 < r < 0.9 for r in smooth)
    boosted = ref + (ref - lowpass(ref, 0.3, 4)) * np.array([1.0, 0.0, 0.0, 0.5])[:, None, None]
    blue, green, red, nir = qm.detail_ratio(boosted, ref, 4)
    assert green == red == 1.0 and 1.2 < nir < blue


def test_a_candidate_model_is_scored_instead_of_the_bundled_one(load_script, tmp_path):
    """``--model`` (with ``--config``) loads the candidate's card, so a wrong path is reported, not the bundled
    model silently scored; without ``--config`` the option is refused."""
    import pytest

    from ksdiff_qgis.engine.errors import InputError

    qm = load_script("quantize_model")
    missing = tmp_path / "cand" / "wv3.onnx"
    with pytest.raises(InputError, match="cand"):
        qm.config_case_ergas("wv3", "wv3_validation.yaml", str(missing))
    with pytest.raises(SystemExit):
        qm.main(["--sensor", "wv3", "--model", str(missing)])
