"""Nothing lost, nothing wrong: failed writes, late cancels, odd input sources, nodata, formats, sidecars.

Every test goes through ``processing.run("ksdiff:pansharpen", ...)`` in the real QGIS with the real fixtures.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine.progress import FINAL_SHARE

ROOT = Path(__file__).resolve().parent.parent
OLD = b"previous result: must survive a failed run"
# what the last tile of a plain GeoTIFF run reports: the final write is the run's last share (engine/progress.py)
LAST_TILE = 100 * (1 - FINAL_SHARE)


def _run(params, feedback=None):
    import processing

    return processing.run("ksdiff:pansharpen", params, feedback=feedback)


def _fails(params, match, feedback=None):
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match=match):
        _run(params, feedback)


def _partials(folder) -> list[str]:
    return [f for f in os.listdir(folder) if "partial" in f]


def _partial_bytes(folder) -> int:
    """Bytes the partial files in ``folder`` hold (0 when there are none, or they went meanwhile)."""
    total = 0
    for f in _partials(folder):
        try:
            total += os.path.getsize(os.path.join(folder, f))
        except OSError:
            pass
    return total


def _recording_feedback():
    """A QgsProcessingFeedback that keeps every info and warning line."""
    from qgis.core import QgsProcessingFeedback

    class Fb(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.infos, self.warnings = [], []

        def pushInfo(self, msg):  # noqa: N802
            self.infos.append(msg)
            super().pushInfo(msg)

        def pushWarning(self, msg):  # noqa: N802
            self.warnings.append(msg)
            super().pushWarning(msg)

    return Fb()


# 1. write errors ---------------------------------------------------------------------------------------

@pytest.fixture()
def small_disk(tmp_path):
    """A 1 MiB tmpfs; skipped only where mounting is not allowed (a container without CAP_SYS_ADMIN)."""
    mnt = tmp_path / "small_disk"
    mnt.mkdir()
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True,
                           text=True, timeout=30)
    except OSError as e:          # no mount binary
        pytest.skip(f"cannot mount a tmpfs here: {e}")
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


FULL = re.compile(r"no space left on device: the output needed (?:more than the|about) ([\d.,]+ [KM]B)(?: written "
                  r"when the disk filled up)?; ([\d.,]+ [KM]B) were free in (.+?) when the run started")


def _full_disk_message(params: dict, folder: Path, free: int) -> tuple[str, int]:
    """Run with ``free`` bytes left in ``folder`` (a small tmpfs); the error, and the bytes free when it started."""
    from qgis.core import QgsProcessingException

    (folder / "filler").write_bytes(b"\0" * (shutil.disk_usage(folder).free - free))
    left = shutil.disk_usage(folder).free
    with pytest.raises(QgsProcessingException) as e:
        _run(params)
    return str(e.value), left


def _bytes(size: str) -> float:
    """'448 KB' or '1.3 MB' (as the messages say it) in bytes."""
    number, unit = size.split()
    return float(number.replace(",", "")) * (1024 if unit == "KB" else 2**20)


@pytest.fixture
def warn_only(monkeypatch):
    """A run far over its free space is refused before any tile (``space.REFUSE_MARGIN``, test_output_space); these
    tests follow the warning and a disk that fills up all the same (another program writing meanwhile)."""
    from ksdiff_qgis.engine.raster_io import space

    monkeypatch.setattr(space, "REFUSE_MARGIN", float("inf"))


def test_full_disk_fails_cleanly_and_keeps_old_output(qgis_app, pair, small_disk, warn_only):
    """The message says what the output needed and what was free when the run started (QA: "(0 bytes free in
    DIR)", measured on the full disk; a COG's figure was measured after the cleanup)."""
    out = small_disk / "fused.tif"
    out.write_bytes(OLD)
    # leave ~48 KiB free: the fused 256x256x4 UInt16 scene needs several times that
    message, free = _full_disk_message({**pair, "OUTPUT": str(out)}, small_disk, 48 * 1024)
    found = FULL.search(message)
    assert found, message
    assert abs(_bytes(found.group(2)) - free) <= 512 and found.group(3) == str(small_disk), message
    assert out.read_bytes() == OLD
    assert not _partials(small_disk)


def test_full_disk_during_the_cog_pass_says_what_it_needed(qgis_app, pair, small_disk, warn_only):
    """A COG needs its intermediate copy and the COG at once: with room for the first only, the COG pass fails; the
    message counts both (QA: "1363968 bytes free", measured after the COG was removed)."""
    out = small_disk / "fused.tif"
    out.write_bytes(OLD)
    # the fused scene's intermediate copy takes ~310 KB and its COG ~300 KB: ~450 KB free hold only the first
    message, free = _full_disk_message({**pair, "COG": True, "OUTPUT": str(out)}, small_disk, 450 * 1024)
    assert "while writing the Cloud-Optimized GeoTIFF" in message, message
    found = FULL.search(message)
    assert found, message
    assert abs(_bytes(found.group(2)) - free) <= 512, message
    assert _bytes(found.group(1)) > 500 * 1024, message   # the intermediate copy and the COG, more than was free
    assert out.read_bytes() == OLD
    assert not _partials(small_disk)


def test_full_disk_during_the_cog_copy_says_so(tmp_path, small_disk):
    """The COG pass after the last tile: a full disk there was reported as a TIFF directory error."""
    from ksdiff_qgis.engine.raster_io.outputs import write_cog

    src = tmp_path / "staged.tif"
    rng = np.random.default_rng(0)   # incompressible: the copy needs about its 2 MB
    ds = gdal.GetDriverByName("GTiff").Create(str(src), 1024, 1024, 1, gdal.GDT_UInt16, ["TILED=YES"])
    ds.GetRasterBand(1).WriteArray(rng.integers(0, 65535, (1024, 1024), dtype=np.uint16))
    ds = None
    dst = small_disk / ".fused.tif.cog"
    with pytest.raises(OSError, match="(?i)no space left on device.*fused.tif|fused.tif.*no space left") as e:
        write_cog(str(src), str(dst), ["COMPRESS=NONE"], output=str(small_disk / "fused.tif"))
    assert "earlier output there is unchanged" in str(e.value)
    assert not dst.exists()


