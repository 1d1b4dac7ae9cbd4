"""ksdiff:assess with inputs of which only some declare a band scale/offset (QA round 98): an untagged PAN beside a
scaled MS (WorldView-2 pair 1: Ds 0.0906 -> 0, HQNR 0.886 -> 0.975; Landsat 8: Dρ 0.297 -> 0.800) and a scaled FUSED
against an untagged REFERENCE (Q 0.894 -> 0, SAM 8.35° -> 34.2°, blamed on the bit depth) were compared in stored
numbers against physical values. Now all are compared on stored values, the figures those of the untagged inputs,
with one warning naming the inputs without the tag. Real WorldView-2 and Landsat 8 crops from the data cache."""
from __future__ import annotations

import pytest
from fixture_helpers import physical_copy as _physical
from fixture_helpers import tagged_copy as _tagged
from osgeo import gdal

from ksdiff_qgis.engine import assessment
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.raster_io import MaskedRaster

FULL = ("HQNR", "D_lambda", "D_s", "D_rho", "R_ERGAS", "R_SAM", "R_Q2n")
REDUCED = ("SAM", "ERGAS", "Q2n", "Q", "SCC", "PSNR", "SSIM")


class Said(assessment.Feedback):
    def __init__(self):
        super().__init__()
        self.warnings: list[str] = []

    def warning(self, msg):
        self.warnings.append(msg)


def _same(a: dict, b: dict, keys, rel: float = 1e-9) -> None:
    for key in keys:
        assert a[key] == pytest.approx(b[key], rel=rel, abs=1e-12, nan_ok=True), key


@pytest.fixture()
def wv2(cached, tmp_path) -> dict[str, str]:
    """WorldView-2 pair 1 fused by MTF-GLP-HPM on its untagged PAN and MS."""
    pan, ms = str(cached("wv2/pair1_pan.tif")), str(cached("wv2/pair1_ms.tif"))
    out = str(tmp_path / "fused.tif")
    pansharpen(pan, ms, out, "wv2", "mtf_glp_hpm")
    return {"pan": pan, "ms": ms, "fused": out}


def test_an_untagged_pan_beside_a_scaled_ms_and_fused_gives_the_untagged_figures(wv2, tmp_path):
    """WV2 pair 1, MS and FUSED declaring a scale only (the same bytes), the PAN none: Ds was 0 and HQNR 0.975
    (0.091 and 0.886 untagged), the PAN's DN compared with the fused bands' physical values, without a word."""
    plain = assessment.assess_full(wv2["fused"], wv2["pan"], wv2["ms"], "wv2")
    ms_sc = _tagged(wv2["ms"], tmp_path / "ms_sc.tif", 1e-4)
    fu_sc = _tagged(wv2["fused"], tmp_path / "fu_sc.tif", 1e-4)
    fb = Said()
    mixed = assessment.assess_full(fu_sc, wv2["pan"], ms_sc, "wv2", fb)
    _same(mixed, plain, FULL)
    assert mixed["D_s"] > 0.05
    lines = [w for w in fb.warnings if "no scale/offset" in w]
    assert lines == [w for w in fb.warnings if "scale/offset" in w] and len(lines) == 1, fb.warnings
    assert lines[0].startswith("The PAN carries no scale/offset while FUSED and the MS declare one (MS x 0.0001 + 0)")
    assert "compare all the inputs on stored values" in lines[0]
    # all of them tagged with the scale alone: the same figures too (QA confirmed; kept)
    pan_sc = _tagged(wv2["pan"], tmp_path / "pan_sc.tif", 1e-4)
    _same(assessment.assess_full(fu_sc, pan_sc, ms_sc, "wv2"), plain, ("HQNR", "D_lambda", "D_s", "R_SAM", "R_Q2n"),
          rel=1e-6)   # float rounding of the scaled values


def test_an_untagged_pan_beside_a_landsat_l2_ms_gives_the_untagged_figures(cached, tmp_path):
    """Landsat 8, the MS declaring C2 L2's x 2.75e-05 - 0.2 and the PAN none: Ds 0.027 -> 0, Dρ 0.297 -> 0.800."""
    pan = str(tmp_path / "pan.tif")
    ms = str(tmp_path / "ms.tif")
    gdal.Translate(pan, str(cached("landsat8/pan.tif")), srcWin=[256, 256, 512, 512], stats=False)
    gdal.Translate(ms, str(cached("landsat8/ms.tif")), srcWin=[128, 128, 256, 256], stats=False)
    out = str(tmp_path / "fused.tif")
    pansharpen(pan, ms, out, "landsat8", "mtf_glp_hpm")
    plain = assessment.assess_full(out, pan, ms, "landsat8")
    fb = Said()
    mixed = assessment.assess_full(_tagged(out, tmp_path / "fu_sc.tif", 2.75e-05, -0.2), pan,
                                   _tagged(ms, tmp_path / "ms_sc.tif", 2.75e-05, -0.2), "landsat8", fb)
    _same(mixed, plain, FULL)
    assert mixed["D_s"] > 0.01 and not any("physical values" in n for n in mixed["notes"])
    assert sum("The PAN carries no scale/offset" in w for w in fb.warnings) == 1, fb.warnings


