"""Faithful radiometry and metadata (QA round 48c, a remote-sensing scientist): declared scale/offset in
ksdiff:assess, offsets only product metadata declare, PAN/MS of different encodings, and ENVI wavelengths as band
identity. Real Landsat 8, Sentinel-2 and WorldView-2 crops from the data cache."""
from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest
from fixture_helpers import physical_copy
from osgeo import gdal

from ksdiff_qgis.engine import assessment, metaoffsets, selfcheck
from ksdiff_qgis.engine.bands import band_kind
from ksdiff_qgis.engine.metascan import MetadataScan
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.raster_io import RATIO_OFFSET, describe
from ksdiff_qgis.engine.report import html_report

SC, OF = 2.75e-05, -0.2   # Landsat Collection 2 Level-2 surface reflectance


def _crop(src: str, dst: Path, win: list[int], bands: list[int] | None = None) -> str:
    gdal.Translate(str(dst), src, srcWin=win, bandList=bands, stats=False)
    return str(dst)


def _set_scaling(path, scale: float, offset: float, unit: str = "") -> str:
    path = str(path)
    ds = gdal.Open(path, gdal.GA_Update)
    for b in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(b)
        band.SetScale(scale)
        band.SetOffset(offset)
        if unit:
            band.SetUnitType(unit)
    ds = None
    return path


def _physical(path: str, dst: Path, scale: float = SC, offset: float = OF) -> str:
    """A float32 copy of ``path`` in physical values (stored x scale + offset), no scale declared."""
    return physical_copy(path, dst, scale, offset)


@pytest.fixture()
def l8(cached, tmp_path) -> dict[str, str]:
    """A Landsat 8 crop (PAN 512², MS 256²) as delivered (UInt16 DN) and with C2 L2's scale/offset on its bands."""
    pan = _crop(str(cached("landsat8/pan.tif")), tmp_path / "pan.tif", [256, 256, 512, 512])
    ms = _crop(str(cached("landsat8/ms.tif")), tmp_path / "ms.tif", [128, 128, 256, 256])
    pan_sc = _set_scaling(shutil.copy(pan, tmp_path / "pan_sc.tif"), SC, OF, "reflectance")
    ms_sc = _set_scaling(shutil.copy(ms, tmp_path / "ms_sc.tif"), SC, OF, "reflectance")
    return {"pan": pan, "ms": ms, "pan_sc": pan_sc, "ms_sc": ms_sc}


# ---------------------------------------------------------------------------------- 1. ksdiff:assess
def test_assess_reads_each_raster_in_its_declared_physical_values(l8, tmp_path):
    """A fused output converted to reflectance, assessed against the scaled MS and PAN, got HQNR 0 and R-ERGAS 50.96
    with only "different radiometric scales" advice, though the MS declares the scale that converts it. Each raster's
    own scale/offset is applied now: the figures are those of the all-physical assessment, and the log and the
    report's notes say so."""
    out = str(tmp_path / "fused.tif")
    pansharpen(l8["pan_sc"], l8["ms_sc"], out, "landsat8", "mtf_glp_hpm")
    assert gdal.Open(out).GetRasterBand(1).GetOffset() == OF   # the output carries the MS's scale/offset
    fused_phys = _physical(out, tmp_path / "fused_phys.tif")
    pan_phys, ms_phys = _physical(l8["pan"], tmp_path / "pp.tif"), _physical(l8["ms"], tmp_path / "mp.tif")
    said = []

    class FB(assessment.Feedback):
        def warning(self, msg):
            said.append(msg)

    mixed = assessment.assess_full(fused_phys, l8["pan_sc"], l8["ms_sc"], "landsat8", FB())
    physical = assessment.assess_full(fused_phys, pan_phys, ms_phys, "landsat8")
    assert not any("different radiometric scales" in s for s in said), said
    for key in ("HQNR", "D_lambda", "D_s", "R_ERGAS", "R_SAM", "R_Q2n"):
        assert mixed[key] == pytest.approx(physical[key], rel=1e-4, abs=1e-6), key
    assert mixed["HQNR"] > 0.9
    note = next(n for n in mixed["notes"] if n.startswith("The indices are computed on physical values"))
    assert "FUSED none declared" in note and "MS x 2.75e-05 - 0.2" in note
    assert html.escape(note) in html_report(None, mixed, {"Fused": fused_phys}, "landsat8")
    # the DN output with its declared scale: the same figures as on physical values, not those on stored DN
    dn = assessment.assess_full(out, l8["pan_sc"], l8["ms_sc"], "landsat8")
    assert dn["R_ERGAS"] == pytest.approx(physical["R_ERGAS"], rel=1e-3)