def test_full_cpl_tmpdir_during_the_cog_pass_is_said_there(qgis_app, pair, tmp_path, monkeypatch):
    """QA: with CPL_TMPDIR on a full tmpfs the COG pass failed in GDAL's temporary overview file, and the message
    blamed the output folder ("58,787.9 MB were free in <output folder>") with half the figure the free-space
    warning had said. Now CPL_TMPDIR on another disk is checked before the fusion, and its full disk is said there,
    with the same figure; the output folder's message carries the warning's figure too. (A full tmpfs needs root:
    the free-space query says CPL_TMPDIR is another, nearly full disk, and the COG copy meets ENOSPC.)"""
    from ksdiff_qgis.engine.raster_io import outputs, space

    temp = tmp_path / "gdal_tmp"
    temp.mkdir()
    monkeypatch.setenv("CPL_TMPDIR", str(temp))
    monkeypatch.setattr(space, "_same_disk", lambda a, b: False, raising=False)
    real_free = space.free_space
    monkeypatch.setattr(space, "free_space", lambda folder: 8 * 1024 if folder == str(temp) else real_free(folder))
    real_try = outputs.gdal_try

    def enospc_in_the_cog_copy(fn, *args, **kwargs):
        if getattr(fn, "__name__", "") == "CreateCopy":
            return None, ["_tiffSeekProc:No space left on device",
                          "TIFFWriteDirectoryTagData:IO error writing tag data"]
        return real_try(fn, *args, **kwargs)

    monkeypatch.setattr(outputs, "gdal_try", enospc_in_the_cog_copy)
    out = tmp_path / "out" / "fused.tif"
    out.parent.mkdir()
    out.write_bytes(OLD)
    from qgis.core import QgsProcessingException

    fb = _recording_feedback()
    monkeypatch.setattr(space, "REFUSE_MARGIN", float("inf"))   # warned of, not refused (test_output_space)
    with pytest.raises(QgsProcessingException) as e:
        _run({**pair, "COG": True, "OUTPUT": str(out)}, fb)
    message = str(e.value)
    warned = [w for w in fb.warnings if "CPL_TMPDIR" in w]
    assert len(warned) == 1 and "8 KB are free there" in warned[0], fb.warnings
    before = re.search(r"overviews may need about ([\d.,]+ [KM]B) in GDAL's temporary folder CPL_TMPDIR=(\S+) ",
                       warned[0])
    assert before and before.group(2) == str(temp), warned[0]
    assert f"no space left on device in GDAL's temporary folder CPL_TMPDIR={temp}" in message, message
    assert f"they needed about {before.group(1)}; 8 KB were free there when the run started" in message, message
    assert str(out.parent) not in message.replace(str(out), ""), message   # the output folder is not blamed
    assert out.read_bytes() == OLD and not _partials(out.parent)

    # CPL_TMPDIR beside the output, which had room when the run started (so nothing was measured): the output
    # folder's message, with what was written when the disk filled up (not a figure no warning had said)
    monkeypatch.setattr(space, "_same_disk", lambda a, b: True, raising=False)
    with pytest.raises(QgsProcessingException) as e:
        _run({**pair, "COG": True, "OUTPUT": str(out)})
    assert re.search(r"the output needed more than the [\d.]+ [KM]B written when the disk filled up; ", str(e.value))
    assert str(out.parent) in str(e.value)


LOW_SPACE_LINE = re.compile(r"The output may need about ([\d.,]+ [KMG]B) in (.+?) \(.*\) and ([\d.,]+ [KMG]B) are "
                            r"free: the run may fail when writing; free space or choose another output folder\.")


def _ordered_feedback(stop_at_low_space: bool):
    """The tests' recording feedback (every line in order), cancelling at the low-space warning when
    ``stop_at_low_space`` (a user who reads it and stops)."""
    from test_issue14_processing import Log

    return Log(cancel_at=LOW_SPACE_LINE if stop_at_low_space else None)


@pytest.mark.parametrize("cog", [False, True], ids=["geotiff", "cog"])
def test_low_disk_space_is_said_before_any_tile(qgis_app, pair, small_disk, cog, warn_only):
    """QA: a full disk was reported only when the write failed, after all the fusion (30+ min on a whole WV2 scene).
    Now a warning says it before the self-check and the tiles: a user who cancels there loses nothing."""
    out = small_disk / "fused.tif"
    out.write_bytes(OLD)
    # the fused 256x256x4 UInt16 scene takes ~300 KB with DEFLATE, a COG ~2.5x that at its peak: 48 KB free
    (small_disk / "filler").write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 48 * 1024))
    fb = _ordered_feedback(stop_at_low_space=True)
    _fails({**pair, "METHOD": "auto", "COG": cog, "OUTPUT": str(out)}, "(?i)cancel", fb)
    found = [m for m in map(LOW_SPACE_LINE.search, fb.lines) if m]
    assert len(found) == 1, fb.lines
    assert found[0].group(2) == str(small_disk)
    assert _bytes(found[0].group(1)) > (600 if cog else 250) * 1024, fb.lines[-1]
    assert abs(_bytes(found[0].group(3)) - 48 * 1024) <= 1024, fb.lines[-1]
    # cancelled at the warning: no self-check ran, no tile was fused, nothing was written
    assert not any(ln.startswith(("Self-check", "Fusing with")) for ln in fb.lines), fb.lines
    assert out.read_bytes() == OLD
    assert not _partials(small_disk)


def test_no_low_space_warning_with_room(qgis_app, pair, tmp_path):
    fb = _ordered_feedback(stop_at_low_space=False)
    _run({**pair, "METHOD": "auto", "COG": True, "OUTPUT": str(tmp_path / "fused.tif")}, fb)
    assert any("Fusing with" in ln for ln in fb.lines), fb.lines
    assert not any(LOW_SPACE_LINE.search(ln) for ln in fb.lines), fb.lines


