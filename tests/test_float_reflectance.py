"""Landsat Collection 2 Level-2 surface reflectance as float (values below 0 included) with a Level-1 DN PAN, cut
from the real Landsat 8 scene of the data cache (QA round 79): the self-check scores KSDiff as its run fuses it,
and the PAN/MS units warning is said whichever method METHOD auto ends with."""
from __future__ import annotations

import numpy as np
import pytest
from georasters import write_like
from osgeo import gdal

from ksdiff_qgis.engine import selfcheck
from ksdiff_qgis.engine.model_card import bundled_cards
from ksdiff_qgis.engine.pipeline import pansharpen

pytestmark = pytest.mark.skipif("landsat8" not in bundled_cards(), reason="no bundled Landsat model")
UNITS = "different units or quantities (e.g. radiance and reflectance)?"


@pytest.fixture()
def l2_float(cached, tmp_path) -> tuple[str, str]:
    """(DN PAN, float32 reflectance MS): the scene's DN taken to reflectance and 0.05 lower, a block at -0.03, as C2
    L2 scales it (DN x 2.75e-5 - 0.2): about 11 % of the values below 0, as QA's build.py."""
    pan, ms = gdal.Open(str(cached("landsat8/pan.tif"))), gdal.Open(str(cached("landsat8/ms.tif")))
    refl = ms.ReadAsArray(0, 0, 512, 512).astype(np.float64) * 2e-5 - 0.15
    refl[:, :40, :40] = -0.03
    dn = np.clip(np.round((refl + 0.2) / 2.75e-5), 1, 65535)
    return (write_like(tmp_path / "pan.tif", pan.ReadAsArray(0, 0, 1024, 1024)[None], pan, gdal.GDT_UInt16),
            write_like(tmp_path / "ms.tif", (dn * 2.75e-5 - 0.2).astype(np.float32), ms, gdal.GDT_Float32))


def test_the_self_check_scores_ksdiff_on_float_reflectance_as_it_fuses_it(l2_float, tmp_path):
    """The check's KSDiff row read Wald ERGAS 27.2 (detail gains 0.15-0.03) against MTF-GLP-HPM's 10.99 and fell
    back, while the forced run was plausible: on windows whose mean reflectance neared 0 the network's tile
    normalisation blew the detail up. It gets the values measured from where the data end now (8.5 against 10.99,
    as the UInt16 encoding's 0.910 against 1.002); the ERGAS of such data is explained where it is reported."""
    res = pansharpen(*l2_float, str(tmp_path / "o.tif"), "landsat8", "auto", check_only=True)
    check = res.selfcheck
    assert check.learned.ergas < check.candidates["mtf_glp_hpm"].ergas, (check.learned, check.candidates)
    assert check.method == "ksdiff", check.reason
    assert min(check.detail_gains) > 0.4, check.detail_gains
    assert selfcheck.ERGAS_NEAR_ZERO in check.notes


def test_the_units_warning_is_said_under_auto_whatever_method_fuses(l2_float, tmp_path):
    """A DN PAN (mean ~8900) with a reflectance MS (mean ~0.06): METHOD ksdiff warned of the different units,
    METHOD auto did not (README promises it). Now once, also when a classical method fuses."""
    pan, ms = l2_float
    classical = pansharpen(pan, ms, str(tmp_path / "c.tif"), "landsat8", "auto", ms_bands=[1, 2, 3])
    assert classical.method != "ksdiff"   # no model for 3 bands: the best classical method
    said = [w for w in classical.warnings if UNITS in w]
    assert len(said) == 1 and "classical method" in said[0], classical.warnings
    learned = pansharpen(pan, ms, str(tmp_path / "k.tif"), "landsat8", "auto")
    assert learned.method == "ksdiff" and len([w for w in learned.warnings if UNITS in w]) == 1, learned.warnings