def test_a_scaled_fused_against_an_untagged_reference_gives_the_untagged_figures(wv2, tmp_path):
    """FUSED declaring x 1e-4 - 0.01, REFERENCE none: Q 0 and SAM 34.2° (0.894 and 8.35° untagged), with a warning
    that blamed the bit depth ("16-bit (values up to 0.0977) ... not a rescaled or 8-bit copy")."""
    # a reduced-resolution case on real pixels: the MS against itself smoothed on its own grid
    blurred = str(tmp_path / "half.tif")
    gdal.Translate(blurred, wv2["ms"], width=75, height=75, resampleAlg="average")
    fused = str(tmp_path / "smooth.tif")
    gdal.Translate(fused, blurred, width=150, height=150, resampleAlg="cubic")
    plain = assessment.assess_reduced(fused, wv2["ms"], "wv2")
    fb = Said()
    mixed = assessment.assess_reduced(_tagged(fused, tmp_path / "fu_sc.tif", 1e-4, -0.01), wv2["ms"], "wv2", fb)
    _same(mixed, plain, REDUCED)
    assert 0.5 < mixed["Q"] < 1
    assert not any("radiometric scales" in w or "8-bit" in w for w in fb.warnings), fb.warnings
    (line,) = [w for w in fb.warnings if "scale/offset" in w]
    assert line.startswith("The REFERENCE carries no scale/offset while FUSED declares one (FUSED x 0.0001 - 0.01)")


def test_the_scale_warning_names_a_missing_tag_not_the_bit_depth(wv2, tmp_path):
    """When only one of the two rasters compared declares a scale/offset, the advice is the tag: the line said
    "FUSED is 16-bit (values up to 0.0977)" and "not a rescaled or 8-bit copy"."""
    fu = MaskedRaster(_tagged(wv2["fused"], tmp_path / "fu_sc.tif", 1e-4, -0.01), "FUSED")
    fu.physical = True
    line = assessment.scale_warning(fu, MaskedRaster(wv2["ms"], "REFERENCE"))
    assert "Only FUSED declares a scale/offset (x 0.0001 - 0.01): if REFERENCE is stored like it" in line, line
    assert "8-bit" not in line and "FUSED is 16-bit x 0.0001 - 0.01 (values up to" in line


def _landsat_in_physical_values(cached, tmp_path):
    """A Landsat 8 crop fused by MTF-GLP-HPM; its FUSED, PAN and MS in C2 L2 physical values (untagged) and their
    full-resolution figures: (pan, ms, fused, physical copies, figures)."""
    pan, ms = str(tmp_path / "pan.tif"), str(tmp_path / "ms.tif")
    gdal.Translate(pan, str(cached("landsat8/pan.tif")), srcWin=[256, 256, 512, 512], stats=False)
    gdal.Translate(ms, str(cached("landsat8/ms.tif")), srcWin=[128, 128, 256, 256], stats=False)
    out = str(tmp_path / "fused.tif")
    pansharpen(pan, ms, out, "landsat8", "mtf_glp_hpm")
    phys = [_physical(p, tmp_path / f"{n}_phys.tif", 2.75e-05, -0.2) for n, p in (("f", out), ("p", pan), ("m", ms))]
    return pan, ms, out, phys, assessment.assess_full(*phys, "landsat8")


def test_a_pan_stored_like_the_ms_beside_a_physical_fused_is_read_with_the_ms_encoding(cached, tmp_path):
    """FUSED converted to reflectance (no tag), the PAN in DN (no tag), the MS declaring x 2.75e-05 - 0.2: neither
    stored nor physical values fit all; the PAN is read with the MS's scale/offset (stored like it), and the figures
    are those of the all-physical inputs."""
    pan, ms, out, phys, physical = _landsat_in_physical_values(cached, tmp_path)
    fb = Said()
    mixed = assessment.assess_full(phys[0], pan, _tagged(ms, tmp_path / "ms_sc.tif", 2.75e-05, -0.2), "landsat8", fb)
    for key in FULL:
        assert mixed[key] == pytest.approx(physical[key], rel=1e-4, abs=1e-6), key
    (line,) = [w for w in fb.warnings if "no scale/offset" in w]
    assert "while FUSED holds physical values: the PAN is read with the MS's scale/offset" in line, line


def test_an_untagged_pan_beside_a_fused_and_ms_of_different_encodings_is_read_with_the_ms_encoding(cached, tmp_path):
    """Review: FUSED declaring x 1e-4 (reflectance x 1e4), the MS Landsat C2 L2's x 2.75e-05 - 0.2, the PAN untagged
    at the MS's stored level: all the inputs were compared on stored values, FUSED's numbers (reflectance x 1e4)
    against the MS's DN. Now the PAN is read with the MS's encoding and each raster in physical values: the figures
    are those of the all-physical inputs."""
    pan, ms, out, phys, physical = _landsat_in_physical_values(cached, tmp_path)
    fused_e4 = _tagged(_physical(out, tmp_path / "f_e4.tif", 2.75e-05 / 1e-4, -0.2 / 1e-4), tmp_path / "f_e4t.tif",
                       1e-4)
    fb = Said()
    mixed = assessment.assess_full(fused_e4, pan, _tagged(ms, tmp_path / "ms_sc.tif", 2.75e-05, -0.2), "landsat8", fb)
    for key in FULL:
        assert mixed[key] == pytest.approx(physical[key], rel=1e-4, abs=1e-6), key
    (line,) = [w for w in fb.warnings if "no scale/offset" in w]
    assert "while FUSED and the MS declare different scale/offsets" in line, line
    assert "the PAN is read with the MS's scale/offset" in line, line