def test_a_fused_raster_that_lost_the_ms_scale_is_compared_on_stored_values(l8, tmp_path):
    """The DN output with its scale/offset dropped (a tool that writes none), assessed against the scaled MS and PAN:
    the MS and PAN were read in reflectance and FUSED in DN, HQNR 0.0 and R-ERGAS 1e7 (QA; 0.945 at the session
    start). Now all are read stored, the figures those of the unscaled inputs, and one warning says so."""
    out = str(tmp_path / "fused.tif")
    pansharpen(l8["pan_sc"], l8["ms_sc"], out, "landsat8", "mtf_glp_hpm")
    bare = str(tmp_path / "fused_bare.tif")
    gdal.Translate(bare, out)
    ds = gdal.Open(bare, gdal.GA_Update)
    for b in range(1, ds.RasterCount + 1):
        ds.GetRasterBand(b).SetScale(1.0)
        ds.GetRasterBand(b).SetOffset(0.0)
    ds = None
    said = []

    class FB(assessment.Feedback):
        def warning(self, msg):
            said.append(msg)

    res = assessment.assess_full(bare, l8["pan_sc"], l8["ms_sc"], "landsat8", FB())
    stored = assessment.assess_full(bare, l8["pan"], l8["ms"], "landsat8")
    for key in ("HQNR", "D_lambda", "D_s", "R_ERGAS", "R_SAM", "R_Q2n"):
        assert res[key] == stored[key], key
    assert res["HQNR"] > 0.9
    lines = [s for s in said if "FUSED carries no scale/offset while the PAN and the MS declare one (MS x 2.75e-05 - "
             "0.2)" in s]
    assert len(lines) == 1 and "the indices compare all the inputs on stored values" in lines[0], said


def test_assess_of_unscaled_inputs_is_bit_identical_to_the_stored_reading(l8, tmp_path, monkeypatch):
    """Inputs that declare no scale/offset: nothing changes, to the last bit (the physical reading is skipped)."""
    out = str(tmp_path / "fused.tif")
    pansharpen(l8["pan"], l8["ms"], out, "landsat8", "mtf_glp_hpm")
    now = assessment.assess_full(out, l8["pan"], l8["ms"], "landsat8")
    monkeypatch.setattr(assessment, "use_declared_scaling", lambda rasters, fb: None)
    before = assessment.assess_full(out, l8["pan"], l8["ms"], "landsat8")
    assert repr(now) == repr(before)
    assert not any("physical values" in n for n in now["notes"])


def test_the_self_check_says_its_ergas_is_on_the_stored_encoding(l8, tmp_path):
    """METHOD auto on an MS with a declared offset: its ERGAS figures are on DN, which one note says."""
    res = pansharpen(l8["pan_sc"], l8["ms_sc"], str(tmp_path / "o.tif"), "landsat8", "auto", check_only=True)
    assert selfcheck.ERGAS_ENCODED in res.selfcheck.notes
    plain = pansharpen(l8["pan"], l8["ms"], str(tmp_path / "p.tif"), "landsat8", "auto", check_only=True)
    assert selfcheck.ERGAS_ENCODED not in plain.selfcheck.notes


