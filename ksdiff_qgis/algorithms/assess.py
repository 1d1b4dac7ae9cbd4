"""Processing algorithm ``ksdiff:assess``: quality indices of a pansharpened raster, as an HTML report.

Reduced resolution (a REFERENCE raster on the fused grid, e.g. the original MS of a Wald test case):
SAM, ERGAS, Q2n (Q4/Q8), Q, SCC, PSNR, SSIM. Full resolution (the original PAN and MS): Dλ (Khan), Ds,
HQNR. Definitions: ``engine/metrics.py``.

Memory is bounded: rasters are read through GDAL in 512x512-pixel tiles with 64 pixels of context and
the indices are accumulated tile by tile (:class:`metrics.ReducedAccumulator`,
:class:`metrics.FullAccumulator`); every pixel, sliding window and 32x32 block is counted once, so the
result equals the whole-image computation (no decimated read).
"""
from __future__ import annotations

import datetime
import html
import math
import os

import numpy as np
from osgeo import gdal
from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication

from ..engine import metrics as M
from ..engine.filters import upsample
from ..engine.gdalutil import gdal_call
from ..engine.sensors import SENSORS, get_sensor
from .common import raster_path
from .compat import KeyedEnum, set_help

TILE = 512
ASSESS_SENSORS = [k for k, s in SENSORS.items() if s.ratio]   # the generic sensor has no ratio to assess with

# index key in the metrics results -> (output name, label, ideal value, what it says)
INDICES = {
    "SAM": ("SAM", "SAM (degrees)", "0", "spectral angle between fused and reference spectra"),
    "ERGAS": ("ERGAS", "ERGAS", "0", "relative global error, normalised by the resolution ratio"),
    "Q2n": ("Q2N", "Q2n (Q4/Q8)", "1", "hypercomplex quality index on 32×32 blocks (all bands jointly)"),
    "Q": ("Q", "Q (mean UIQI)", "1", "universal image quality index per band, averaged"),
    "SCC": ("SCC", "SCC", "1", "correlation of Sobel gradient magnitudes (spatial detail)"),
    "PSNR": ("PSNR", "PSNR (dB)", "∞", "peak signal-to-noise ratio on data / sensor maximum"),
    "SSIM": ("SSIM", "SSIM", "1", "structural similarity per band, averaged"),
    "D_lambda": ("D_LAMBDA", "Dλ (Khan)", "0", "spectral distortion: 1 − Q2n(MS upsampled, MTF-filtered fused)"),
    "D_s": ("D_S", "Ds", "0", "spatial distortion: PAN relations of the fused vs those of the MS at low resolution"),
    "HQNR": ("HQNR", "HQNR", "1", "hybrid quality with no reference: (1 − Dλ)(1 − Ds)"),
}


def tr(text: str) -> str:
    return QCoreApplication.translate("KsdiffAssess", text)