FSIZE_SCRIPT = textwrap.dedent("""
    import json, os, resource, signal, sys
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    sys.path.insert(0, {root!r})
    sys.path.insert(0, "/usr/share/qgis/python/plugins")
    from qgis.testing import start_app
    app = start_app()
    from processing.core.Processing import Processing
    Processing.initialize()
    import ksdiff_qgis
    plugin = ksdiff_qgis.classFactory(None)   # keep it: its provider lives as long as the plugin
    plugin.initProcessing()
    import processing
    from qgis.core import QgsProcessingException
    # a write beyond the limit fails with EFBIG instead of killing the process
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (48 * 1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    try:
        processing.run("ksdiff:pansharpen", json.loads(sys.argv[1]))
        print(json.dumps({{"ok": True}}))
    except QgsProcessingException as e:
        print(json.dumps({{"ok": False, "error": str(e)}}))
""")


def test_file_size_limit_fails_cleanly_and_keeps_old_output(pair, tmp_path):
    """The same failure path without mount: a subprocess whose files may not grow beyond 48 KiB."""
    out = tmp_path / "fused.tif"
    out.write_bytes(OLD)
    params = json.dumps({**pair, "OUTPUT": str(out)})
    r = subprocess.run([sys.executable, "-c", FSIZE_SCRIPT.format(root=str(ROOT)), params],
                       capture_output=True, text=True, timeout=300)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert lines, r.stdout + r.stderr
    res = json.loads(lines[-1])
    assert not res["ok"]
    assert "file size limit" in res["error"].lower(), res["error"]
    assert out.read_bytes() == OLD
    assert not _partials(tmp_path)


def test_leftover_partials_of_killed_runs_are_removed(qgis_app, pair, tmp_path):
    out = tmp_path / "fused.tif"
    stale = [tmp_path / ".fused.tif.0123abcd.partial", tmp_path / ".fused.tif.0123abcd.partial.aux.xml"]
    other = tmp_path / ".other.tif.0123abcd.partial"   # belongs to another output: left alone
    for p in (*stale, other):
        p.write_bytes(b"half a file")
    fb = _recording_feedback()
    _run({**pair, "OUTPUT": str(out)}, fb)
    assert gdal.Open(str(out)).RasterCount == 4
    assert not any(p.exists() for p in stale)
    assert other.exists()
    assert any("0123abcd.partial" in m and "removed" in m.lower() for m in fb.infos), fb.infos


@pytest.mark.skipif(sys.platform == "win32", reason="Windows does not delete an open file anyway")
def test_output_a_live_run_writes_is_refused_and_its_file_kept(qgis_app, pair, tmp_path):
    """Another run writing to the same output right now holds a lock on its temporary file: a second run onto
    that output stops before writing (QA: two desktop runs onto one path both reported success and the later
    rename silently replaced the other's result), and leaves the live run's file alone."""
    import fcntl

    out = tmp_path / "fused.tif"
    out.write_bytes(OLD)
    live = tmp_path / ".fused.tif.0badcafe.partial"
    live.write_bytes(b"being written")
    with open(live, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_SH)    # what GeoTiffWriter does while it writes
        _fails({**pair, "OUTPUT": str(out)}, "another run is writing the output")
    assert live.exists() and out.read_bytes() == OLD
    assert _partials(tmp_path) == [live.name]


def test_output_another_run_wrote_meanwhile_is_kept(qgis_app, pair, tmp_path):
    """A second run onto the same output that finished while this one was still fusing (QA: both reported success and
    the later rename silently replaced the other's result): this run stops before its rename, the other's file stays."""
    from qgis.core import QgsProcessingFeedback

    out = tmp_path / "fused.tif"
    fb = QgsProcessingFeedback()

    def other_run_finishes(progress):
        if progress > 0 and not out.exists():
            out.write_bytes(OLD)   # the other run's result lands after this one started

    fb.progressChanged.connect(other_run_finishes)
    _fails({**pair, "OUTPUT": str(out)}, "another run wrote the output", fb)
    assert out.read_bytes() == OLD
    assert not _partials(tmp_path)


@pytest.mark.parametrize("cog", [False, True])
def test_output_deleted_meanwhile_gets_this_runs_result(qgis_app, pair, tmp_path, cog):
    """The old output deleted by the user while a rerun onto it was fusing (QA: the run said "another run wrote the
    output ... that result is kept" and left the folder empty): this run's result is written there, with a line."""
    out = tmp_path / "fused.tif"
    out.write_bytes(OLD)   # an earlier result
    fb = _recording_feedback()

    deleted = []

    def user_deletes_it(progress):
        if progress > 0 and not deleted:   # once: the new result lands at the end
            out.unlink()
            deleted.append(progress)

    fb.progressChanged.connect(user_deletes_it)
    _run({**pair, "OUTPUT": str(out), "COG": cog}, fb)
    ds = gdal.Open(str(out))
    assert ds is not None and ds.RasterCount > 0
    assert any("had been removed during the run" in line for line in fb.infos)
    assert not _partials(tmp_path)


@pytest.mark.parametrize("role", ["PAN", "MS"])
def test_input_rewritten_in_place_mid_run_is_refused(qgis_app, pair, tmp_path, role):
    """An input overwritten in place while the run read it (QA: `cp new.tif ms.tif` mid-run gave an output of mixed
    old and new tiles, reported OK): the run refuses before its commit, naming the file, and the old output stays."""
    out = tmp_path / "fused.tif"
    out.write_bytes(OLD)
    fb = _recording_feedback()
    done = []

    def rewrite_in_place(progress):   # same inode, new modification time: what cp onto the file does
        if progress > 0 and not done:
            with open(pair[role], "r+b") as f:
                data = f.read()
                f.seek(0)
                f.write(data)
            done.append(progress)

    fb.progressChanged.connect(rewrite_in_place)
    _fails({**pair, "OUTPUT": str(out)}, f"the {role} .* changed on disk while this run read it", fb)
    assert done and out.read_bytes() == OLD
    assert not _partials(tmp_path)