# ---------------------------------------------------------------------------------- 2. metadata offsets
def test_a_sentinel2_offset_only_in_the_metadata_is_warned(cached, tmp_path):
    """BOA_ADD_OFFSET_Bn=-1000 with BOA_QUANTIFICATION_VALUE=10000 (GDAL-derived S2 L2A GeoTIFFs): the values hold
    reflectance x 10^4 + 1000 and nothing was said, while a band offset got the ratio-method warning."""
    paths = {}
    for role, src, bands, win in (("pan", "s2_10m.tif", [4], [0, 0, 256, 256]),
                                  ("ms", "s2_20m.tif", [1, 2, 3, 8], [0, 0, 128, 128])):
        path = _crop(str(cached(f"sentinel2/{src}")), tmp_path / f"{role}.tif", win, bands)
        ds = gdal.Open(path, gdal.GA_Update)
        ds.SetMetadata({f"BOA_ADD_OFFSET_B{i}": "-1000" for i in range(13)} | {"BOA_QUANTIFICATION_VALUE": "10000"})
        ds = None
        paths[role] = path
    res = pansharpen(paths["pan"], paths["ms"], str(tmp_path / "o.tif"), "generic", "mtf_glp_hpm")
    said = [w for w in res.warnings if "BOA_ADD_OFFSET_B0 … BOA_ADD_OFFSET_B12: -1000" in w]
    assert len(said) == 2 and all(RATIO_OFFSET in w and "(value -1000) / 10000" in w for w in said), res.warnings


def test_a_landsat_mtl_offset_is_warned(l8, tmp_path):
    """REFLECTANCE_ADD_BAND_n of the MTL that names the input: warned as a band offset is, and not twice when the
    bands carry the offset too (``band_value_notes`` says that one)."""
    folder = tmp_path / "LC08_L2SP_198024_20200101_20200113_02_T1"
    folder.mkdir()
    ms = str(shutil.copy(l8["ms"], folder / "LC08_L2SP_198024_20200101_20200113_02_T1_SR_stack.tif"))
    (folder / "LC08_L2SP_198024_20200101_20200113_02_T1_MTL.txt").write_text(
        'GROUP = LANDSAT_METADATA_FILE\n  SPACECRAFT_ID = "LANDSAT_8"\n'
        + "".join(f"    REFLECTANCE_ADD_BAND_{b} = -0.200000\n    REFLECTANCE_MULT_BAND_{b} = 2.75E-05\n"
                  for b in range(1, 8)) + "END\n")
    res = pansharpen(l8["pan"], ms, str(tmp_path / "o.tif"), "landsat8", "mtf_glp_fs")
    said = [w for w in res.warnings if "REFLECTANCE_ADD_BAND_1 … REFLECTANCE_ADD_BAND_7: -0.2" in w]
    assert len(said) == 1 and RATIO_OFFSET in said[0] and "_MTL.txt declares an offset" in said[0], res.warnings
    _set_scaling(ms, SC, OF)
    assert metaoffsets.metadata_offset_note(gdal.Open(ms), ms, "MS", MetadataScan()) is None


# ---------------------------------------------------------------------------------- 3. PAN/MS encodings
def test_pan_and_ms_of_different_declared_encodings_are_warned(l8, tmp_path):
    """A radiance PAN (x 0.0123 - 61.5, W/m2/sr/um) with a reflectance MS: no word on the mismatch, and the PAN's note
    said the output carries "the same scale/offset", which is the MS's. Said in one warning."""
    pan = _set_scaling(shutil.copy(l8["pan"], tmp_path / "pan_rad.tif"), 0.0123, -61.5, "W/m2/sr/um")
    res = pansharpen(pan, l8["ms_sc"], str(tmp_path / "o.tif"), "landsat8", "mtf_glp_fs")
    text = "\n".join(res.warnings)
    assert "declare different scales/offsets (PAN x 0.0123 - 61.5, MS x 2.75e-05 - 0.2) and unit types (PAN " \
           "'W/m2/sr/um', MS 'reflectance')" in text, text
    # one line for both inputs' scales (QA round 98: three overlapping ones), saying the output carries the MS's
    (pan_note,) = [w for w in res.warnings if "scale" in w and "offset" in w]
    assert "the output carries the MS's scale/offset" in pan_note and "the same scale/offset" not in pan_note


