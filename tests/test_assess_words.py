"""What ksdiff:assess says its indices are (QA report on ksdiff:assess): HQNR named as such, Dρ and Q2n's known
differences explained, and SAM exactly 0 for identical images."""
from __future__ import annotations

import json
import re

import numpy as np
from osgeo import gdal

from ksdiff_qgis.engine import metrics as M

BARE_QNR = re.compile(r"(?<!H)QNR")   # "QNR" not part of "HQNR"


def test_assess_description_names_hqnr_and_not_bare_qnr(qgis_app):
    """QA: the toolbox tooltip read 'SAM, ERGAS, Q2n, QNR and more' and the tags said 'qnr', but the algorithm gives
    HQNR (Khan's Dλ, Ds at PAN resolution): on WorldView-2 pair 1 Alparone's QNR is 0.908 against HQNR 0.934, so a
    user comparing with published QNR compared another index. The description names HQNR, the help says what it
    is, and a toolbox search for 'qnr' still finds the algorithm (inside the 'hqnr' tag)."""
    from qgis.core import QgsApplication
    from qgis.gui import QgsProcessingToolboxProxyModel
    from qgis.PyQt.QtCore import QModelIndex

    alg = QgsApplication.processingRegistry().createAlgorithmById("ksdiff:assess")
    short = alg.shortDescription()
    assert "HQNR" in short and not BARE_QNR.search(short), short
    assert "qnr" not in alg.tags() and "hqnr" in alg.tags(), alg.tags()
    hqnr_lines = [line for line in alg.shortHelpString().splitlines() if line.startswith("HQNR (hybrid QNR)")]
    assert len(hqnr_lines) == 1 and "Alparone" in hqnr_lines[0] and len(hqnr_lines[0]) <= 260, hqnr_lines

    model = QgsProcessingToolboxProxyModel(None, QgsApplication.processingRegistry())
    model.setFilterString("qnr")
    pending, found = [QModelIndex()], []
    while pending:
        parent = pending.pop()
        for row in range(model.rowCount(parent)):
            index = model.index(row, 0, parent)
            alg_found = model.toolboxModel().algorithmForIndex(model.mapToSource(index))
            if alg_found is not None:
                found.append(alg_found.id())
            pending.append(index)
    assert "ksdiff:assess" in found, found


def test_report_and_docs_say_hqnr_drho_and_flat_q2n(data_dir):
    """The report's Notes, metrics.py, README and docs/BENCHMARKS.md (and bench/report.py, which writes it) say HQNR is
    not Alparone's QNR, that Dρ is not comparable with the fr-pansh-eval-tool's (WorldView-2 pair 1: 0.268 against
    its 0.185, Landsat 8 0.422 against 0.307: zero padding, each pixel's own mean, covariance floored at 1e-20), and
    the report why Q2n is near 0 over flat or saturated blocks (a constant reference band, as onions_quality.m)."""
    from bench.report import markdown
    from ksdiff_qgis.engine.report import INDICES, html_report

    root = data_dir.parent.parent
    notes = html_report(None, None, {}, "wv2").split("<h2>Notes</h2>", 1)[1]
    assert "HQNR (hybrid QNR)" in notes and "not Alparone" in notes
    assert "fr-pansh-eval-tool" in notes and "zero-pads the border" in notes and "1e-20" in notes
    assert "Q2n ≈ 0" in notes and "onions_quality.m" in notes and "flat or saturated" in notes
    assert "not Alparone" in INDICES["HQNR"][3]
    bench_md = markdown(json.loads((root / "bench" / "results.json").read_text()), [])
    readme = " ".join((root / "README.md").read_text(encoding="utf-8").split())
    for text in (M.__doc__, (root / "docs" / "BENCHMARKS.md").read_text(encoding="utf-8"), bench_md, readme):
        assert "Alparone" in text and "fr-pansh-eval-tool" in text and "1e-20" in text
        assert "QNR family)" not in text and "by QNR alone" not in text


def test_sam_of_identical_images_is_exactly_zero(data_dir):
    """QA: SAM of an image against itself was 2.37e-7 degrees (arccos of a cosine one rounding step below 1); Kahan's
    atan2 form gives exactly 0, and the same values otherwise (within 1e-12 degrees here)."""
    ms = gdal.Open(str(data_dir / "wv2_ms.tif")).ReadAsArray().astype(np.float64)
    assert M.sam(ms, ms) == 0.0
    acc = M.ReducedAccumulator(ms.shape[0], 4, 2047)
    acc.add(ms, ms, (0, ms.shape[1], 0, ms.shape[2]))
    assert acc.result()["SAM"] == 0.0
    other = ms * 1.01 + np.random.default_rng(0).normal(scale=5, size=ms.shape)
    f, r = other.reshape(len(ms), -1), ms.reshape(len(ms), -1)
    cos = np.sum(f * r, axis=0) / (np.linalg.norm(f, axis=0) * np.linalg.norm(r, axis=0))
    assert abs(M.sam(other, ms) - float(np.degrees(np.mean(np.arccos(np.clip(cos, -1, 1)))))) < 1e-12