@pytest.mark.parametrize("cog", [False, True])
def test_output_open_elsewhere_keeps_the_finished_result_beside_it(qgis_app, pair, tmp_path, monkeypatch, cog):
    """Windows: QGIS showing the old output as a layer holds it open, so the final rename raised PermissionError
    and the finished result was deleted with the partial, with a raw message. The result is now kept beside it
    (fused_1.tif, with a COG's .aux.xml) and the message says where, why and how to finish."""
    from ksdiff_qgis.engine.raster_io import writer

    ref = tmp_path / "ref.tif"
    _run({**pair, "COG": cog, "OUTPUT": str(ref)})
    out = tmp_path / "fused.tif"
    out.write_bytes(OLD)
    (tmp_path / "fused_1.tif.aux.xml").write_text("<PAMDataset/>")   # a stale sidecar: that name is not free
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if os.fspath(dst) == str(out):
            raise PermissionError(13, "The process cannot access the file because it is being used by another "
                                      "process", os.fspath(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(writer.os, "replace", replace)
    kept = tmp_path / "fused_2.tif"
    _fails({**pair, "COG": cog, "OUTPUT": str(out)},
           rf"(?s)could not replace .*fused\.tif.*open in QGIS.*kept as .*{kept.name}.*remove that layer.*rename")
    assert out.read_bytes() == OLD
    assert not _partials(tmp_path)
    a, b = gdal.Open(str(kept)), gdal.Open(str(ref))
    assert (a.RasterXSize, a.RasterYSize, a.RasterCount) == (b.RasterXSize, b.RasterYSize, b.RasterCount)
    assert np.array_equal(a.ReadAsArray(), b.ReadAsArray())
    assert a.GetMetadata("IMAGERY") == b.GetMetadata("IMAGERY")
    if cog:
        assert a.GetMetadata("IMAGE_STRUCTURE").get("LAYOUT") == "COG"


def _mosaic(src: Path, dst: Path, copies: int) -> str:
    """A VRT of ``copies`` x ``copies`` copies of the raster ``src`` side by side: a large scene from a small
    fixture, written nowhere."""
    ds = gdal.Open(str(src))
    w, h = ds.RasterXSize, ds.RasterYSize
    dt = gdal.GetDataTypeName(ds.GetRasterBand(1).DataType)
    srs = ds.GetProjection().replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    xml = [f'<VRTDataset rasterXSize="{w * copies}" rasterYSize="{h * copies}"><SRS>{srs}</SRS>'
           f'<GeoTransform>{",".join(map(str, ds.GetGeoTransform()))}</GeoTransform>']
    for b in range(1, ds.RasterCount + 1):
        xml.append(f'<VRTRasterBand dataType="{dt}" band="{b}">')
        xml += [f'<SimpleSource><SourceFilename relativeToVRT="0">{src}</SourceFilename><SourceBand>{b}</SourceBand>'
                f'<SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
                f'<DstRect xOff="{x * w}" yOff="{y * h}" xSize="{w}" ySize="{h}"/></SimpleSource>'
                for y in range(copies) for x in range(copies)]
        xml.append("</VRTRasterBand>")
    dst.write_text("\n".join(xml + ["</VRTDataset>"]))
    return str(dst)


SIGTERM_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from ksdiff_qgis.engine.pipeline import pansharpen
    pansharpen(sys.argv[1], sys.argv[2], sys.argv[3], sensor="wv2", method="mtf_glp_hpm", tile_size=128)
    print("finished")
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM")
def test_sigterm_mid_run_removes_the_partial_and_still_ends_by_sigterm(data_dir, tmp_path):
    """``kill -TERM`` (what timeout, systemd and batch schedulers send) used to end the run at once leaving the hidden
    output-sized ``.fused.tif.<hex>.partial`` until a later run onto that output: the run now deletes it and still
    ends by SIGTERM (same exit status); the earlier output stays as it was."""
    import signal
    import time

    pan = _mosaic(data_dir / "wv2_pan.tif", tmp_path / "pan.vrt", 16)   # 4096 x 4096: hundreds of tiles
    ms = _mosaic(data_dir / "wv2_ms.tif", tmp_path / "ms.vrt", 16)
    out = tmp_path / "fused.tif"
    out.write_bytes(OLD)
    proc = subprocess.Popen([sys.executable, "-c", SIGTERM_SCRIPT.format(root=str(ROOT)), pan, ms, str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        # mid-run: the partial holds tiles (1 MB of the ~76 MB output)
        while _partial_bytes(tmp_path) < 2**20 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _partial_bytes(tmp_path) >= 2**20, f"no partial file grew (exit status {proc.poll()})"
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "finished" not in stdout, "the run finished before the SIGTERM: make the scene larger"
    assert proc.returncode == -signal.SIGTERM, (proc.returncode, stderr[-2000:])
    assert not _partials(tmp_path)
    assert out.read_bytes() == OLD


def test_sigterm_cleanup_is_only_set_up_where_it_may_be(tmp_path):
    """The SIGTERM cleanup acts only on the main thread and only where SIGTERM has its default action (a handler
    someone else installed is kept), and the previous handler is back when the writer is done."""
    import signal
    import threading

    from ksdiff_qgis.engine.raster_io import partials

    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    with partials.removed_on_sigterm(list):
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

    def theirs(*_):
        pass

    previous = signal.signal(signal.SIGTERM, theirs)
    try:
        with partials.removed_on_sigterm(list):
            assert signal.getsignal(signal.SIGTERM) is theirs
        assert signal.getsignal(signal.SIGTERM) is theirs
    finally:
        signal.signal(signal.SIGTERM, previous)

    seen = []

    def in_a_thread():
        with partials.removed_on_sigterm(list):
            seen.append(signal.getsignal(signal.SIGTERM))

    t = threading.Thread(target=in_a_thread)
    t.start()
    t.join()
    assert seen == [signal.SIG_DFL]


# 2. cancel before commit -------------------------------------------------------------------------------

@pytest.mark.parametrize("tile", [512, 64], ids=["single-tile", "last-tile"])
def test_cancel_at_the_last_tile_keeps_old_output(qgis_app, pair, tmp_path, tile):
    from qgis.core import QgsProcessingFeedback

    out = tmp_path / "fused.tif"
    out.write_bytes(OLD)
    fb = QgsProcessingFeedback()
    fb.progressChanged.connect(lambda p: fb.cancel() if p >= LAST_TILE else None)
    _fails({**pair, "TILE_SIZE": tile, "OVERLAP": 8, "OUTPUT": str(out)}, "(?i)cancel", fb)
    assert out.read_bytes() == OLD
    assert not _partials(tmp_path)


# 3. inputs that are not plain files ----------------------------------------------------------------------

def _reference(pair, tmp_path, pan=None, ms=None) -> np.ndarray:
    ref = str(tmp_path / "reference.tif")
    _run({**pair, "PAN": pan or pair["PAN"], "MS": ms or pair["MS"], "OUTPUT": ref})
    return gdal.Open(ref).ReadAsArray()


def test_vsizip_inputs(qgis_app, pair, tmp_path):
    from qgis.core import QgsRasterLayer

    z = tmp_path / "scene.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(pair["PAN"], "scene/pan.tif")
        zf.write(pair["MS"], "scene/ms.tif")
    pan = QgsRasterLayer(f"/vsizip/{z}/scene/pan.tif", "pan", "gdal")
    ms = QgsRasterLayer(f"/vsizip/{z}/scene/ms.tif", "ms", "gdal")
    assert pan.isValid() and ms.isValid()
    out = str(tmp_path / "fused.tif")
    _run({**pair, "PAN": pan, "MS": ms, "OUTPUT": out})
    np.testing.assert_array_equal(gdal.Open(out).ReadAsArray(), _reference(pair, tmp_path))


def test_geopackage_raster_table_input(qgis_app, pair, data_dir, tmp_path):
    from qgis.core import QgsRasterLayer

    gpkg = str(tmp_path / "scene.gpkg")
    # a decoy table first: a reader that drops the table name gets the wrong raster (or none)
    gdal.Translate(gpkg, str(data_dir / "wv2_test_pan.tif"), format="GPKG", creationOptions=["RASTER_TABLE=decoy"])
    gdal.Translate(gpkg, pair["PAN"], format="GPKG", creationOptions=["RASTER_TABLE=pan", "APPEND_SUBDATASET=YES"])
    pan = QgsRasterLayer(f"GPKG:{gpkg}:pan", "pan", "gdal")
    assert pan.isValid()
    out = str(tmp_path / "fused.tif")
    _run({**pair, "PAN": pan, "OUTPUT": out})
    # the reference reads the same table as a GeoTIFF (GPKG may store UInt16 with a scale/offset)
    pan_tif = str(tmp_path / "pan_from_gpkg.tif")
    gdal.Translate(pan_tif, f"GPKG:{gpkg}:pan")
    np.testing.assert_array_equal(gdal.Open(out).ReadAsArray(), _reference(pair, tmp_path, pan=pan_tif))


# 4. nodata ---------------------------------------------------------------------------------------------

def _nodata(path: str) -> float | None:
    ds = gdal.Open(path)   # keep the dataset alive while its band is used
    return ds.GetRasterBand(1).GetNoDataValue()


def _holes_are_nodata(out: str, holes: np.ndarray, dtype) -> float:
    """Assert holes are declared nodata of a value the output type holds; return that value."""
    ds = gdal.Open(out)
    nd = ds.GetRasterBand(1).GetNoDataValue()
    assert nd is not None, "holes in the input but no nodata declared in the output"
    assert all(ds.GetRasterBand(i).GetNoDataValue() == nd for i in range(1, ds.RasterCount + 1))
    info = np.iinfo(dtype)
    assert float(nd).is_integer() and info.min <= nd <= info.max, nd
    arr = ds.ReadAsArray()
    assert arr.dtype == dtype
    assert (arr[:, holes] == nd).all()
    assert not (arr[:, ~holes] == nd).any()    # a valid pixel never reads as nodata
    return nd


def test_nan_pan_nodata_with_ms_without_nodata(qgis_app, data_dir, tmp_path):
    pan = str(tmp_path / "pan_nan.tif")
    src = gdal.Open(str(data_dir / "wv2_nodata_pan.tif"))
    a = src.ReadAsArray().astype(np.float32)
    holes = a == 0
    a[holes] = np.nan
    ds = gdal.GetDriverByName("GTiff").Create(pan, src.RasterXSize, src.RasterYSize, 1, gdal.GDT_Float32)
    ds.SetGeoTransform(src.GetGeoTransform())
    ds.SetProjection(src.GetProjection())
    ds.GetRasterBand(1).WriteArray(a)
    ds.GetRasterBand(1).SetNoDataValue(float("nan"))
    ds = None
    ms = str(tmp_path / "ms_no_nodata.tif")
    gdal.Translate(ms, str(data_dir / "wv2_nodata_ms.tif"), noData="none")
    assert _nodata(ms) is None
    out = str(tmp_path / "fused.tif")
    fb = _recording_feedback()
    _run({"PAN": pan, "MS": ms, "SENSOR": "wv2", "METHOD": "gsa", "OUTPUT": out}, fb)
    assert 0.2 < holes.mean() < 0.8
    assert _holes_are_nodata(out, holes, np.uint16) == 0
    assert any("nodata" in m.lower() for m in fb.infos), fb.infos


@pytest.mark.parametrize("ms_nodata", [-1.0, 70000.0])
def test_ms_nodata_outside_the_type_range(qgis_app, data_dir, tmp_path, ms_nodata):
    ms = str(tmp_path / "ms_bad_nodata.tif")
    gdal.Translate(ms, str(data_dir / "wv2_nodata_ms.tif"))
    ds = gdal.Open(ms, gdal.GA_Update)   # gdal_translate would clamp it into the UInt16 range
    for i in range(1, ds.RasterCount + 1):
        ds.GetRasterBand(i).SetNoDataValue(ms_nodata)
    ds = None
    assert _nodata(ms) == ms_nodata
    pan = str(data_dir / "wv2_nodata_pan.tif")
    out = str(tmp_path / "fused.tif")
    fb = _recording_feedback()
    _run({"PAN": pan, "MS": ms, "SENSOR": "wv2", "METHOD": "gsa", "OUTPUT": out}, fb)
    holes = gdal.Open(pan).ReadAsArray() == 0
    assert _holes_are_nodata(out, holes, np.uint16) == 0   # PAN's nodata, as the MS one does not fit
    assert any("nodata" in m.lower() and "pan" in m.lower() for m in fb.infos), fb.infos


# 5. output format --------------------------------------------------------------------------------------

@pytest.mark.parametrize("ext", ["img", "png"])
def test_non_geotiff_output_is_refused(qgis_app, pair, tmp_path, ext):
    from qgis.core import QgsApplication, QgsProcessingContext

    out = tmp_path / f"fused.{ext}"
    alg = QgsApplication.processingRegistry().algorithmById("ksdiff:pansharpen")
    # the dialog asks the provider; processing.run and qgis_process reach the engine's own check
    ok, _ = alg.provider().isSupportedOutputValue(str(out), alg.parameterDefinition("OUTPUT"), QgsProcessingContext())
    assert not ok
    _fails({**pair, "OUTPUT": str(out)}, r"(?i)\.tif")
    assert not out.exists()
    assert not _partials(tmp_path)


def test_temporary_output_is_geotiff(qgis_app, pair):
    res = _run({**pair, "OUTPUT": "TEMPORARY_OUTPUT"})
    assert res["OUTPUT"].endswith(".tif")
    assert gdal.Open(res["OUTPUT"]).GetDriver().ShortName == "GTiff"


# 6. stale sidecars -------------------------------------------------------------------------------------

def test_replaced_output_loses_stale_sidecars(qgis_app, pair, tmp_path):
    from qgis.core import QgsProcessingFeedback

    out = str(tmp_path / "fused.tif")
    _run({**pair, "METHOD": "exp", "OUTPUT": out})
    ds = gdal.Open(out)             # read-only: statistics go to .aux.xml, overviews to .ovr
    ds.GetRasterBand(1).ComputeStatistics(False)
    ds.BuildOverviews("AVERAGE", [2])
    ds = None
    Path(out + ".msk").write_bytes(b"stale mask")
    sidecars = [Path(out + s) for s in (".aux.xml", ".ovr", ".msk")]
    assert all(p.exists() for p in sidecars)
    fb = QgsProcessingFeedback()
    fb.progressChanged.connect(lambda p: fb.cancel() if p >= LAST_TILE else None)
    _fails({**pair, "OUTPUT": out}, "(?i)cancel", fb)
    assert all(p.exists() for p in sidecars)            # a failed run keeps the old output whole
    _run({**pair, "OUTPUT": out})
    assert not any(p.exists() for p in sidecars)
    ds = gdal.Open(out)
    assert ds.GetRasterBand(1).GetOverviewCount() == 0


# 6b. non-UTF-8 locale ----------------------------------------------------------------------------------

def _non_utf8_locale() -> str | None:
    """An installed locale whose file names Python encodes in ISO-8859-1 (``locale -a``), else None."""
    try:
        names = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=30).stdout.split()
    except OSError:
        return None
    for name in (n for n in names if "iso8859" in n.lower().replace("-", "")):
        probe = subprocess.run([sys.executable, "-c", "import sys; print(sys.getfilesystemencoding())"],
                               capture_output=True, text=True, env={**os.environ, "LC_ALL": name, "LANG": name})
        if probe.stdout.strip().lower().replace("-", "").replace("_", "") in ("iso88591", "latin1"):
            return name
    return None


LATIN1 = _non_utf8_locale()


@pytest.mark.skipif(sys.platform == "win32" or LATIN1 is None, reason="needs a POSIX ISO-8859-1 locale (locale -a)")
def test_output_in_a_folder_with_umlauts_under_a_latin1_locale(data_dir, tmp_path):
    """LC_ALL=de_DE.ISO-8859-1 and an output under "Übersicht é & <x>" (QA: GDAL created the .partial under the
    name's UTF-8 bytes, Python opened it in the locale's encoding: FileNotFoundError, the .partial files stayed and
    the batch created a second, Latin-1-named folder). The writer, its lock, the stale-partial sweep, a replaced
    output's sidecars, a COG and the batch all reach the files GDAL writes; nothing is left half-written."""
    folder = tmp_path / "Übersicht é & <x>"
    folder.mkdir()
    (folder / ".o.tif.0123abcd.partial").write_bytes(b"half a file of a killed run")
    (folder / "scenes.csv").write_text(f"pan,ms,sensor,method,output\n{data_dir / 'wv2_pan.tif'},"
                                       f"{data_dir / 'wv2_ms.tif'},wv2,gsa,neu/b.tif\n", encoding="utf-8")
    script = textwrap.dedent(f"""
        import json, os, sys
        from osgeo import gdal
        from ksdiff_qgis.engine.errors import InputError
        from ksdiff_qgis.engine.pipeline import pansharpen
        from ksdiff_qgis.engine.raster_io import partials
        assert sys.getfilesystemencoding().lower() != "utf-8"
        folder = {str(folder)!r}
        out, pan, ms = folder + "/o.tif", {str(data_dir / 'wv2_pan.tif')!r}, {str(data_dir / 'wv2_ms.tif')!r}
        pansharpen(pan, ms, out, "wv2", "brovey")
        ds = gdal.Open(out); ds.GetRasterBand(1).ComputeStatistics(False); ds = None   # a .aux.xml
        pansharpen(pan, ms, out, "wv2", "gsa", cog=True)
        live = folder + "/.o.tif.89abcdef.partial"
        open(live.encode("utf-8"), "wb").close()
        lock = partials.hold(live)   # another run writing onto o.tif right now
        try:
            pansharpen(pan, ms, out, "wv2", "brovey")
            refused = None
        except InputError as e:
            refused = str(e)
        lock.close(); os.remove(live.encode("utf-8"))
        print(json.dumps({{"refused": refused}}))
    """)
    env = {**os.environ, "LC_ALL": LATIN1, "LANG": LATIN1, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"}
    (tmp_path / "run.py").write_text(script, encoding="utf-8")   # a source file is UTF-8 text whatever the locale
    r = subprocess.run([sys.executable, str(tmp_path / "run.py")], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "another run is writing the output" in json.loads(r.stdout.splitlines()[-1])["refused"]
    ds = gdal.Open(str(folder / "o.tif"))
    assert ds.GetMetadata("IMAGE_STRUCTURE").get("LAYOUT") == "COG" and ds.RasterCount == 4
    assert not (folder / "o.tif.aux.xml").exists()      # the stale statistics of the replaced output
    for attempt in ("done", "skipped"):                  # the batch: its record beside the output, then a skip
        b = subprocess.run([sys.executable, "-m", "ksdiff_qgis.batch", str(folder / "scenes.csv"), "--workers", "1",
                            "--no-progress", "--report", str(tmp_path / f"{attempt}.jsonl")],
                           capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
        assert b.returncode == 0, b.stdout + b.stderr
        assert json.loads((tmp_path / f"{attempt}.jsonl").read_text().splitlines()[0])["status"] == attempt
    assert gdal.Open(str(folder / "neu" / "b.tif")).RasterCount == 4
    assert (folder / "neu" / "b.tif.ksdiff.json").exists()
    assert not _partials(folder) and not _partials(folder / "neu")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([folder.name, "run.py", "done.jsonl", "skipped.jsonl"])


@pytest.mark.skipif(sys.platform == "win32" or LATIN1 is None, reason="needs a POSIX ISO-8859-1 locale (locale -a)")
def test_batch_paths_outside_latin1_under_a_latin1_locale(data_dir, tmp_path):
    """LC_ALL=de_DE.ISO-8859-1 and a scene list whose folder, inputs and output hold characters Latin-1 lacks
    (北京, an en dash; QA: "column 'pan': cannot read ...: 'latin-1' codec can't encode characters", the list's
    paths went through Path.resolve()). The batch runs as under UTF-8 and writes where the list says."""
    inputs = tmp_path / "Données 北京 影像"
    lists = tmp_path / "Stapel März — 北京"
    inputs.mkdir()
    lists.mkdir()
    shutil.copy(data_dir / "wv2_pan.tif", inputs / "Panchromatisch ü.tif")
    shutil.copy(data_dir / "wv2_ms.tif", inputs / "Multispektral 北京.tif")
    (lists / "Szenen.csv").write_text("pan;ms;sensor;method;output\n../Données 北京 影像/Panchromatisch ü.tif;"
                                      "../Données 北京 影像/Multispektral 北京.tif;wv2;gsa;Aus/b – 北京.tif\n",
                                      encoding="utf-8")
    env = {**os.environ, "LC_ALL": LATIN1, "LANG": LATIN1, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"}
    b = subprocess.run([sys.executable, "-m", "ksdiff_qgis.batch", "Szenen.csv", "--workers", "1", "--no-progress"],
                       capture_output=True, text=True, env=env, cwd=lists, timeout=300)
    assert b.returncode == 0, b.stdout + b.stderr
    assert gdal.Open(str(lists / "Aus" / "b – 北京.tif")).RasterCount == 4
    assert (lists / "Aus" / "b – 北京.tif.ksdiff.json").exists()


# 7. output behind a VRT input ------------------------------------------------------------------------

def test_output_behind_a_vrt_input_is_refused(qgis_app, pair, tmp_path):
    vrt = str(tmp_path / "pan.vrt")
    gdal.BuildVRT(vrt, [pair["PAN"]]).FlushCache()
    before = Path(pair["PAN"]).read_bytes()
    _fails({**pair, "PAN": vrt, "OUTPUT": pair["PAN"]}, "(?i)PAN input")
    assert Path(pair["PAN"]).read_bytes() == before
    assert not _partials(tmp_path)


# 8. geometry -------------------------------------------------------------------------------------------

def test_rotated_ms_is_warped_at_the_true_ratio(qgis_app, pair, tmp_path):
    ms = str(tmp_path / "ms_rot45.tif")
    gdal.Translate(ms, pair["MS"])
    ds = gdal.Open(ms, gdal.GA_Update)
    x0, s, _, y0, _, _ = ds.GetGeoTransform()
    w, h = ds.RasterXSize, ds.RasterYSize
    c, sn = s * math.cos(math.pi / 4), s * math.sin(math.pi / 4)
    cx, cy = x0 + s * w / 2, y0 - s * h / 2      # rotate 45 degrees about the centre
    ds.SetGeoTransform([cx - c * w / 2 - sn * h / 2, c, sn, cy - sn * w / 2 + c * h / 2, sn, -c])
    ds = None
    fb = _recording_feedback()
    out = str(tmp_path / "fused.tif")
    _run({**pair, "MS": ms, "OUTPUT": out}, fb)
    assert any("rotat" in w.lower() and "4 PAN pixels per MS pixel" in w for w in fb.warnings), fb.warnings
    assert not any("ratio of the data is" in w for w in fb.warnings), fb.warnings
    assert gdal.Open(out).RasterCount == 4


def test_tiny_pan_says_too_small_and_the_minimum(qgis_app, pair, tmp_path):
    pan = str(tmp_path / "pan16.tif")
    gdal.Translate(pan, pair["PAN"], srcWin=[64, 64, 16, 16])
    out = tmp_path / "fused.tif"
    _fails({**pair, "PAN": pan, "OUTPUT": str(out)}, "(?i)too small.*minimum")
    assert not out.exists()


# engine-level details behind the tests above ------------------------------------------------------------

def _info(dtype: str, nodata, nbits=None):
    from ksdiff_qgis.engine.raster_io import RasterInfo

    gtype = gdal.GetDataTypeByName(dtype.replace("uint8", "Byte").title().replace("Uint", "UInt"))
    return RasterInfo(path="x", width=8, height=8, bands=1, gt=(0, 1, 0, 0, 0, -1), wkt="",
                      dtype=np.dtype(dtype), gdal_type=gtype, nodata=nodata, nbits=nbits, descriptions=[""])


@pytest.mark.parametrize("pan_nd, ms_dtype, ms_nd, nbits, expected", [
    (None, "uint16", None, None, None),            # no input declares nodata: none in the output
    (0.0, "uint16", 5.0, None, 5.0),               # MS nodata first
    (0.0, "uint16", -1.0, None, 0.0),              # MS nodata does not fit: PAN's
    (float("nan"), "uint16", None, None, 0.0),     # neither fits: 0 for unsigned
    (float("nan"), "uint16", 4000.0, 11, 0.0),     # NBITS=11: 4000 does not fit either
    (65535.0, "int16", None, None, -32768.0),      # signed: the type's minimum
    (0.0, "float32", 1e39, None, 0.0),             # beyond float32
    (-1e39, "float32", None, None, float("nan")),  # floats: NaN
    (None, "float32", None, None, float("nan")),   # no input declares one: a float output's NaN holes declared
])
def test_output_nodata_policy(pan_nd, ms_dtype, ms_nd, nbits, expected):
    from ksdiff_qgis.engine.raster_io import output_nodata

    value, why = output_nodata(_info("float32", pan_nd), _info(ms_dtype, ms_nd, nbits))
    if expected is None or not math.isnan(expected):
        assert value == expected, why
    else:
        assert math.isnan(value), why
    assert why


@pytest.mark.parametrize("exceptions", [False, True])
def test_close_reports_a_full_disk(small_disk, exceptions):
    """The last blocks and the TIFF directory are written at close: its errors must not be lost."""
    from ksdiff_qgis.engine.gdalutil import close_dataset

    was = gdal.GetUseExceptions()
    (gdal.UseExceptions if exceptions else gdal.DontUseExceptions)()
    try:
        ds = gdal.GetDriverByName("GTiff").Create(str(small_disk / "x.tif"), 1024, 1024, 2, gdal.GDT_UInt16,
                                                  ["TILED=YES"])
        noise = np.random.default_rng(0).integers(0, 4000, (1024, 1024), dtype=np.uint16)
        for i in (1, 2):
            ds.GetRasterBand(i).WriteArray(noise)   # stays in the block cache until the close
        errors = close_dataset(ds)
        del ds
    finally:
        (gdal.UseExceptions if was else gdal.DontUseExceptions)()
    assert any("no space left" in e.lower() for e in errors), errors


def test_cog_with_a_missing_or_unwritable_cpl_tmpdir_is_refused_before_the_fusion(qgis_app, pair, tmp_path,
                                                                                  monkeypatch):
    """QA: COG=true with CPL_TMPDIR naming a missing (or read-only) folder failed only after the whole fusion, in the
    COG pass. Now refused before the scene is read, saying what to do; an earlier output is unchanged."""
    import stat
    import tempfile

    from qgis.core import QgsProcessingException

    from ksdiff_qgis.engine import pipeline

    def no_stats(*args, **kwargs):   # the scene's statistics come before any tile: not reached
        raise AssertionError("the run went past the CPL_TMPDIR check")

    out = tmp_path / "out" / "fused.tif"
    out.parent.mkdir()
    out.write_bytes(OLD)
    missing = tmp_path / "no_such_tmp"
    monkeypatch.setenv("CPL_TMPDIR", str(missing))
    monkeypatch.setattr(pipeline, "estimate_scene_stats", no_stats)
    with pytest.raises(QgsProcessingException) as e:
        _run({**pair, "COG": True, "OUTPUT": str(out)})
    assert str(e.value) == (f"GDAL's temporary folder CPL_TMPDIR={missing} does not exist: create it, set CPL_TMPDIR "
                            "to a folder you can write to, or unset it (the Cloud-Optimized GeoTIFF's overviews are "
                            "then written beside the output); nothing was written."), str(e.value)
    assert out.read_bytes() == OLD and not _partials(out.parent) and not missing.exists()

    readonly = tmp_path / "ro_tmp"
    readonly.mkdir()
    monkeypatch.setenv("CPL_TMPDIR", str(readonly))
    if os.geteuid() == 0:   # root writes through permissions: its probe fails as on a read-only disk
        real_mkstemp = tempfile.mkstemp

        def refused(*args, **kwargs):
            if kwargs.get("dir") == str(readonly):
                raise PermissionError(13, "Permission denied")
            return real_mkstemp(*args, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", refused)
    else:
        readonly.chmod(stat.S_IRUSR | stat.S_IXUSR)
    _fails({**pair, "COG": True, "OUTPUT": str(out)},
           r"CPL_TMPDIR=.*ro_tmp cannot be written \(Permission denied\): set CPL_TMPDIR to a folder you can write to")
    readonly.chmod(stat.S_IRWXU)
    assert out.read_bytes() == OLD and not _partials(out.parent)


def test_a_style_the_full_disk_did_not_take_says_so(qgis_app, pair, tmp_path, small_disk):
    """QA: with no space left for the .qml the log said "the natural-colour style … could not be written (Created
    default style file as …)": QGIS's success text. Now it says why: no space, and the bytes free."""
    from ksdiff_qgis.algorithms.colour_style import write_default_style

    made = tmp_path / "fused.tif"
    _run({**pair, "OUTPUT": str(made)})
    out = small_disk / "fused.tif"
    shutil.copyfile(made, out)
    (small_disk / "filler").write_bytes(b"\0" * shutil.disk_usage(small_disk).free)
    free = shutil.disk_usage(small_disk).free
    said = write_default_style(str(out), (3, 2, 1))
    qml = small_disk / "fused.qml"
    assert said == (f"the natural-colour style {qml} could not be written (no space left on the disk: {free} bytes "
                    f"free in {small_disk}); the output itself is complete"), said
    assert "Created default style" not in said and not qml.exists()