def test_a_radiance_pan_with_a_reflectance_ms_is_worded_by_what_each_declares(l8, tmp_path):
    """QA: the units warning said "their declared scale/offset applied" of inputs that declare none and guessed
    "reflectance and digital numbers?" whatever the mix. A PAN declaring radiance (x 0.0123) beside an untagged float
    reflectance MS: the PAN's physical values, the MS's stored ones, and no DN guess."""
    pan = _set_scaling(shutil.copy(l8["pan"], tmp_path / "pan_rad.tif"), 0.0123, 0.0, "W/m2/sr/um")
    ms = _physical(l8["ms"], tmp_path / "ms_refl.tif", 2e-5, 0.0)
    res = pansharpen(pan, ms, str(tmp_path / "o.tif"), "landsat8", "mtf_glp_fs")
    (units,) = [w for w in res.warnings if "different units" in w]
    assert "the PAN's physical values (the declared scale/offset applied) (scene mean" in units, units
    assert "the MS's values (no scale/offset declared) (scene mean" in units, units
    assert "different units or quantities (e.g. radiance and reflectance)?" in units, units


def test_the_units_check_compares_physical_values(l8, tmp_path):
    """A float reflectance PAN with a UInt16 MS declaring x 2.75e-05 - 0.2 is one product level: it was told
    "different units" (stored means 0.1 and 9000); a DN PAN with a float reflectance MS still is."""
    pan = _physical(l8["pan"], tmp_path / "pan_refl.tif")
    res = pansharpen(pan, l8["ms_sc"], str(tmp_path / "o.tif"), "landsat8", "mtf_glp_fs")
    assert not any("different units" in w for w in res.warnings), res.warnings
    ms = _physical(l8["ms"], tmp_path / "ms_refl.tif")
    res = pansharpen(l8["pan"], ms, str(tmp_path / "p.tif"), "landsat8", "mtf_glp_fs")
    assert any("different units" in w for w in res.warnings), res.warnings


# ---------------------------------------------------------------------------------- 4. ENVI wavelengths
def test_envi_wavelengths_give_band_identity(cached, tmp_path):
    """An ENVI MS without band names: GDAL names its bands '478.0 Nanometers'; only 'nm' was read, so the bands had
    no identity and the output no natural colour."""
    ms = str(tmp_path / "ms.dat")
    gdal.Translate(ms, str(cached("wv2/pair1_ms.tif")), format="ENVI")
    (tmp_path / "ms.dat.aux.xml").unlink(missing_ok=True)   # GDAL's copy of the band names, as a delivery has none
    hdr = tmp_path / "ms.hdr"
    text = re.sub(r"band names = \{[^}]*\}\n", "", hdr.read_text())
    hdr.write_text(text + "wavelength units = Nanometers\nwavelength = {478.0, 546.0, 659.0, 831.0}\n")
    info = describe(gdal.Open(ms), ms)
    assert [band_kind(d) for d in info.descriptions] == ["blue", "green", "red", "nir"], info.descriptions
    out = str(tmp_path / "o.tif")
    pansharpen(str(cached("wv2/pair1_pan.tif")), ms, out, "wv2", "mtf_glp_hpm")
    ds = gdal.Open(out)
    colours = [gdal.GetColorInterpretationName(ds.GetRasterBand(b).GetColorInterpretation()) for b in (1, 2, 3)]
    assert colours == ["Blue", "Green", "Red"]


def test_a_wavelength_item_names_an_unnamed_band(cached, tmp_path):
    """A band without a description but with a wavelength item (in µm) gets it as its name, which has a kind."""
    ms = shutil.copy(cached("wv2/pair1_ms.tif"), tmp_path / "ms.tif")
    ds = gdal.Open(str(ms), gdal.GA_Update)
    for b, wl in enumerate((0.478, 0.546, 0.659, 0.831), start=1):
        band = ds.GetRasterBand(b)
        band.SetDescription("")
        band.SetMetadata({"wavelength": str(wl), "wavelength_units": "Micrometers"})
    ds = None
    names = describe(gdal.Open(str(ms)), str(ms)).descriptions
    assert names == ["478 nm", "546 nm", "659 nm", "831 nm"]
    assert [band_kind(n) for n in names] == ["blue", "green", "red", "nir"]
    assert band_kind("0.66 Micrometers") == "red" and band_kind("Band 1") is None


