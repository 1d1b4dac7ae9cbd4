"""The PAN/MS misregistration diagnostic (engine/coregistration.py) on real WorldView-2 and Landsat 8 pixels: known
shifts applied to the PAN's geotransform are measured back."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import coregistration, pipeline
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.grid import plan_grid
from ksdiff_qgis.engine.raster_io import open_raster


def _offset(pan_path: str, ms_path: str) -> tuple[float, float]:
    """The offset (rows, cols) in PAN pixels that the scene statistics' sample measures."""
    pan_ds, pan = open_raster(pan_path, "PAN")
    ms_ds, ms = open_raster(ms_path, "MS")
    plan = plan_grid(pan, ms, ms_ds)
    offset = pipeline.estimate_scene_stats(pan_ds, plan.ms_dataset or ms_ds, pan, ms, plan,
                                           gains=(0.3,) * ms.bands).pan_offset
    assert offset is not None
    return offset[0] * plan.ratio, offset[1] * plan.ratio


def _moved(src: str, dst: str, rows: float, cols: float) -> str:
    """``src`` with its geotransform moved by (rows, cols) of its pixels (down, right): the data stay, so its content
    lies that much further along against the other raster."""
    ds = gdal.Translate(dst, src, format="VRT")
    gt = list(ds.GetGeoTransform())
    gt[0] += cols * gt[1]
    gt[3] += rows * gt[5]
    ds.SetGeoTransform(gt)
    ds = None
    return dst


@pytest.mark.parametrize("pair,ratio", [("wv2", 4), ("l8", 2)])
@pytest.mark.parametrize("shift", [(0.0, 1.0), (1.0, 0.0), (0.5, -0.5)])
def test_known_shifts_are_measured(data_dir, tmp_path, pair, ratio, shift):
    pan, ms = str(data_dir / f"{pair}_pan.tif"), str(data_dir / f"{pair}_ms.tif")
    base = _offset(pan, ms)
    moved = _offset(_moved(pan, str(tmp_path / "moved.vrt"), *shift), ms)
    for axis in range(2):
        assert moved[axis] - base[axis] == pytest.approx(shift[axis], abs=0.3), (base, moved)


