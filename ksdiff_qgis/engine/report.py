"""HTML quality report of ``ksdiff:assess`` (tables of indices, per-band figures, an inline SVG chart).

No QGIS: the Processing algorithm, the bench and scripts can write the same report.
"""
from __future__ import annotations

import datetime
import errno
import html
import math
import os

from . import metrics as M
from .errors import disk_full
from .provenance import SOFTWARE, build, plugin_version
from .raster_io import check_not_input, check_writable, open_dataset
from .raster_io.writer import free_space
from .sensors import GENERIC_MTF_MS, get_sensor


def check_report_path(path: str, inputs: dict[str, str | None]) -> None:
    """Before any index is computed: the report can be written at ``path`` (an existing folder, as for the fused
    output and QGIS's own algorithms: a missing folder is more often a typo than a wish), and it is none of the
    ``inputs`` (role -> raster path) nor a file they read. Raises InputError."""
    check_writable(path, extensions=None, what="report")
    check_not_input(path, {role: open_dataset(p, role) for role, p in inputs.items() if p})

def write_report(path: str, text: str) -> None:
    """Write the report through a temporary file beside ``path``, then put it in place: a write that fails (a full
    disk) leaves an earlier report whole and no temporary file. OSError with a message that says why and what to do.
    """
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException as e:   # not only OSError: no temporary file is left by any failure (QA116: a text error)
        try:
            os.remove(tmp)
        except OSError:
            pass
        if not isinstance(e, OSError):
            raise
        folder = os.path.dirname(os.path.abspath(path))
        before = "an earlier report there is unchanged" if os.path.exists(path) else "nothing was written"
        if disk_full(e):
            free = free_space(folder)
            room = f"{free} bytes free" if free is not None else "no space"
            raise OSError(e.errno or errno.ENOSPC, f"The report could not be written to {path}: the disk is full "
                          f"({room} in {folder}; the report needs {len(text.encode('utf-8'))} bytes). Free some "
                          f"space there or choose another OUTPUT_HTML; {before}.") from None
        raise OSError(e.errno, f"The report could not be written to {path}: {e.strerror or e}; {before}.") from None


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
    "D_s": ("D_S", "Ds", "0", "spatial distortion: Q of each fused band with the PAN vs Q of the MS band upsampled "
            "to the PAN grid with the PAN low-passed by its MTF (32×32 sliding windows; not the toolbox's D_s.m)"),
    "HQNR": ("HQNR", "HQNR", "1", "hybrid QNR, no reference: (1 − Dλ)(1 − Ds) with Khan's Dλ; not Alparone's QNR"),
    "D_rho": ("D_RHO", "Dρ", "0", "spatial consistency: 1 − local correlation of each fused band with the PAN "
              "(ratio×ratio windows)"),
    "R_Q2n": ("R_Q2N", "R-Q2n", "1", "Q2n of the fused image MTF-filtered and sampled at the MS pixel centres, against "
              "the original MS"),
    "R_SAM": ("R_SAM", "R-SAM (degrees)", "0", "SAM of the reprojected fused image against the original MS"),
    "R_ERGAS": ("R_ERGAS", "R-ERGAS", "0", "ERGAS of the reprojected fused image against the original MS"),
    "CB": ("CHECKERBOARD", "Checkerboard response (worst band)", "≈ PAN's",
           "mean |2×2 checkerboard filter| / mean |gradient|: one-pixel grid artefacts; 1 = pure checkerboard"),
    "CB_PAN": ("CHECKERBOARD_PAN", "Checkerboard response of the PAN", "—",
               "the same index on the PAN: a clean fusion stays near it"),
}

# per-band keys of the full-resolution results -> the names the rest of the report uses
PER_BAND_LABELS = {"D_s": "Ds", "D_rho": "Dρ", "CB": "Checkerboard"}


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    if isinstance(v, float) and math.isnan(v):
        return "n/a"
    return f"{v:.4f}"


CHAR_PX = 6.5   # mean advance of an 11 px sans-serif character: how many fit under a group of bars


