"""Cancel works at every stage, not only at the tiles (QA: on a 4200² PAN cancelled at the 3rd progress call, Weighted
Brovey went on for 1.5 s through ~15 progress updates, the PAN/MS offset and ratio warnings and 'Fusing with ...';
METHOD auto for 3.9 s through its self-check; a run cancelled before it started still scanned the scene for 2.0 s).

Each run goes through ``processing.run`` in the real QGIS on WorldView-2 pair 1 upsampled 3 x (a 1800² PAN: the
statistics read 16 windows), cancelled at one progress call of each stage before the tiles. After the cancel nothing
more is reported (no progress, no info, warning or debug line; only the cancel's own error) and no output exists.
Counts, not seconds: the lag itself is measured in the commit message.
"""
from __future__ import annotations

import traceback

import pytest
from osgeo import gdal

UPSAMPLE = 3
# what each progress call reports, by the engine function that reports it (the innermost one on the stack)
STAGES = {"estimate_scene_stats": "statistics", "_auto_method": "model", "run_check": "self-check",
          "tile_done": "tiles"}


@pytest.fixture(scope="module")
def scene(cached, tmp_path_factory):
    """WorldView-2 pair 1, PAN and MS upsampled 3 x (cubic): PAN and MS paths."""
    folder = tmp_path_factory.mktemp("cancel_scene")
    paths = []
    for role in ("pan", "ms"):
        src = gdal.Open(str(cached(f"wv2/pair1_{role}.tif")))
        dst = str(folder / f"{role}.tif")
        gdal.Translate(dst, src, width=src.RasterXSize * UPSAMPLE, height=src.RasterYSize * UPSAMPLE,
                       resampleAlg="cubic", creationOptions=["TILED=YES"])
        paths.append(dst)
    return paths


def _stage() -> str:
    """The stage a progress call comes from (``STAGES``), by the engine functions on the stack."""
    names = [frame.name for frame in reversed(traceback.extract_stack())]
    return next((STAGES[n] for n in names if n in STAGES), "other")


def _feedback(cancel_at: int | None, cancel_at_fusing: bool = False):
    """A QgsProcessingFeedback that cancels at its ``cancel_at``-th progress call (0-based; -1: before the run), or
    at the 'Fusing with' line, and keeps what is reported after the cancel (``after``) and the stage of each progress
    call (``stages``)."""
    from qgis.core import QgsProcessingFeedback

    class CancelAt(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.stages, self.after = [], []
            self.progressChanged.connect(self._progress)
            if cancel_at == -1:
                self.cancel()

        def _progress(self, value):
            self._said("progress", f"{value:.2f}")
            self.stages.append(_stage())
            if len(self.stages) - 1 == cancel_at:
                self.cancel()

        def _said(self, kind, message):
            if self.isCanceled():
                self.after.append(f"{kind}: {message}")

        def pushInfo(self, message):  # noqa: N802
            self._said("info", message)
            if cancel_at_fusing and message.startswith("Fusing with"):
                self.cancel()

        def pushWarning(self, message):  # noqa: N802
            self._said("warning", message)

        def pushDebugInfo(self, message):  # noqa: N802
            self._said("debug", message)

        def setProgressText(self, text):  # noqa: N802
            self._said("progress text", text)

        def reportError(self, error, fatalError=False):  # noqa: N802
            if "Cancelled" not in error:   # the cancel's own message
                self._said("error", error)

    return CancelAt()


def _run(scene, method: str, out: str, feedback):
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing.run("ksdiff:pansharpen", {"PAN": scene[0], "MS": scene[1], "SENSOR": "wv2", "METHOD": method,
                                             "TILE_SIZE": 256, "OUTPUT": out}, feedback=feedback)


def _calls_by_stage(scene, method: str, tmp_path) -> dict[str, list[int]]:
    """The progress calls of a run up to its first tile, by stage (a run cancelled at 'Fusing with')."""
    census = _feedback(None, cancel_at_fusing=True)
    _run(scene, method, str(tmp_path / "census.tif"), census)
    calls: dict[str, list[int]] = {}
    for k, stage in enumerate(census.stages):
        calls.setdefault(stage, []).append(k)
    return calls


@pytest.mark.parametrize("method, stages", [
    ("brovey", ("statistics",)),
    ("auto", ("statistics", "model", "self-check")),
])
def test_cancel_stops_every_stage_before_the_tiles_at_once(qgis_app, scene, tmp_path, method, stages):
    calls = _calls_by_stage(scene, method, tmp_path)
    assert set(stages) <= set(calls), calls
    # before the run; each stage's first, middle and last call; the first tile
    ks = {-1, calls.get("tiles", [max(max(c) for c in calls.values()) + 1])[0]}
    for stage in stages:
        ks |= {calls[stage][0], calls[stage][len(calls[stage]) // 2], calls[stage][-1]}
    reported, left = {}, {}   # by the progress call cancelled at: what came after it, the files left
    for k in sorted(ks):
        out = tmp_path / f"out_{k + 1}.tif"
        fb = _feedback(k)
        _run(scene, method, str(out), fb)
        if fb.after:
            reported[k] = f"{len(fb.after)} after the cancel, first {fb.after[:3]}"
        if [p.name for p in tmp_path.iterdir() if p.name.startswith(out.stem)]:
            left[k] = [p.name for p in tmp_path.iterdir() if p.name.startswith(out.stem)]
        if k == -1 and fb.stages:
            reported[k] = f"{len(fb.stages)} progress calls of a run cancelled before it started"
    assert reported == {} and left == {}, (calls, reported, left)