def test_a_misregistered_pair_is_warned_and_an_aligned_one_is_not(data_dir, tmp_path):
    """The WorldView-2 fixture (a crop of pair 1, about 1.4 PAN pixels apart, as DATA.md says of pair 1) is warned;
    the same PAN moved back onto its MS is not."""
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    log = RecordingFeedback()
    res = pipeline.pansharpen(pan, ms, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm", feedback=log)
    notes = [w for w in res.warnings if "PAN pixels apart" in w]
    assert len(notes) == 1 and "To move the MS onto the PAN, tick" in notes[0] and "(COREGISTER)" in notes[0]
    assert sum("PAN pixels apart" in line for line in log.lines) == 1   # said once
    aligned = _moved(pan, str(tmp_path / "aligned.vrt"), 0.64, 1.24)
    res = pipeline.pansharpen(aligned, ms, str(tmp_path / "a.tif"), "wv2", "mtf_glp_hpm")
    assert not [w for w in res.warnings if "PAN pixels apart" in w]


def test_offset_note_threshold():
    assert coregistration.offset_note(None, 4) is None
    assert coregistration.offset_note((0.1, 0.05), 4) is None                      # 0.45 PAN pixels
    note = coregistration.offset_note((-0.25, 0.1), 4)                             # the PAN 1 px north, 0.4 px east
    assert "1.1 PAN pixels apart" in note and "0.4 px east and 1.0 px north" in note
    assert "(5.4 m; the PAN's" in coregistration.offset_note((-0.25, 0.1), 4, pixel_m=5.0)   # with metres, if known


def _read(path: str) -> np.ndarray:
    ds = gdal.Open(path)
    return ds.ReadAsArray().astype(np.float64)


@pytest.mark.parametrize("method,share", [("mtf_glp_hpm", 0.02), ("ksdiff", 0.05)])
def test_coregister_moves_the_ms_as_a_corrected_georeference_would(data_dir, tmp_path, method, share):
    """COREGISTER on the misregistered WorldView-2 fixture: the MS moved by the measured offset (said in the log, the
    misregistration warning gone, under 0.3 PAN pixels left) gives the pixels and the extent of a run on the same MS
    whose georeference was corrected by that offset: the output on the PAN's grid over the overlap after the move,
    no PAN pixel outside the moved MS extrapolated. Off, the pixels differ."""
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    dy, dx = (v / 4 for v in _offset(pan, ms))   # MS pixels
    log = RecordingFeedback()
    moved = pipeline.pansharpen(pan, ms, str(tmp_path / "moved.tif"), "wv2", method, feedback=log, coregister=True)
    lines = [line for line in log.lines if "(COREGISTER): the MS moved onto the PAN" in line]
    assert len(lines) == 1 and not [w for w in moved.warnings if "PAN pixels apart" in w]
    assert moved.coregistration == lines[0]
    left = float(lines[0].split("left after the move: ")[1].split(" PAN")[0])
    assert left < 0.3
    edited = _moved(ms, str(tmp_path / "edited.vrt"), dy, dx)
    ref = pipeline.pansharpen(pan, edited, str(tmp_path / "ref.tif"), "wv2", method)
    plain = pipeline.pansharpen(pan, ms, str(tmp_path / "plain.tif"), "wv2", method)
    a, b, c = _read(moved.output_path), _read(ref.output_path), _read(plain.output_path)
    ga, gc = gdal.Open(moved.output_path).GetGeoTransform(), gdal.Open(plain.output_path).GetGeoTransform()
    assert a.shape == b.shape and ga == gdal.Open(ref.output_path).GetGeoTransform()
    assert a.shape[1] < c.shape[1] and a.shape[2] < c.shape[2]   # the MS moved about 0.6 and 1.2 PAN pixels
    r0, c0 = round((ga[3] - gc[3]) / gc[5]), round((ga[0] - gc[0]) / gc[1])   # on the PAN's grid, inside the run's
    assert (r0, c0) == ((ga[3] - gc[3]) / gc[5], (ga[0] - gc[0]) / gc[1])
    diff = np.abs(a - b)[:, 8:-8, 8:-8].mean()
    moved_by = np.abs(a - c[:, r0:r0 + a.shape[1], c0:c0 + a.shape[2]])[:, 8:-8, 8:-8].mean()
    assert diff < share * moved_by, (diff, moved_by)


def test_coregister_warns_when_the_offset_is_beyond_reach(data_dir, tmp_path):
    """An MS 24 PAN pixels (6 MS pixels) off, beyond the measurement's reach: its intensity explains the PAN so poorly
    at the offset found that the offset is not trusted; COREGISTER leaves the MS and warns that it was not moved (it
    was moved by 7.3 PAN pixels, a wrong amount, with a warning); without COREGISTER the pair is warned of as probably
    misregistered, without advice to co-register by the measured amount."""
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    far = _moved(ms, str(tmp_path / "far.vrt"), 0.0, 6.0)
    res = pipeline.pansharpen(pan, far, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm", coregister=True)
    notes = [w for w in res.warnings if w.startswith(coregistration.COREG)]
    assert len(notes) == 1 and "so it was not moved" in notes[0] and res.coregistration == notes[0], res.warnings
    assert "further apart than it reaches" in notes[0]
    plain = pipeline.pansharpen(pan, far, str(tmp_path / "p.tif"), "wv2", "mtf_glp_hpm")
    assert (res.width, res.height) == (plain.width, plain.height)   # nothing moved: the same overlap
    notes = [w for w in plain.warnings if "PAN pixels apart" in w]
    assert len(notes) == 1 and "probably misregistered" in notes[0] and "tick" not in notes[0], notes


def test_coregister_on_a_textureless_scene_says_nothing_moved(tmp_path):
    """A scene with no texture to measure an offset on: COREGISTER warns that nothing moved, and fuses."""
    pan_path, ms_path = str(tmp_path / "pan.tif"), str(tmp_path / "ms.tif")
    for path, bands, size, px in ((pan_path, 1, 256, 0.5), (ms_path, 4, 64, 2.0)):
        ds = gdal.GetDriverByName("GTiff").Create(path, size, size, bands, gdal.GDT_UInt16)
        ds.SetGeoTransform((500000, px, 0, 4000000, 0, -px))
        ds.SetProjection("EPSG:32633")
        for b in range(1, bands + 1):
            ds.GetRasterBand(b).Fill(300 + 10 * b)
        ds = None
    res = pipeline.pansharpen(pan_path, ms_path, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm", coregister=True)
    assert [w for w in res.warnings if w == coregistration.UNMEASURED]


def test_nodata_in_every_window_still_lets_the_offset_be_measured(data_dir, tmp_path):
    """A small MS whose every sampled window holds some nodata (here one corner): the offset is measured on the data
    around it (the windows had to be all data: the warning vanished, COREGISTER moved nothing)."""
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    holed = str(tmp_path / "holed.tif")
    ds = gdal.Translate(holed, ms)
    for b in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(b)
        band.SetNoDataValue(0)
        band.WriteArray(np.zeros((3, 3), dtype=np.uint16), 0, 0)
    ds = None
    base, with_hole = _offset(pan, ms), _offset(pan, holed)
    assert np.hypot(base[0] - with_hole[0], base[1] - with_hole[1]) < 0.05
    res = pipeline.pansharpen(pan, holed, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm", coregister=True)
    assert "(COREGISTER): the MS moved onto the PAN" in res.coregistration


def test_the_grid_shift_line_says_it_is_from_before_the_move(data_dir, tmp_path):
    """An MS grid half an MS pixel off the PAN grid, COREGISTER on: the grid-shift warning says it describes the
    georeference, before the move (it read as the state the fusion used)."""
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    off = _moved(ms, str(tmp_path / "off.vrt"), 0.5, 0.0)
    # (2 PAN pixels: whole ones, an info line, as for a PAN cut at another pixel; test_pan_cut_phase)
    fb = RecordingFeedback()
    pipeline.pansharpen(pan, off, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm", coregister=True, feedback=fb)
    lines = [w for w in fb.lines if w.startswith("The MS grid is shifted")]
    assert len(lines) == 1 and lines[0].endswith("(by its georeference, before the COREGISTER move)."), fb.lines
    fb = RecordingFeedback()
    pipeline.pansharpen(pan, off, str(tmp_path / "p.tif"), "wv2", "mtf_glp_hpm", feedback=fb)
    assert [w for w in fb.lines if w.startswith("The MS grid is shifted")][0].endswith("close to it, not exactly).")


def test_landsat_half_pixel_layout_is_an_info_line(data_dir, tmp_path):
    """A genuine Landsat 8 pair (USGS: PAN and MS grids half a PAN pixel apart, MS pixel centres on PAN centres) is
    logged as an info line naming the usual Landsat layout and the half-covered edge pixels the output leaves out (QA:
    an orange warning on every Landsat 8/9 run); any other shift stays a warning."""
    pan, ms = str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif")
    inside = str(tmp_path / "inside.vrt")   # the MS ends inside the PAN on every side, as on whole scenes
    gdal.Translate(inside, ms, format="VRT", srcWin=[2, 2, 120, 120])
    fb = RecordingFeedback()
    res = pipeline.pansharpen(pan, inside, str(tmp_path / "o.tif"), "landsat8", "mtf_glp_hpm", feedback=fb)
    said = [line for line in fb.lines if "MS grid is shifted" in line]
    assert said == ["The MS grid is shifted by (+0.50, +0.50) PAN pixels (x, y) against the PAN grid: the usual "
                    "Landsat layout (USGS delivers the MS pixel centres on PAN pixel centres), not a misregistration; "
                    "MS is resampled at the true position of every PAN pixel, and the output leaves out the PAN "
                    "pixels the MS covers only half of (one column or row at the left, top, right and bottom "
                    "edges)."], fb.lines
    assert not [w for w in res.warnings if "MS grid is shifted" in w]
    assert (res.width, res.height) == (239, 239)   # 240 PAN pixels of MS, a half one lost at each end
    # the MS reaching beyond the PAN: no edge is lost, none named
    fb = RecordingFeedback()
    pipeline.pansharpen(pan, ms, str(tmp_path / "full.tif"), "landsat8", "mtf_glp_hpm", feedback=fb)
    said = [line for line in fb.lines if "MS grid is shifted" in line]
    assert len(said) == 1 and said[0].endswith("true position of every PAN pixel.") and "usual Landsat" in said[0]
    # COREGISTER: the line describes the georeference, before the move, as the warning does
    fb = RecordingFeedback()
    pipeline.pansharpen(pan, ms, str(tmp_path / "c.tif"), "landsat8", "mtf_glp_hpm", coregister=True, feedback=fb)
    said = [line for line in fb.lines if "MS grid is shifted" in line]
    assert len(said) == 1 and said[0].endswith("(by its georeference, before the COREGISTER move).") \
        and not said[0].startswith("WARNING"), said
    # a shift that is not the half-pixel layout (0.7 PAN pixel across, 0.5 down) stays a warning
    off = _moved(ms, str(tmp_path / "off.vrt"), 0.0, 0.1)
    fb = RecordingFeedback()
    res = pipeline.pansharpen(pan, off, str(tmp_path / "w.tif"), "landsat8", "mtf_glp_hpm", feedback=fb)
    said = [line for line in fb.lines if "MS grid is shifted" in line]
    assert said == ["WARNING The MS grid is shifted by (+0.70, +0.50) PAN pixels (x, y) against the PAN grid (the "
                    "same grid as a shift by (-1.30, -1.50)): expected when the PAN and the MS were cut from their "
                    "scenes at different pixels; otherwise the MS's georeference is off (check it, or tick "
                    "'Co-register the MS onto the PAN' (COREGISTER)). The MS is resampled at the true position of "
                    "every PAN pixel."], said
    assert [w for w in res.warnings if w.startswith("The MS grid is shifted")]


def _slc_off_gaps(shape: tuple[int, int], gt) -> np.ndarray:
    """Landsat 7 SLC-off-like gaps on a grid ``gt``: tilted stripes 900 m apart, 300-420 m wide (a wedge across x)."""
    xs = gt[0] + (np.arange(shape[1]) + 0.5) * gt[1]
    ys = gt[3] + (np.arange(shape[0]) + 0.5) * gt[5]
    x, y = np.meshgrid(xs - xs.min(), ys)
    width = (10 + 4 * x / max(1.0, x.max())) * 30
    return np.mod(y + np.tan(np.radians(7)) * x, 900) < width



def _gapped_pair(cached, folder, declared: bool) -> dict[str, str]:
    """A 1024-pixel cut of the real Landsat 8 pair with SLC-off-like gaps of 0 (nodata 0 ``declared`` or not)."""
    folder.mkdir()
    src_pan, src_ms = gdal.Open(str(cached("landsat8/pan.tif"))), gdal.Open(str(cached("landsat8/ms.tif")))
    paths = {}
    for role, src, side in (("pan", src_pan, 1024), ("ms", src_ms, 512)):
        arr = src.ReadAsArray(0, 0, side, side)
        arr = arr if arr.ndim == 3 else arr[None]
        gt = src.GetGeoTransform()
        arr[:, _slc_off_gaps(arr.shape[1:], gt)] = 0
        paths[role] = str(folder / f"{role}.tif")
        ds = gdal.GetDriverByName("GTiff").Create(paths[role], side, side, arr.shape[0], gdal.GDT_UInt16)
        ds.SetGeoTransform(gt)
        ds.SetProjection(src.GetProjection())
        for b in range(arr.shape[0]):
            ds.GetRasterBand(b + 1).WriteArray(arr[b])
            if declared:
                ds.GetRasterBand(b + 1).SetNoDataValue(0)
        ds = None
    return paths


def test_undeclared_zero_gaps_are_left_out_of_the_offset(cached, tmp_path):
    """Landsat 7 SLC-off gaps (38-40 % zeros) on a registered real Landsat 8 pair: with nodata 0 declared no offset
    was warned, without it 'The PAN and the MS look 0.6 PAN pixels apart ... Co-register' (QA). The fill the engine
    warns of is left out of the measurement as declared nodata is: both measure the same offset."""
    offsets = {}
    for declared in (True, False):
        paths = _gapped_pair(cached, tmp_path / str(declared), declared)
        res = pipeline.pansharpen(paths["pan"], paths["ms"], str(tmp_path / f"{declared}.tif"), "landsat8",
                                  "mtf_glp_hpm")
        assert not [w for w in res.warnings if "PAN pixels apart" in w], res.warnings
        assert declared or [w for w in res.warnings if "sampled pixels are 0" in w]   # the fill itself is warned of
        offsets[declared] = _offset(paths["pan"], paths["ms"])
    assert np.hypot(*np.subtract(offsets[True], offsets[False])) < 0.15, offsets


def _s2_pair(cached, folder) -> tuple[str, str]:
    """QA's aligned Sentinel-2 pair: a PAN = 0.1 B + 0.3 G + 0.35 R + 0.25 NIR of the real 10 m bands (1024 x 1024 from
    pixel (450, 450)) and an MS (Blue, Green, Red, NIR) of those bands Wald-degraded by 4 (MTF 0.3), both UInt16:
    registered by construction."""
    from ksdiff_qgis.engine.filters import wald_degrade

    src = gdal.Open(str(cached("sentinel2/s2_10m.tif")))
    bands = src.ReadAsArray(450, 450, 1024, 1024).astype(np.float32)
    g = src.GetGeoTransform()
    gt = (g[0] + 450 * g[1], g[1], 0, g[3] + 450 * g[5], 0, g[5])
    pan = np.tensordot(np.array([0.1, 0.3, 0.35, 0.25], dtype=np.float32), bands, axes=1)[None]
    paths = []
    for name, arr, cell in (("pan", pan, 1), ("ms", wald_degrade(bands, [0.3] * 4, 4), 4)):
        path = str(folder / f"s2_{name}.tif")
        ds = gdal.GetDriverByName("GTiff").Create(path, arr.shape[2], arr.shape[1], arr.shape[0], gdal.GDT_UInt16)
        ds.SetGeoTransform((gt[0], gt[1] * cell, 0, gt[3], 0, gt[5] * cell))
        ds.SetProjection(src.GetProjection())
        for i, band in enumerate(arr):
            ds.GetRasterBand(i + 1).WriteArray(np.clip(np.round(band), 1, 65535).astype(np.uint16))
            ds.GetRasterBand(i + 1).SetDescription("PAN" if name == "pan" else ("Blue", "Green", "Red", "NIR")[i])
        ds = None
        paths.append(path)
    return paths[0], paths[1]


S2_BANDS = {"bgrn": [1, 2, 3, 4], "rgb": [3, 2, 1], "nir": [4], "red": [3]}


def _bands(ms: str, which: str, folder) -> str:
    """A VRT of the MS ``which`` of its bands (``S2_BANDS``)."""
    path = str(folder / f"ms_{which}.vrt")
    gdal.Translate(path, ms, format="VRT", bandList=S2_BANDS[which])
    return path


@pytest.mark.parametrize("which", ["rgb", "nir", "red"])
def test_an_aligned_ms_without_the_pans_near_infrared_is_neither_warned_nor_moved(cached, tmp_path, which):
    """QA: on registered data every MS without the NIR band the PAN sees (RGB, one band; NIR alone) was warned 'look
    0.6 (NIR: 0.8) PAN pixels apart ... tick COREGISTER', and following it fused worse (MTF-GLP-HPM truth ERGAS over
    the output's pixels, RGB 1.17 -> 1.22, NIR 2.27 -> 2.60). What the MS's bands leave out of the PAN lies
    differently along edges and moves the measurement by about 0.15 MS pixels; its error on the pair is measured too:
    the offset, within twice it, is said in an info line without advice, and COREGISTER leaves the MS where it is,
    with a warning."""
    pan, ms = _s2_pair(cached, tmp_path)
    sub = _bands(ms, which, tmp_path)
    log = RecordingFeedback()
    plain = pipeline.pansharpen(pan, sub, str(tmp_path / "plain.tif"), method="mtf_glp_hpm", feedback=log)
    assert not [w for w in plain.warnings if "PAN pixels apart" in w], plain.warnings
    said = [line for line in log.lines if "too much to tell a misregistration by" in line]
    assert len(said) == 1 and not said[0].startswith("WARNING") and "tick" not in said[0], log.lines
    moved = pipeline.pansharpen(pan, sub, str(tmp_path / "coreg.tif"), method="mtf_glp_hpm", coregister=True)
    notes = [w for w in moved.warnings if w.startswith(coregistration.COREG)]
    assert len(notes) == 1 and "so it was not moved" in notes[0] and moved.coregistration == notes[0], moved.warnings
    assert np.array_equal(_read(moved.output_path), _read(plain.output_path))


@pytest.mark.parametrize("which", ["bgrn", "rgb", "red"])
def test_a_known_shift_is_measured_whatever_the_ms_bands(cached, tmp_path, which):
    """The same pair with the MS moved 1 PAN pixel east and 0.5 south: the measured offset changes by the shift within
    0.15 PAN pixels with all four bands, the RGB ones or one band (the measurement itself is unchanged by the error
    it now reports); all four bands, which explain the PAN, measure the aligned pair within 0.2 PAN pixels of 0 and
    with an error under 0.25."""
    pan, ms = _s2_pair(cached, tmp_path)
    sub = _bands(ms, which, tmp_path)
    base = _offset(pan, sub)
    if which == "bgrn":
        assert np.hypot(*base) < 0.2, base
        pan_ds, pan_info = open_raster(pan, "PAN")
        ms_ds, ms_info = open_raster(sub, "MS")
        plan = plan_grid(pan_info, ms_info, ms_ds)
        stats = pipeline.estimate_scene_stats(pan_ds, ms_ds, pan_info, ms_info, plan, gains=(0.3,) * 4)
        assert stats.pan_offset_error * plan.ratio < 0.25
    for rows, cols in ((0.0, 1.0), (0.5, 0.0)):
        moved = _offset(pan, _moved(sub, str(tmp_path / "moved.vrt"), rows / 4, cols / 4))
        # the MS's content moved east (south): the PAN's lies that much further west (north) of it
        assert np.hypot(moved[0] - base[0] + rows, moved[1] - base[1] + cols) < 0.15, (base, moved)


def test_offset_notes_weigh_the_measurement_s_error():
    """An offset its error can explain is said in an info line, not warned of; an offset longer than twice its error
    is warned of with the advice to co-register; one beyond its error by a warning's length, but not twice it, is
    warned of without that advice (COREGISTER would not move by it)."""
    ratio = 4
    aligned_rgb = ((-0.10, 0.11), 0.17)        # QA's RGB-only case: 0.6 PAN pixels, error 0.68
    assert coregistration.offset_note(*aligned_rgb[:1], ratio, "scene", aligned_rgb[1]) is None
    info = coregistration.offset_info(aligned_rgb[0], ratio, "scene", aligned_rgb[1])
    assert "0.6 PAN pixels apart" in info and "about 0.7 PAN pixels" in info and "tick" not in info
    assert not coregistration.trusted(*aligned_rgb, ratio)
    far = ((-0.35, -0.05), 0.12)               # 1.4 PAN pixels, error 0.48: trusted
    assert "tick" in coregistration.offset_note(far[0], ratio, "scene", far[1])
    assert coregistration.trusted(*far, ratio) and coregistration.offset_info(far[0], ratio, "scene", far[1]) is None
    vague = ((0.0, 0.5), 0.3)                  # 2 PAN pixels, error 1.2
    note = coregistration.offset_note(vague[0], ratio, "scene", vague[1])
    assert "probably misregistered" in note and "tick" not in note and not coregistration.trusted(*vague, ratio)
    small = ((0.0, 0.02), 0.02)                # a precise measurement: trusted whatever its length
    assert coregistration.trusted(*small, ratio)