def fit_label(label: str, width: float) -> str:
    """``label`` cut to what fits in ``width`` pixels of the chart's font, ending in "…" when cut (QA: a 300-character
    band name ran over every other group's label)."""
    room = max(3, int(width / CHAR_PX))
    return label if len(label) <= room else label[:room - 1].rstrip() + "…"


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
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           'font-family="sans-serif" font-size="11">']
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
            out.append(f'<rect x="{x:.1f}" y="{pad + 18 + ph - hgt:.1f}" width="{bw:.1f}" height="{hgt:.1f}" '
                       f'fill="{col}"><title>{html.escape(name)} {html.escape(labels[gi])}: {v:.4f}</title></rect>')
    for gi, lab in enumerate(labels):   # cut to the group's width; the whole name in the tooltip
        out.append(f'<text x="{left + gi * gw + gw / 2:.1f}" y="{height - 10}" text-anchor="middle">'
                   f'<title>{html.escape(lab)}</title>{html.escape(fit_label(lab, gw))}</text>')
    out.append("</svg>")
    return "".join(out)


def _peak(reduced: dict | None, sensor_scale: float) -> str:
    peak = (reduced or {}).get("max_value", sensor_scale)
    why = ("the sensor's" if peak == sensor_scale else "the data's" if not sensor_scale
           else "the data's: float reflectance or a type holding less")
    return f"{peak:g}, {why}"


def _pixels(res: dict, filtered: bool) -> str:
    """How many pixels the indices used, out of the overlap."""
    total = res["width"] * res["height"]
    used = res.get("pixels", total)
    if used == total:
        return f"{res['width']}×{res['height']} pixels assessed, all valid."
    why = "nodata in an input" + (", or near enough to a hole for a filter to reach it" if filtered else "")
    return (f"{used} of the {res['width']}×{res['height']} pixels of the overlap assessed "
            f"({100 * used / total:.1f} %); the others are {why}.")


def _tiling(reduced: dict | None, full: dict | None) -> str:
    """The tiles the assessment used, e.g. '480×480 pixels with 66 pixels of context at full resolution'."""
    parts = [(f"{t[0]}×{t[0]} pixels with {t[1]} pixels of context", where)
             for res, where in ((reduced, "at reduced resolution"), (full, "at full resolution"))
             if res and (t := res.get("tiling"))]
    if len({text for text, _ in parts}) <= 1:
        return parts[0][0] if parts else "tiles with context"
    return "; ".join(f"{text} {where}" for text, where in parts)