# ------------------------------------------------------------------------------- raster access
class _Raster:
    def __init__(self, path: str, role: str):
        self.path, self.role = path, role
        self.ds, msg = gdal_call(gdal.Open, path)
        if self.ds is None:
            raise QgsProcessingException(tr("{}: cannot open {}: {}").format(role, path, msg))
        gt = self.ds.GetGeoTransform()
        if gt[2] or gt[4]:
            raise QgsProcessingException(tr("{}: rotated rasters are not supported").format(role))
        self.gt = gt
        self.w, self.h, self.bands = self.ds.RasterXSize, self.ds.RasterYSize, self.ds.RasterCount
        self.nodata = [self.ds.GetRasterBand(b + 1).GetNoDataValue() for b in range(self.bands)]
        self.names = [self.ds.GetRasterBand(b + 1).GetDescription() for b in range(self.bands)]

    def read(self, col: int, row: int, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        """(C, h, w) float64 and a validity mask (False where any band is nodata or NaN)."""
        arr, msg = gdal_call(self.ds.ReadAsArray, int(col), int(row), int(w), int(h))
        if arr is None:
            raise QgsProcessingException(tr("{}: reading {} failed: {}").format(self.role, self.path, msg))
        arr = (arr[None] if arr.ndim == 2 else arr).astype(np.float64)
        valid = np.ones(arr.shape[1:], bool)
        for b, nd in enumerate(self.nodata):
            if nd is not None:
                valid &= ~(np.isnan(arr[b]) if math.isnan(nd) else arr[b] == nd)
        valid &= np.all(np.isfinite(arr), axis=0)
        return arr, valid


def _offset(a: _Raster, b: _Raster, tol: float = 0.05) -> tuple[int, int]:
    """Integer pixel offset (col, row) of ``b``'s origin on ``a``'s grid; both grids must coincide."""
    if abs(a.gt[1] - b.gt[1]) > 1e-6 * abs(a.gt[1]) or abs(a.gt[5] - b.gt[5]) > 1e-6 * abs(a.gt[5]):
        raise QgsProcessingException(
            tr("{} and {} have different pixel sizes ({:g} vs {:g}); they must share one pixel grid").format(
                b.role, a.role, b.gt[1], a.gt[1])
        )
    u, v = (b.gt[0] - a.gt[0]) / a.gt[1], (b.gt[3] - a.gt[3]) / a.gt[5]
    if abs(u - round(u)) > tol or abs(v - round(v)) > tol:
        raise QgsProcessingException(tr("{} is shifted by a fraction of a pixel from {}").format(b.role, a.role))
    return int(round(u)), int(round(v))


def _tiles(h: int, w: int):
    return list(M.tile_cores(h, w, TILE, M.TILE_HALO))


def assess_reduced(fused_path: str, ref_path: str, sensor: str, feedback=None) -> dict:
    """Reference-based indices of ``fused`` against ``ref`` over their common pixels (same grid)."""
    sens = get_sensor(sensor)
    fu, rf = _Raster(fused_path, "FUSED"), _Raster(ref_path, "REFERENCE")
    if fu.bands != rf.bands:
        raise QgsProcessingException(tr("FUSED has {} bands, REFERENCE {}").format(fu.bands, rf.bands))
    dc, dr = _offset(fu, rf)               # reference origin in fused pixels
    c0, r0 = max(0, dc), max(0, dr)
    c1, r1 = min(fu.w, dc + rf.w), min(fu.h, dr + rf.h)
    if c1 - c0 < 11 or r1 - r0 < 11:
        raise QgsProcessingException(tr("FUSED and REFERENCE overlap by less than 11x11 pixels"))
    acc = M.ReducedAccumulator(fu.bands, sens.ratio, sens.scale)
    tiles = _tiles(r1 - r0, c1 - c0)
    for i, ((r, c, h, w), core) in enumerate(tiles):
        if feedback is not None and feedback.isCanceled():
            break
        f, fv = fu.read(c0 + c, r0 + r, w, h)
        g, gv = rf.read(c0 + c - dc, r0 + r - dr, w, h)
        acc.add(f, g, core, fv & gv)
        if feedback is not None:
            feedback.setProgress(100.0 * (i + 1) / len(tiles))
    res = acc.result()
    res.update(width=c1 - c0, height=r1 - r0, band_names=fu.names, ratio=sens.ratio, max_value=sens.scale)
    return res


def assess_full(fused_path: str, pan_path: str, ms_path: str, sensor: str, feedback=None) -> dict:
    """No-reference indices of ``fused`` (PAN grid) against the original PAN and MS."""
    sens = get_sensor(sensor)
    fu, pn, ms = _Raster(fused_path, "FUSED"), _Raster(pan_path, "PAN"), _Raster(ms_path, "MS")
    if pn.bands != 1:
        raise QgsProcessingException(tr("PAN must have one band, it has {}").format(pn.bands))
    if ms.bands != fu.bands:
        raise QgsProcessingException(tr("FUSED has {} bands, MS {}").format(fu.bands, ms.bands))
    ratio_f = ms.gt[1] / fu.gt[1]
    ratio = int(round(ratio_f))
    if ratio < 2 or abs(ratio_f - ratio) > 1e-3 * ratio:
        raise QgsProcessingException(tr("MS pixels are {:.4f} times the FUSED pixels; expected a whole ratio ≥ 2").format(ratio_f))
    dc, dr = _offset(fu, pn)
    # MS extent in fused pixels
    mu0, mv0 = (ms.gt[0] - fu.gt[0]) / fu.gt[1], (ms.gt[3] - fu.gt[3]) / fu.gt[5]
    c0 = max(0, dc, math.ceil(mu0 - 1e-6))
    r0 = max(0, dr, math.ceil(mv0 - 1e-6))
    c1 = min(fu.w, dc + pn.w, math.floor(mu0 + ms.w * ratio + 1e-6))
    r1 = min(fu.h, dr + pn.h, math.floor(mv0 + ms.h * ratio + 1e-6))
    if c1 - c0 < 2 * 32 or r1 - r0 < 2 * 32:
        raise QgsProcessingException(tr("FUSED, PAN and MS overlap by less than 64x64 PAN pixels"))
    gains = list(sens.mtf_ms) if len(sens.mtf_ms) == fu.bands else [sens.mtf_ms[0]] * fu.bands
    acc = M.FullAccumulator(fu.bands, gains, sens.mtf_pan, ratio)
    tiles = _tiles(r1 - r0, c1 - c0)
    for i, ((r, c, h, w), core) in enumerate(tiles):
        if feedback is not None and feedback.isCanceled():
            break
        f, fv = fu.read(c0 + c, r0 + r, w, h)
        p, pv = pn.read(c0 + c - dc, r0 + r - dr, w, h)
        # MS pixels around the region, upsampled onto it with the project's cubic interpolator
        u, v = (c0 + c - mu0) / ratio, (r0 + r - mv0) / ratio
        mc0, mr0 = max(0, math.floor(u) - 3), max(0, math.floor(v) - 3)
        mc1, mr1 = min(ms.w, math.ceil(u + w / ratio) + 3), min(ms.h, math.ceil(v + h / ratio) + 3)
        m, mvalid = ms.read(mc0, mr0, mc1 - mc0, mr1 - mr0)
        origin = ((mr0 - v) * ratio, (mc0 - u) * ratio)
        lms = upsample(m.astype(np.float32), ratio, (h, w), origin).astype(np.float64)
        valid = fv & pv
        if not mvalid.all():
            valid &= np.abs(upsample((~mvalid).astype(np.float32), ratio, (h, w), origin)) < 1e-6
        acc.add(f, p[0], lms, core, valid)
        if feedback is not None:
            feedback.setProgress(100.0 * (i + 1) / len(tiles))
    res = acc.result()
    res.update(width=c1 - c0, height=r1 - r0, band_names=fu.names, ratio=ratio)
    return res


# -------------------------------------------------------------------------------------- report
def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    if isinstance(v, float) and math.isnan(v):
        return "n/a"
    return f"{v:.4f}"


def svg_bars(series: dict[str, list[float]], labels: list[str], width: int = 520, height: int = 220,
             vmax: float | None = None) -> str:
    """A small grouped bar chart (one group per band, one bar per series) as inline SVG."""
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
    vals = [v for s in series.values() for v in s if v is not None and math.isfinite(v)]
    if not vals:
        return ""
    top = vmax if vmax is not None else max(max(vals), 1e-9) * 1.1
    left, bottom, pad = 40, 30, 10
    pw, ph = width - left - pad, height - bottom - pad - 18
    ng, ns = len(labels), len(series)
    gw = pw / max(ng, 1)
    bw = gw * 0.8 / max(ns, 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">']
    for t in range(5):
        val = top * t / 4
        y = pad + 18 + ph - ph * t / 4
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - pad}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{val:.2f}</text>')
    for si, (name, s) in enumerate(series.items()):
        col = colors[si % len(colors)]
        out.append(f'<rect x="{left + si * 90}" y="2" width="10" height="10" fill="{col}"/>'
                   f'<text x="{left + si * 90 + 14}" y="11">{html.escape(name)}</text>')
        for gi, v in enumerate(s):
            if v is None or not math.isfinite(v):
                continue
            hgt = ph * max(0.0, min(v, top)) / top
            x = left + gi * gw + gw * 0.1 + si * bw
            out.append(f'<rect x="{x:.1f}" y="{pad + 18 + ph - hgt:.1f}" width="{bw:.1f}" height="{hgt:.1f}" fill="{col}">'
                       f'<title>{html.escape(name)} {html.escape(labels[gi])}: {v:.4f}</title></rect>')
    for gi, lab in enumerate(labels):
        out.append(f'<text x="{left + gi * gw + gw / 2:.1f}" y="{height - 10}" text-anchor="middle">{html.escape(lab)}</text>')
    out.append("</svg>")
    return "".join(out)


def html_report(reduced: dict | None, full: dict | None, inputs: dict, sensor: str) -> str:
    sens = get_sensor(sensor)
    rows, parts = [], []
    for res, keys in ((reduced, M.REDUCED), (full, M.FULL)):
        if res is None:
            continue
        for k in keys:
            _, label, ideal, what = INDICES[k]
            rows.append(f"<tr><td>{label}</td><td class='n'>{_fmt(res[k])}</td><td class='n'>{ideal}</td><td>{what}</td></tr>")
    ins = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in inputs.items() if v)
    parts.append(f"<h1>Pansharpening quality report</h1><p>Sensor: {html.escape(sens.name)} "
                 f"(ratio {sens.ratio}, MS MTF gains {', '.join(f'{g:g}' for g in sens.mtf_ms)}, PAN {sens.mtf_pan:g}). "
                 f"Generated {datetime.datetime.now().isoformat(timespec='seconds')} by ksdiff:assess.</p>")
    parts.append(f"<h2>Inputs</h2><table>{ins}</table>")
    parts.append("<h2>Indices</h2><table><tr><th>index</th><th>value</th><th>ideal</th><th>meaning</th></tr>"
                 + "".join(rows) + "</table>")
    for res, title in ((reduced, "Reduced resolution (against the reference)"), (full, "Full resolution (no reference)")):
        if res is None:
            continue
        pb = res["per_band"]
        n = len(next(iter(pb.values())))
        names = [nm or f"Band {i + 1}" for i, nm in enumerate((res.get("band_names") or [""] * n)[:n])]
        names += [f"Band {i + 1}" for i in range(len(names), n)]
        head = "".join(f"<th>{html.escape(k)}</th>" for k in pb)
        body = "".join(
            f"<tr><td>{html.escape(names[i])}</td>" + "".join(f"<td class='n'>{_fmt(float(pb[k][i]))}</td>" for k in pb) + "</tr>"
            for i in range(n)
        )
        parts.append(f"<h2>{title}: per band</h2><p>{res['width']}×{res['height']} pixels assessed.</p>"
                     f"<table><tr><th>band</th>{head}</tr>{body}</table>")
        if "Q" in pb:
            chart = svg_bars({k: [float(x) for x in pb[k]] for k in ("Q", "SCC", "SSIM")}, names, vmax=1.0)
        else:
            chart = svg_bars({"Ds": [float(x) for x in pb["D_s"]]}, names)
        parts.append(f"<div class='plot'>{chart}</div>")
    parts.append(
        "<h2>Notes</h2><ul>"
        "<li>Definitions: SAM in degrees; ERGAS = 100/ratio·√(mean_b MSE_b/μ_b²); Q2n and Q on 32×32 blocks / "
        "windows; SCC on Sobel magnitudes of interior pixels; PSNR and SSIM on data divided by the sensor maximum "
        f"({sens.scale:g}); Dλ (Khan) = 1 − Q2n(MS cubic-upsampled, fused low-passed with the MS MTF); "
        "Ds = mean_b |Q(F_b, PAN) − Q(MS_b upsampled, PAN degraded and re-interpolated)|; HQNR = (1 − Dλ)(1 − Ds).</li>"
        "<li>Pixels that are nodata in any input are left out, with every window and block that touches them.</li>"
        "<li>Computed tile by tile (512×512 pixels with 64 pixels of context): equal to the whole-image values, "
        "with bounded memory.</li></ul>"
    )
    style = ("body{font-family:sans-serif;max-width:60em;margin:1em auto;color:#222}table{border-collapse:collapse;margin:.5em 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px}th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>KSDiff quality report</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


# ----------------------------------------------------------------------------------- algorithm
class AssessAlgorithm(QgsProcessingAlgorithm):
    FUSED, REFERENCE, PAN, MS, SENSOR, OUTPUT_HTML = "FUSED", "REFERENCE", "PAN", "MS", "SENSOR", "OUTPUT_HTML"

    def name(self) -> str:
        return "assess"

    def displayName(self) -> str:  # noqa: N802
        return tr("Assess pansharpening quality")

    def group(self) -> str:
        return tr("Pansharpening")

    def groupId(self) -> str:  # noqa: N802
        return "pansharpening"

    def tags(self) -> list[str]:
        return tr("quality,assessment,sam,ergas,q4,q8,q2n,scc,psnr,ssim,qnr,hqnr,wald,pansharpening").split(",")

    def shortHelpString(self) -> str:  # noqa: N802
        return tr(
            "Measures the quality of a pansharpened raster with the indices of the pansharpening literature and "
            "writes an HTML report (table of indices, per-band figures, a bar chart). Every index is also an "
            "output of the algorithm, for use in graphical models.\n\n"
            "Pansharpened (fused) raster: the image to assess.\n"
            "Reference (reduced-resolution assessment): the true MS on the same pixel grid as the fused "
            "raster, typically the original MS of a Wald test case (fuse the PAN and MS degraded by the ratio, "
            "compare with the original MS). Gives SAM, ERGAS, Q2n (Q4/Q8), Q, SCC, PSNR and SSIM.\n"
            "Original PAN and original MS (full-resolution assessment, no reference needed): the "
            "inputs the fused raster was made from. Gives Dλ (Khan), Ds and HQNR.\n"
            "Give a reference, or PAN and MS, or all three.\n"
            "Sensor: sets the resolution ratio, the MTF gains used by Dλ/Ds and the maximum value used by "
            "PSNR/SSIM.\nReport: the HTML file to write.\n\n"
            "Rasters are read in tiles: memory stays bounded for any scene size. Nodata pixels are left out."
        )

    def createInstance(self):  # noqa: N802
        return AssessAlgorithm()

    def initAlgorithm(self, config=None):  # noqa: N802
        params = [
            (QgsProcessingParameterRasterLayer(self.FUSED, tr("Pansharpened (fused) raster")),
             tr("The pansharpened raster to assess.")),
            (QgsProcessingParameterRasterLayer(self.REFERENCE, tr("Reference MS on the fused grid (reduced-resolution assessment)"),
                                               optional=True),
             tr("Ground-truth MS on the same pixel grid as the fused raster (e.g. the original MS of a Wald test "
                "case). Enables SAM, ERGAS, Q2n, Q, SCC, PSNR and SSIM.")),
            (QgsProcessingParameterRasterLayer(self.PAN, tr("Original PAN (full-resolution assessment)"), optional=True),
             tr("The panchromatic raster the fused raster was made from (same pixel grid). With the original MS "
                "it enables Dλ, Ds and HQNR.")),
            (QgsProcessingParameterRasterLayer(self.MS, tr("Original MS (full-resolution assessment)"), optional=True),
             tr("The multispectral raster the fused raster was made from (pixels a whole number of times larger).")),
            (KeyedEnum(self.SENSOR, tr("Sensor"), ASSESS_SENSORS,
                       ["{} [{}]".format(SENSORS[k].name, k) for k in ASSESS_SENSORS], "wv2"),
             tr("Sensor of the imagery: resolution ratio, MTF gains and maximum value.")),
            (QgsProcessingParameterFileDestination(self.OUTPUT_HTML, tr("Report"), tr("HTML files (*.html)")),
             tr("HTML report with the table of indices, per-band figures and a chart.")),
        ]
        for p, helptext in params:
            set_help(p, helptext)
            self.addParameter(p)
        for key, (out, label, _, _) in INDICES.items():
            self.addOutput(QgsProcessingOutputNumber(out, label))

    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802
        self._fused = raster_path(self.parameterAsRasterLayer(parameters, self.FUSED, context), "FUSED")
        ref = self.parameterAsRasterLayer(parameters, self.REFERENCE, context)
        pan = self.parameterAsRasterLayer(parameters, self.PAN, context)
        ms = self.parameterAsRasterLayer(parameters, self.MS, context)
        self._ref = raster_path(ref, "REFERENCE") if ref is not None else None
        if (pan is None) != (ms is None):
            raise QgsProcessingException(tr("Full-resolution assessment needs both the original PAN and the original MS"))
        self._pan = raster_path(pan, "PAN") if pan is not None else None
        self._ms = raster_path(ms, "MS") if ms is not None else None
        if self._ref is None and self._pan is None:
            raise QgsProcessingException(tr("Give a reference raster, or the original PAN and MS, or both"))
        self._sensor = self.parameterDefinition(self.SENSOR).resolve(parameters, context) or "wv2"
        return True

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        # destinations are resolved in the worker's context (the house rule; see ksdiff:pansharpen)
        self._html = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        reduced = full = None
        try:
            if self._ref:
                feedback.pushInfo(tr("Reduced-resolution assessment against the reference…"))
                reduced = assess_reduced(self._fused, self._ref, self._sensor, feedback)
            if self._pan and not feedback.isCanceled():
                feedback.pushInfo(tr("Full-resolution assessment against the original PAN and MS…"))
                full = assess_full(self._fused, self._pan, self._ms, self._sensor, feedback)
        except (ValueError, RuntimeError) as e:
            raise QgsProcessingException(tr("Assessment failed: {}").format(e)) from e
        if feedback.isCanceled():
            raise QgsProcessingException(tr("Cancelled"))
        results = {}
        for key, (out, _, _, _) in INDICES.items():
            src = reduced if key in M.REDUCED else full
            v = None if src is None else src.get(key)
            results[out] = None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
            if results[out] is not None:
                feedback.pushInfo(f"{key}: {results[out]:.4f}")
        inputs = {"Fused": self._fused, "Reference": self._ref, "PAN": self._pan, "MS": self._ms}
        os.makedirs(os.path.dirname(os.path.abspath(self._html)), exist_ok=True)
        with open(self._html, "w", encoding="utf-8") as fh:
            fh.write(html_report(reduced, full, inputs, self._sensor))
        results[self.OUTPUT_HTML] = self._html
        return results