def test_a_sentinel2_offset_in_the_sources_of_a_vrt_ms_is_warned_and_kept(cached, tmp_path):
    """QA137: an MS stacked as a VRT over per-band L2A files, each carrying its BOA_ADD_OFFSET_Bxx=-1000 and
    BOA_QUANTIFICATION_VALUE=10000: gdalbuildvrt copies no metadata, so the offset was neither warned nor written
    to the output (a single file MS got both). Its sources' are now, as a single file's."""
    pan = _crop(str(cached("sentinel2/s2_10m.tif")), tmp_path / "T18SUJ_B08_10m.tif", [0, 0, 256, 256], [4])
    files = []
    for band, code in zip([1, 2, 3, 8], ["B02", "B03", "B04", "B8A"]):
        path = _crop(str(cached("sentinel2/s2_20m.tif")), tmp_path / f"T18SUJ_{code}_20m.tif", [0, 0, 128, 128],
                     [band])
        ds = gdal.Open(path, gdal.GA_Update)
        ds.SetMetadata({f"BOA_ADD_OFFSET_{code}": "-1000", "BOA_QUANTIFICATION_VALUE": "10000"})
        ds = None
        files.append(path)
    ms = str(tmp_path / "ms.vrt")
    gdal.BuildVRT(ms, files, separate=True).FlushCache()
    res = pansharpen(pan, ms, str(tmp_path / "o.tif"), "generic", "mtf_glp_hpm")
    said = [w for w in res.warnings if w.startswith("The MS raster's metadata declares an offset")]
    assert len(said) == 1 and "BOA_ADD_OFFSET_B02" in said[0] and "(value -1000) / 10000" in said[0], res.warnings
    carried = gdal.Open(res.output_path).GetMetadata()
    assert carried.get("BOA_ADD_OFFSET_B02") == carried.get("BOA_ADD_OFFSET_B8A") == "-1000", carried
    assert carried.get("BOA_QUANTIFICATION_VALUE") == "10000", carried
    # QA140: an MS that declares its own scale/offset, and a mosaic whose sources disagree (one file without the
    # offset: an older processing baseline), carry none of it
    scaled = str(tmp_path / "scaled.vrt")
    gdal.BuildVRT(scaled, files, separate=True).FlushCache()
    ds = gdal.Open(scaled, gdal.GA_Update)
    for b in range(1, 5):
        ds.GetRasterBand(b).SetScale(1e-4)
        ds.GetRasterBand(b).SetOffset(-0.1)
    ds = None
    res = pansharpen(pan, scaled, str(tmp_path / "s.tif"), "generic", "mtf_glp_hpm")
    assert "BOA_ADD_OFFSET_B02" not in gdal.Open(res.output_path).GetMetadata()
    ds = gdal.Open(files[3], gdal.GA_Update)
    ds.SetMetadata({})
    ds = None
    mixed = str(tmp_path / "mixed.vrt")
    gdal.BuildVRT(mixed, files, separate=True).FlushCache()
    res = pansharpen(pan, mixed, str(tmp_path / "m.tif"), "generic", "mtf_glp_hpm")
    assert "BOA_ADD_OFFSET_B02" not in gdal.Open(res.output_path).GetMetadata()
    # QA142: but the user hears that the values mix encodings (the warning had gone with the items)
    said = [w for w in res.warnings if "source files disagree on their Sentinel-2 offset" in w]
    assert len(said) == 1 and "(T18SUJ_B02_20m.tif: BOA_ADD_OFFSET_B02: -1000; T18SUJ_B8A_20m.tif: none; 2 more " \
        "files)" in said[0], res.warnings   # a file of each value named, the others counted
    assert not [w for w in res.warnings if w.startswith("The MS raster's metadata declares")], res.warnings