def html_report(reduced: dict | None, full: dict | None, inputs: dict, sensor: str, guessed: str | None = None) -> str:
    """The assessment as one HTML page. ``guessed``: why SENSOR auto chose ``sensor`` (the log's reasons), said
    in the header; None when the sensor was chosen."""
    sens = get_sensor(sensor)
    rows, parts = [], []
    for res, keys in ((reduced, M.REDUCED), (full, M.FULL + M.CONSISTENCY)):
        if res is None:
            continue
        for k in keys:
            _, label, ideal, what = INDICES[k]
            why = res.get("why", {}).get(k)
            what = what + (f" — <b>n/a</b>: {html.escape(why)}" if why else "")
            rows.append(f"<tr><td>{label}</td><td class='n'>{_fmt(res.get(k))}</td><td class='n'>{ideal}</td>"
                        f"<td>{what}</td></tr>")
    ins = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in inputs.items() if v)
    gains = ", ".join(f"{g:g}" for g in (full or {}).get("gains") or sens.mtf_ms or (GENERIC_MTF_MS,))
    data_ratio = (full or {}).get("ratio") or (reduced or {}).get("ratio")
    if sens.ratio:
        ratio = f"ratio {sens.ratio}" + (f"; the data's ratio {data_ratio}, used at full resolution"
                                         if data_ratio and data_ratio != sens.ratio else "")
    else:
        ratio = f"the data's ratio {data_ratio}" if data_ratio else "no ratio"
    guess = f" — guessed (SENSOR auto): {html.escape(guessed)}" if guessed else ""
    parts.append(f"<h1>Pansharpening quality report</h1><p>Sensor: {html.escape(sens.name)} "
                 f"({ratio}, MS MTF gains {gains}, PAN {sens.mtf_pan:g}){guess}. "
                 f"Generated {datetime.datetime.now().isoformat(timespec='seconds')} by ksdiff:assess, "
                 f"{SOFTWARE} {html.escape(plugin_version())} (build {html.escape(build())}).</p>")
    parts.append(f"<h2>Inputs</h2><table>{ins}</table>")
    said = (full or {}).get("notes") or []   # how the MS was read onto the PAN grid (``assessment.ms_on_pan_grid``)
    if said:
        parts.append("<h2>The original MS</h2><ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in said) + "</ul>")
    told = (reduced or {}).get("notes") or []   # scale, coverage and holes against the reference
    if told:
        parts.append("<h2>Against the reference</h2><ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in told)
                     + "</ul>")
    parts.append("<h2>Indices</h2><table><tr><th>index</th><th>value</th><th>ideal</th><th>meaning</th></tr>"
                 + "".join(rows) + "</table>")
    for res, title in ((reduced, "Reduced resolution (against the reference)"),
                       (full, "Full resolution (no reference)")):
        if res is None:
            continue
        pb = res["per_band"]
        n = len(next(iter(pb.values())))
        names = [nm or f"Band {i + 1}" for i, nm in enumerate((res.get("band_names") or [""] * n)[:n])]
        names += [f"Band {i + 1}" for i in range(len(names), n)]
        head = "".join(f"<th>{html.escape(PER_BAND_LABELS.get(k, k))}</th>" for k in pb)
        body = "".join(
            f"<tr><td>{html.escape(names[i])}</td>"
            + "".join(f"<td class='n'>{_fmt(float(pb[k][i]))}</td>" for k in pb) + "</tr>"
            for i in range(n)
        )
        parts.append(f"<h2>{title}: per band</h2><p>{_pixels(res, res is full)}</p>"
                     f"<table><tr><th>band</th>{head}</tr>{body}</table>")
        if "Q" in pb:
            chart = svg_bars({k: [float(x) for x in pb[k]] for k in ("Q", "SCC", "SSIM")}, names, vmax=1.0)
        else:
            chart = svg_bars({PER_BAND_LABELS.get(k, k): [float(x) for x in v] for k, v in pb.items()}, names)
        parts.append(f"<div class='plot'>{chart}</div>")
    parts.append(
        "<h2>Notes</h2><ul>"
        "<li>Definitions: SAM in degrees; ERGAS = 100/ratio·√(mean_b MSE_b/μ_b²); Q2n and Q on 32×32 blocks / "
        "windows; SCC on Sobel magnitudes of interior pixels (the toolbox's SCC.m zero-pads the border); PSNR and "
        "SSIM on data divided by the full scale "
        f"({_peak(reduced, sens.scale)}); Dλ (Khan) = 1 − Q2n(MS cubic-upsampled, fused low-passed with the MS MTF); "
        "Ds = mean_b |Q(F_b, PAN) − Q(MS_b upsampled, PAN degraded with its MTF and re-interpolated)|, Q on every "
        "32×32 sliding window at PAN resolution (the toolbox's D_s.m uses non-overlapping blocks); "
        "HQNR (hybrid QNR) = (1 − Dλ)(1 − Ds) with these Dλ and Ds: not Alparone et al.'s 2008 QNR (Dλ from the Q "
        "of band pairs, Ds at MS scale), whose figures differ (WorldView-2 pair 1 fused by KSDiff: HQNR 0.934, "
        "QNR 0.908), so compare it only with HQNR; "
        "Dρ = 1 − mean local correlation (ratio×ratio windows, clipped to [−1, 1]) of each fused band with the PAN "
        "(Scarpa &amp; Ciotola 2022); R-Q2n / R-SAM / R-ERGAS compare the fused image filtered with the MS MTF "
        "and sampled at the MS pixel centres (Wald's degradation on aligned grids) with the original MS, which is "
        "not resampled (unless it had to be read onto the PAN grid: see above); checkerboard response = mean "
        "|x ⊛ [[1,−1],[−1,1]]| / mean(|∂x x| + |∂y x|), worst band (a clean fusion stays near the PAN's value).</li>"
        "<li>Dρ is not comparable with the values of Scarpa &amp; Ciotola's published fr-pansh-eval-tool: its NumPy "
        "local_cross_correlation zero-pads the border, subtracts from each pixel its own local mean and floors the "
        "covariance at 1e-20, which lowers Dρ (WorldView-2 pair 1 fused by KSDiff: 0.185 there, 0.268 here).</li>"
        "<li>A 32×32 block where a reference band is constant (saturated, no signal, a fill) and the fused band is "
        "not scores Q2n ≈ 0 over all its bands (so Dλ ≈ 1, R-Q2n ≈ 0 there), as the toolbox's onions_quality.m "
        "does: a low Q2n over flat or saturated areas is the index's definition, not a fault of the fusion.</li>"
        "<li>Pixels that are nodata in any input are left out, with every window and block that touches them.</li>"
        f"<li>Computed tile by tile ({_tiling(reduced, full)}): equal to the whole-image values, "
        "with bounded memory.</li></ul>"
    )
    style = ("body{font-family:sans-serif;max-width:60em;margin:1em auto;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px}"
             "th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>KSDiff quality report</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
