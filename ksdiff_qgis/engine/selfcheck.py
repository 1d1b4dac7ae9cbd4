"""Per-scene self-check: does the learned model beat the best classical method on *this* scene? (METHOD ``auto``)

Before fusing with ``auto``, a sample of the user's own scene is drawn: windows of up to 128x128 MS
pixels spread over the valid PAN/MS overlap until about 64k MS pixels are covered (METHOD.md: a 20x36
sample was too small to trust). On every window both candidates are scored

* at reduced resolution (Wald's protocol): PAN and MS degraded by the ratio with the sensor MTF
  (``filters.wald_degrade``), fused, compared with the real MS: ERGAS and SAM;
* at full resolution: the window fused as the pipeline would fuse it; R-ERGAS (the fused image
  MTF-filtered and sampled at the MS pixel centres, ``metrics.reproject_at``, against the MS as read, never
  resampled) and the checkerboard response of the learned output against the PAN's and the real MS's own
  (a blurred PAN alone under-rates natural detail).

:func:`pick_classical` names the best of :data:`CLASSICAL_CANDIDATES` on the sample (the yardstick and the
fallback); :func:`decide` keeps the learned model only if it beats that method on the Wald ERGAS, is not worse on
R-ERGAS by more than :data:`R_ERGAS_MARGIN`, and its checkerboard response stays within
:data:`CB_FACTOR` times the largest of the PAN's, the real MS's and that classical method's own on every band.
Memory: one window (plus context) at a time, and the pooled scores of ~64k MS pixels.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from . import classical, memory, outliers, panholes, saturation
from . import metrics as M
from . import progress as P
from .blockcache import drop_cached_blocks
from .feedback import Feedback
from .filters import upsample, wald_degrade
from .grid import GridPlan, ms_lattice
from .labels import method as label
from .labels import param
from .learned import may_hold_fill, zero_fill
from .masks import MS_FILL_REACH, PAN_FILL_REACH, fill_holes, read_filled
from .raster_io import RasterInfo
from .sensors import Sensor

AUTO = "auto"
AUTO_LABEL = "KSDiff, checked on this scene (the best classical method when the model loses the self-check)"
FALLBACK = classical.BEST_CLASSICAL

WINDOW_SIZES = (128, 64, 32)   # MS pixels per side; smaller ones only where the valid area is narrow
LAST_RESORT_SIZE = 16          # and these only when the others give fewer than MIN_PIXELS (a small scene's data strip)
TARGET_PIXELS = 65536          # MS pixels the sample should cover when the scene has them
# below this the check cannot be trusted: fall back. 256 since the network trained at the check's scale too
# (docs/SELFCHECK.md, small-scene study: default / best classical 1.009 -> 0.892 on 13 small validation scenes,
# never more than 0.2 ERGAS behind it)
MIN_PIXELS = 256
MAX_READS = 64                 # candidate windows read at most per window size (bounded time on sparse scenes)
MIN_VALID = 0.99               # a window must be this valid to be used
# scattered PAN holes (``panholes.scattered``: isolated pixels and specks, filled from the data around them as the
# tiles fill them) count as data for that, up to this share of the window: a lossy PAN whose dark pixels became its
# nodata value 0 (1.86 %, in every window) left the check nothing to score (QA: "only 0 valid MS pixels")
MAX_SCATTERED = 0.05
MIN_CONTEXT_VALID = 0.5        # and its context at least this valid (the holes filled, a learned model told)
DIGITS = 4                     # decimals of the SELFCHECK_* figures (Processing printed 16 significant digits)
R_ERGAS_MARGIN = 0.10          # the learned R-ERGAS may exceed the classical one by 10 %
# classical candidates: the best of them on this scene is the yardstick and the fallback (MTF-GLP-HPM
# first: it wins ties). GSA and MTF-GLP-FS beat it on some products (the Sentinel-2 cases of the robustness suite);
# BDSD-PC since 2026-12-07 (docs/VALIDATION.md: A's mean default / best-of-four 0.9286 -> 0.9205, no case worse)
CLASSICAL_CANDIDATES = ("mtf_glp_hpm", "gsa", "brovey", "mtf_glp_fs", "bdsd_pc")
CB_FACTOR = 1.1                # learned checkerboard response <= 1.1 x max(PAN, MS, classical), every band
# an ERGAS from this on is no fusion's but a broken output's (Wald ERGAS 1e6 at ratio 4: an RMSE 40,000 times the
# band's mean; real methods on real data score 1-30): said in words, not as a number (QA: "Wald ERGAS
# 1424018876991692536149320925184.000", "SAM nan°" for a model returning -1e30 x MS)
UNUSABLE_ERGAS = 1e6
UNUSABLE = "unusable (NaN, infinite or far out of range values)"

# ERGAS divides each band's error by its mean: on data reaching below 0 (surface reflectance) the means lie near 0
ERGAS_NEAR_ZERO = ("ERGAS divides each band's error by the band's mean: on this MS, whose values reach below 0 "
                   "(surface reflectance), the means lie near 0 and every method's ERGAS reads several times what "
                   "the same data encoded with an offset (DN) would give; compare the methods with each other here")

# the same for an MS whose bands (or product metadata) declare an offset: the figures are on the stored numbers
ERGAS_ENCODED = ("ERGAS here is on the MS's stored encoding (DN), not on its physical values: the MS declares an "
                 "offset, which moves each band's mean, the divisor of ERGAS; compare the methods with each other here")

Fuser = Callable[[np.ndarray, np.ndarray, classical.TileContext], np.ndarray]


@dataclass
class Scores:
    """One method's figures on the sample (pooled over all windows)."""

    ergas: float           # Wald, reduced resolution, against the real MS
    sam: float
    r_ergas: float         # full resolution, reprojected onto the MS
    checkerboard: float    # full resolution, worst band

    @property
    def unusable(self) -> bool:
        """The output scored is no fusion: an ERGAS NaN, infinite or from ``UNUSABLE_ERGAS`` on."""
        return not all(math.isfinite(v) and v < UNUSABLE_ERGAS for v in (self.ergas, self.r_ergas))


@dataclass
class SelfCheck:
    method: str                      # what the pipeline will fuse with
    reason: str
    learned: Scores | None = None
    classical: Scores | None = None
    pan_checkerboard: float = float("nan")
    ms_checkerboard: float = float("nan")   # the real MS at its own resolution, worst band
    # least-squares per-band gains g on the learned detail (fused - lms) against (MS - lms) on the Wald
    # sample: a measured diagnostic of over/under-injection, not applied (see docs/SELFCHECK.md)
    detail_gains: list[float] = field(default_factory=list)
    pixels: int = 0                  # MS pixels scored at reduced resolution
    classical_method: str = ""  # the best classical method on the check (yardstick and fallback); "" not measured
    candidates: dict = field(default_factory=dict)   # every candidate's Scores
    windows: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    # why the learned model was not scored (no model for the sensor, no ONNX Runtime, a band or ratio it cannot
    # fuse), said once before the check ran; "" when it was scored or the check could not run
    not_scored: str = ""
    # a kept model's reservation: lossy-compressed inputs whose artefacts the check cannot see (``lossy.caveat``)
    caveat: str = ""

    def summary(self) -> str:
        """Why the run fuses with ``method``, in a few words (output METHOD_REASON): kept, lost, not scored, or the
        check could not run."""
        if self.method == "ksdiff":
            return "kept by the self-check" + (f"; {self.caveat}" if self.caveat else "")
        chosen = f"{label(self.method)} is the best classical method on this scene"
        if self.learned is not None:
            return f"{chosen}; KSDiff lost the self-check: {self.reason}"
        if self.candidates:
            return f"{chosen}; KSDiff was not scored: {self.not_scored}" if self.not_scored else chosen
        return f"{label(self.method)}: the self-check could not run ({self.reason})"

    def outputs(self, digits: int | None = None) -> dict:
        """Figures as Processing outputs (``None`` where not measured), rounded to ``digits`` decimals when given
        (what a user reads; the provenance record keeps them whole)."""
        def num(s: Scores | None, attr: str):
            v = None if s is None or s.unusable else getattr(s, attr)   # no figures of a broken output
            return None if v is None or not math.isfinite(v) else rounded(float(v))

        def rounded(v: float) -> float:
            return v if digits is None else round(v, digits)

        return {
            "SELFCHECK_METHOD": self.method,
            "SELFCHECK_CLASSICAL_METHOD": self.classical_method or None,   # empty, as the figures, when not measured
            "SELFCHECK_REASON": self.reason,
            "SELFCHECK_KSDIFF_ERGAS": num(self.learned, "ergas"),
            "SELFCHECK_CLASSICAL_ERGAS": num(self.classical, "ergas"),
            "SELFCHECK_KSDIFF_SAM": num(self.learned, "sam"),
            "SELFCHECK_CLASSICAL_SAM": num(self.classical, "sam"),
            "SELFCHECK_KSDIFF_R_ERGAS": num(self.learned, "r_ergas"),
            "SELFCHECK_CLASSICAL_R_ERGAS": num(self.classical, "r_ergas"),
            "SELFCHECK_KSDIFF_CHECKERBOARD": num(self.learned, "checkerboard"),
            "SELFCHECK_PAN_CHECKERBOARD": rounded(self.pan_checkerboard)
            if math.isfinite(self.pan_checkerboard) else None,
            "SELFCHECK_MS_CHECKERBOARD": rounded(self.ms_checkerboard) if math.isfinite(self.ms_checkerboard) else None,
            "SELFCHECK_PIXELS": self.pixels,
        }


# ---------------------------------------------------------------------------------- decision
def pick_classical(scores: dict[str, Scores]) -> tuple[str, str]:
    """(the classical method to compare with and fall back to, why).

    Both checks count equally: each method's Wald ERGAS and full-resolution R-ERGAS are divided by the
    best of the candidates and summed; the lowest sum wins (MTF-GLP-HPM on ties). R-ERGAS alone favours
    MTF-filtered detail injection by construction (MTF-GLP-HPM's detail vanishes when reprojected), the
    Wald check alone ignores the scale the user looks at. The why lists the candidates in rank order with their
    scores, said in plain words (QA: "relative sum 2.00 (MTF-GLP-HPM 2.01, ...)" explained nothing, and two
    decimals showed ties that were none).
    """
    best_w = max(min(sc.ergas for sc in scores.values()), 1e-12)
    best_r = max(min(sc.r_ergas for sc in scores.values()), 1e-12)
    total = {k: sc.ergas / best_w + sc.r_ergas / best_r for k, sc in scores.items()}

    def rank(k: str) -> tuple[float, bool]:
        return round(total[k], 6), k != FALLBACK

    name = min(total, key=rank)
    order = sorted(total, key=rank)
    # enough decimals that a near tie does not read as one (QA: "FS 2.004, BDSD-PC 2.004 (MTF-GLP-HPM wins ties)"
    # for 2.00380 against 2.00424, with MTF-GLP-HPM third)
    digits = next((d for d in range(3, 7) if len({f"{total[k]:.{d}f}" for k in order[:2]}) == len(order[:2])), 6)
    ranked = ", ".join(f"{label(k)} {total[k]:.{digits}f}" for k in order)
    tied = [k for k in order if rank(k)[0] == rank(name)[0]]
    note = ""
    if len(tied) > 1:   # a real tie: the winner is MTF-GLP-HPM if tied, else the first of the candidates' order
        note = (f" ({', '.join(label(k) for k in tied)} tie; "
                + (f"{label(FALLBACK)} wins ties)" if FALLBACK in tied else f"{label(name)} comes first)"))
    best = f"{2:.{digits}f}"
    return name, (f"{label(name)} is the best classical method on this scene. Score, lower is better (Wald ERGAS / "
                  f"the lowest of the {len(scores)} + R-ERGAS / the lowest; {best} = lowest on both): {ranked}"
                  + note)


def decide(learned: Scores, classic: Scores, pan_cb: float, ms_cb: float = float("nan"),
           r_margin: float = R_ERGAS_MARGIN, cb_factor: float = CB_FACTOR,
           classic_name: str = "the classical method") -> tuple[bool, str]:
    """(keep the learned model?, why) from the pooled figures of both methods; ``classic_name``: the classical
    method's label, for the why.

    The checkerboard guard compares with the largest of the PAN's, the real MS's (at its own resolution) and
    the classical method's own response: a blurred PAN (some products; every Wald-degraded PAN) scores well
    below natural imagery, whose one-pixel detail the fusion rightly restores (measured: truth 0.55-0.59 over
    a Wald PAN's 0.31); where the classical method it would fuse with, which draws no grid of its own, scores
    above both, that response is the scene's (QA's Sentinel-2 case: MTF-GLP-HPM 0.430 over the PAN's 0.404;
    docs/VALIDATION.md, 2026-12-07 06:25 UTC). A NaN reference (a flat PAN) still refuses, as before.
    """
    if learned.unusable:
        return False, f"its output on the sample is {UNUSABLE}"
    why = []
    ref_cb, ref_name = pan_cb, "PAN's"   # a NaN PAN response (a flat PAN) stays the reference: nothing to measure
    if math.isfinite(pan_cb) and math.isfinite(ms_cb) and ms_cb > pan_cb:
        ref_cb, ref_name = ms_cb, "MS's"
    if classic.checkerboard > ref_cb:   # never when ref_cb is NaN (a flat PAN): the guard still refuses then
        ref_cb, ref_name = classic.checkerboard, "classical method's"
    if not learned.ergas < classic.ergas:
        why.append(f"its Wald ERGAS {learned.ergas:.3f} is not below the classical method's {classic.ergas:.3f}")
    if not learned.r_ergas <= classic.r_ergas * (1.0 + r_margin):
        why.append(f"its full-resolution R-ERGAS {learned.r_ergas:.3f} exceeds the classical method's "
                   f"{classic.r_ergas:.3f} by more than {r_margin:.0%}")
    if not math.isfinite(ref_cb):
        why.append(f"its checkerboard response {learned.checkerboard:.3f} cannot be judged: the PAN's is undefined "
                   "(the PAN is flat on the sample), so one-pixel artefacts cannot be ruled out")
    elif not learned.checkerboard <= cb_factor * ref_cb:
        why.append(f"its checkerboard response {learned.checkerboard:.3f} exceeds {cb_factor:g} x the {ref_name} "
                   f"{ref_cb:.3f} (one-pixel artefacts)")
    if why:
        return False, "; ".join(why)
    # the R-ERGAS rule as the bound it is (QA: "2.728 within 10% of 3.921" read as "nearly as good" when 30 % better)
    return True, (f"Wald ERGAS {learned.ergas:.3f} < {classic_name}'s {classic.ergas:.3f}, R-ERGAS "
                  f"{learned.r_ergas:.3f} against its {classic.r_ergas:.3f} (allowed up to "
                  f"{classic.r_ergas * (1.0 + r_margin):.3f}), checkerboard {learned.checkerboard:.3f} <= "
                  f"{cb_factor:g} x the {ref_name} {ref_cb:.3f}")


# ---------------------------------------------------------------------------------- sampling
def context_margin(ratio: int) -> int:
    """MS pixels of context read around a window (a multiple of the ratio, >= 32 PAN pixels)."""
    need = max(8, math.ceil(32 / ratio))
    return ratio * math.ceil(need / ratio)


def min_window(ratio: int) -> int:
    """MS pixels per side of the smallest check window (``candidate_windows``): 4 PAN-grid blocks of the ratio."""
    return 4 * ratio


def candidate_windows(area: tuple[int, int, int, int], size: int, ratio: int) -> list[tuple[int, int, int, int]]:
    """Windows (col, row, w, h) of at most ``size`` MS pixels inside ``area``, on a half-overlapping grid,
    ordered so that any prefix is spread over the area (coarse to fine). Their context is read around
    them, mirrored beyond the raster edge as the pipeline's tiles are."""
    c0, r0, w, h = area
    ww, wh = min(size, w) // ratio * ratio, min(size, h) // ratio * ratio
    if ww < min_window(ratio) or wh < min_window(ratio):
        return []
    cols = _positions(c0, w, ww)
    rows = _positions(r0, h, wh)
    grid = [(c, r, ww, wh) for r in rows for c in cols]
    return [grid[i] for i in _spread_order(len(grid))]


def _positions(start: int, length: int, size: int) -> list[int]:
    n = max(1, math.ceil((length - size) / (size / 2)) + 1)
    return sorted({start + round(i * (length - size) / max(n - 1, 1)) for i in range(n)})


def _spread_order(n: int) -> list[int]:
    """0..n-1 in an order whose every prefix is roughly evenly spread (bit-reversal-like bisection)."""
    order, seen, step = [], set(), 1
    while len(order) < n:
        for i in np.linspace(0, n - 1, step).round().astype(int):
            if int(i) not in seen:
                seen.add(int(i))
                order.append(int(i))
        step = step * 2 + 1
    return order


def planned_windows(area: tuple[int, int, int, int], ratio: int) -> list[tuple[int, int, int, int]]:
    """The windows ``run_check`` takes when every window it reads is usable (no nodata): what its progress and
    its share of the run's bar are estimated on."""
    taken: list[tuple[int, int, int, int]] = []
    pixels = 0
    for size in (*WINDOW_SIZES, LAST_RESORT_SIZE):
        if size == LAST_RESORT_SIZE and pixels >= MIN_PIXELS:
            break
        reads = 0
        for win in candidate_windows(area, size, ratio):
            if pixels >= TARGET_PIXELS or reads >= MAX_READS:
                break
            if not any(_overlaps(win, t) for t in taken):
                reads += 1
                taken.append(win)
                pixels += win[2] * win[3]
    return taken


def check_area(area: tuple[int, int, int, int], scene: tuple[int, int, int, int], ratio: int,
               usable: Callable[[tuple[int, int, int, int]], int] | None = None,
               where: str = "area of interest") -> tuple[tuple[int, int, int, int], str]:
    """(the MS area the check samples, a note when it is not ``area``): the output's ``area``, or the ``scene``
    around it (the MS pixels over the whole PAN) when the area offers fewer than MIN_PIXELS and the scene's windows
    more: the question is how the model does on this scene, and a small or mostly nodata EXTENT fell back untested.

    ``usable(area)``: the valid MS pixels the check's windows find there (``usable_pixels``, which stops at
    MIN_PIXELS); None judges the area by its geometry alone. ``where``: what ``area`` is called in the note."""
    def offered(a: tuple[int, int, int, int]) -> int:
        return sum(w[2] * w[3] for w in planned_windows(a, ratio))

    here, around = offered(area), offered(scene)
    if around <= here:
        return area, ""   # no EXTENT (or one as large as the scene): nothing around it to sample
    if here < MIN_PIXELS:
        return scene, (f"the {where} ({area[2]} x {area[3]} MS pixels) is too small for the self-check's windows "
                       f"({here} MS pixels, at least {MIN_PIXELS} needed): the check samples the scene around it "
                       f"({scene[2]} x {scene[3]} MS pixels)")
    valid = MIN_PIXELS if usable is None else usable(area)
    if valid >= MIN_PIXELS:
        return area, ""
    # QA: a 200 x 100 m EXTENT at a nodata edge (8 % valid) fell back untested, while a 12 m one was checked around it
    return scene, (f"the {where} ({area[2]} x {area[3]} MS pixels) offers only {valid} valid MS pixels to the "
                   f"self-check's windows (at least {MIN_PIXELS} needed; a window counts when {MIN_VALID:.0%} of it "
                   f"is data): the check samples the scene around it ({scene[2]} x {scene[3]} MS pixels)")


def step_seconds(win: tuple[int, int, int, int], ratio: int, learned: bool) -> float:
    """Estimated seconds of one candidate scored on ``win``: its region (the context included) fused at full and at
    reduced resolution, at ``progress``'s measured rates."""
    ctx = context_margin(ratio)
    pixels = (win[2] + 2 * ctx) * (win[3] + 2 * ctx) * (ratio * ratio + 1)
    return P.mpx(pixels) * (P.CHECK_LEARNED_RATE if learned else P.CHECK_CLASSICAL_RATE)


def estimate_seconds(area: tuple[int, int, int, int], ratio: int, learned: bool) -> float:
    """Estimated seconds of the self-check on the MS ``area`` (``learned``: a learned model is scored too)."""
    return sum(len(CLASSICAL_CANDIDATES) * step_seconds(w, ratio, False) + (step_seconds(w, ratio, True) if learned
               else 0.0) for w in planned_windows(area, ratio))


def _overlaps(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


# -------------------------------------------------------------------------------- the check
class _Pool:
    """Pooled sums over windows, so ERGAS/SAM/checkerboard equal those of one concatenated sample."""

    def __init__(self, bands: int):
        self.sse = np.zeros(bands)
        self.sref = np.zeros(bands)
        self.n = 0
        self.sam_sum, self.sam_n = 0.0, 0
        self.cb = np.zeros((2, bands))
        self.dt, self.dd = np.zeros(bands), np.zeros(bands)   # sum(detail * target), sum(detail^2)

    def add_error(self, fused: np.ndarray, ref: np.ndarray) -> None:
        f, r = fused.reshape(fused.shape[0], -1).astype(np.float64), ref.reshape(ref.shape[0], -1).astype(np.float64)
        self.sse += ((f - r) ** 2).sum(axis=1)
        self.sref += r.sum(axis=1)
        self.n += f.shape[1]
        nf, nr = np.linalg.norm(f, axis=0), np.linalg.norm(r, axis=0)
        ok = (nf > 0) & (nr > 0)
        cos = np.clip((f * r).sum(axis=0)[ok] / (nf[ok] * nr[ok]), -1.0, 1.0)
        self.sam_sum += float(np.degrees(np.arccos(cos)).sum())
        self.sam_n += int(ok.sum())

    def add_detail(self, fused: np.ndarray, lms: np.ndarray, ref: np.ndarray) -> None:
        d = (fused - lms).reshape(fused.shape[0], -1).astype(np.float64)
        t = (ref - lms).reshape(ref.shape[0], -1).astype(np.float64)
        self.dt += (d * t).sum(axis=1)
        self.dd += (d * d).sum(axis=1)

    def add_checker(self, img: np.ndarray) -> None:
        cb, grad, _ = M._checker_parts(img)
        self.cb += np.stack([cb.sum(axis=(1, 2)), grad.sum(axis=(1, 2))])

    def ergas(self, ratio: int) -> float:
        """Over the bands whose mean is not 0 (an empty band's relative error is undefined: it was 1e10)."""
        mse, mu = self.sse / max(self.n, 1), self.sref / max(self.n, 1)
        keep = mu * mu > M.EPS
        if not keep.any():
            return float("nan")
        return float(100.0 / ratio * math.sqrt(np.mean(mse[keep] / (mu[keep] * mu[keep]))))

    def sam(self) -> float:
        return self.sam_sum / self.sam_n if self.sam_n else float("nan")

    def checkerboard(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.cb[0] / self.cb[1]


class _Sample:
    """One window of the scene with its context: PAN and MS read. For the Wald check (and a learned fuser's context)
    the MS is resampled onto the PAN-anchored coarse grid when the grids are offset by a fraction of a PAN pixel
    (Landsat 8); the full-resolution figures compare with the MS as it is (:meth:`ms_window`)."""

    def __init__(self, pan_ds, ms_ds, pan: RasterInfo, ms: RasterInfo, plan: GridPlan, win, ctx: int,
                 stats: classical.SceneStats, clamps: dict | None = None):
        k = plan.ratio
        c, r, w, h = win
        self.k, self.ctx, self.win, self.pad = k, ctx, win, 2
        y, x = plan.ms_origin[0] + (r - ctx) * k, plan.ms_origin[1] + (c - ctx) * k   # PAN position of the region
        self.R0, self.C0 = int(round(y)), int(round(x))
        self.lattice = ms_lattice(plan.ms_origin)   # the pipeline's PAN low-pass lattice (a cut PAN's too)
        off = (y - self.R0, x - self.C0)                   # MS corner relative to the PAN pixel grid
        self.off = off
        H, W = h + 2 * ctx, w + 2 * ctx                    # region, MS pixels
        pad = self.pad
        # holes filled as the pipeline fills them (``masks.read_filled``)
        clamps = clamps or {}
        self.ms_raw, ok = read_filled(ms_ds, r - ctx - pad, c - ctx - pad, H + 2 * pad, W + 2 * pad, ms.nodata,
                                      stats.ms_mean, MS_FILL_REACH, clamp=clamps.get("MS"))
        self.ms_ok = np.ones(self.ms_raw.shape[1:], dtype=bool) if ok is None else ok
        # values the scene statistics screened (an undeclared -1e4 or 1e20 fill) are no data here either: scored as
        # read, one 1e20 in a window made every method's ERGAS ~4000 and the check picked another method (QA)
        screened = getattr(stats, "screened", None)
        if screened is not None:   # ms_ds holds the bands the statistics were computed on: bounds[1 + b] is band b's
            self.ms_ok = _screen_out(self.ms_raw, self.ms_ok, screened.bounds[1:], stats.ms_mean, MS_FILL_REACH)
        self.pan = None
        # why the window is not usable: "ms" (the MS's nodata), "pan" (the PAN's, the MS holding data), "" usable
        self.refused, self.pan_holes, self.pan_scattered = "ms", 0.0, 0.0
        if not _enough(self.ms_ok[pad:pad + H, pad:pad + W], ctx):
            return
        pan_arr, ok = read_filled(pan_ds, self.R0, self.C0, H * k, W * k, pan.nodata, np.array([stats.pan_mean]),
                                  PAN_FILL_REACH, clamp=clamps.get("PAN"))
        pan_ok = np.ones(pan_arr.shape[1:], dtype=bool) if ok is None else ok
        if screened is not None:
            pan_ok = _screen_out(pan_arr, pan_ok, screened.bounds[:1], np.array([stats.pan_mean]), PAN_FILL_REACH)
        ms_ok = self.ms_ok[pad:pad + H, pad:pad + W]
        # what the window may be chosen on and a learned fuser may summarise: the data, less an undeclared fill of
        # zeros, which the pipeline fuses as data but leaves out of a learned tile's context (``_context_valid``)
        ms_zero = ((self.ms_raw[:, pad:pad + H, pad:pad + W] == 0).all(axis=0) if may_hold_fill("MS", ms, stats)
                   else None)
        fill = zero_fill(pan_arr[0] == 0 if may_hold_fill("PAN", pan, stats) else None,
                         None if ms_zero is None else np.repeat(np.repeat(ms_zero, k, axis=0), k, axis=1))
        pan_data = pan_ok if fill is None else pan_ok & ~fill
        ms_data = ms_ok if fill is None else ms_ok & ~fill.reshape(H, k, W, k).all(axis=(1, 3))
        if not _enough(ms_data, ctx):
            return
        pan_chosen = self._forgiven(pan_data, ctx * k)
        if not _enough(pan_chosen, ctx * k):
            self.refused = "pan"
            return
        self.refused = ""
        self.pan = pan_arr[0]
        full = pan_data & np.repeat(np.repeat(ms_data, k, axis=0), k, axis=1)
        holes = not full.all()
        # the region's data pixels, PAN grid and MS grid of the reduced-resolution fusion (None: all of them)
        self.valid_full = full if holes else None
        self.valid_lr = full.reshape(H, k, W, k).all(axis=(1, 3)) if holes else None
        # the MS pixels a learned fuser's consistency step may project onto (``TileContext.ms_real``, as in the
        # pipeline: the MS's own nodata; an undeclared fill counts as data)
        self.ms_real = None if ms_ok.all() else ms_ok
        self.ms_real_lr = None if self.ms_real is None else ms_ok.reshape(H // k, k, W // k, k).all(axis=(1, 3))
        # LMS on the PAN region; MS on the coarse grid anchored at the PAN region (exact when aligned)
        self.lms = upsample(self.ms_raw, k, (H * k, W * k), (off[0] - pad * k, off[1] - pad * k))
        if abs(off[0]) < 0.05 and abs(off[1]) < 0.05:
            self.ms = self.ms_raw[:, pad:pad + H, pad:pad + W]
        else:
            self.ms = upsample(self.ms_raw, 1, (H, W), (off[0] / k - pad, off[1] / k - pad))

    def _forgiven(self, pan_data: np.ndarray, ctx: int) -> np.ndarray:
        """``pan_data`` (the region's PAN data pixels) with its scattered holes (``panholes.scattered``) counted as data
        when they are at most MAX_SCATTERED of the window (``ctx`` pixels inside the region's edge): ``read_filled``
        filled them from the data around them, as the tiles do. Notes the window's share of PAN holes and of
        scattered ones (``pan_holes``, ``pan_scattered``) for a refusal's reason."""
        if pan_data.all():
            return pan_data
        thin = panholes.scattered(pan_data)
        inner = (slice(ctx, pan_data.shape[0] - ctx), slice(ctx, pan_data.shape[1] - ctx))
        self.pan_holes = 1.0 - float(pan_data[inner].mean()) if pan_data[inner].size else 0.0
        self.pan_scattered = float(thin[inner].mean()) if thin[inner].size else 0.0
        return pan_data | thin if 0.0 < self.pan_scattered <= MAX_SCATTERED else pan_data

    @property
    def usable(self) -> bool:
        return self.pan is not None

    def ms_window(self) -> np.ndarray:
        """The window's MS pixels as read (not resampled): what the full-resolution figures compare with."""
        c0 = self.pad + self.ctx
        return self.ms_raw[:, c0:c0 + self.win[3], c0:c0 + self.win[2]]

    def ms_window_corner(self) -> tuple[float, float]:
        """Where the window's first MS pixel has its top-left corner on the region's PAN grid (row, col)."""
        return self.off[0] + self.ctx * self.k, self.off[1] + self.ctx * self.k


def _screen_out(arr: np.ndarray, ok: np.ndarray, bounds: tuple[tuple[float, float], ...], fallback: np.ndarray,
                reach: int) -> np.ndarray:
    """``ok`` (H, W) less the pixels where a band of ``arr`` (C, H, W) lies beyond its ``bounds`` (``Screened``'s, one
    per band), those filled in place as holes are (``fill_holes``): the window is then chosen without them and the
    filters spread no 1e20 into the pixels it is scored on. ``ok`` itself when there are none."""
    bad = outliers.beyond(arr, bounds)
    if not bad.any():
        return ok
    fill_holes(arr, ~bad, fallback, reach)   # from the neighbours (nodata already filled by ``read_filled``)
    return ok & ~bad


def _enough(ok: np.ndarray, ctx: int) -> bool:
    """A region (H, W) around a window ``ctx`` pixels inside each edge: the window MIN_VALID valid and the whole
    region MIN_CONTEXT_VALID valid."""
    inner = ok[ctx:ok.shape[0] - ctx, ctx:ok.shape[1] - ctx]
    return inner.size > 0 and inner.mean() >= MIN_VALID and ok.mean() >= MIN_CONTEXT_VALID


def model_tile_side(size: int, ratio: int) -> int:
    """PAN pixels per side of the tile a learned model fuses for a check window of ``size`` MS pixels: the window,
    its context (``context_margin``) and the mirrored margin ``_fuse_pair`` adds (642 for 128 at ratio 4)."""
    return (size + 2 * context_margin(ratio)) * ratio + 2 * classical.margin(FALLBACK, ratio)


def model_window_sizes(ratio: int, bands: int, size_multiple: int = 1) -> tuple[tuple[int, ...], str | None]:
    """(the check window sizes, largest first, whose model tile fits this run's memory budget; why some or all
    are left out, or None): the check plans its memory as the tiles do (``memory.estimate_mb``). QA: under
    prlimit --as the check's fixed 642-pixel model tile failed while the run's planned tiles fitted."""
    every = (*WINDOW_SIZES, LAST_RESORT_SIZE)
    budget = memory.budget_mb()
    if budget is None:
        return every, None
    limit, source = budget

    def need(size: int) -> float:
        side = model_tile_side(size, ratio)
        return memory.estimate_mb(side, side, side, bands, 0, True, size_multiple)

    fit = tuple(size for size in every if need(size) <= limit)
    if fit == every:
        return every, None
    smallest = every[-1]
    if not fit:
        return (), (f"even its smallest model tile ({model_tile_side(smallest, ratio)} px) would need about "
                    f"{need(smallest):.0f} MB, more than the {limit:.0f} MB this run may use ({source})")
    return fit, (f"its model tiles of {model_tile_side(every[0], ratio)} px would need about {need(every[0]):.0f} MB, "
                 f"more than the {limit:.0f} MB this run may use ({source}): it reads windows of at most "
                 f"{fit[0]} MS pixels ({model_tile_side(fit[0], ratio)} px model tiles)")


def _fuse_pair(fuser: Fuser, pan: np.ndarray, lms: np.ndarray, ctx: classical.TileContext) -> np.ndarray:
    """Fuse with mirrored context around the arrays, as the pipeline does at a raster edge (small
    windows would otherwise be shorter than MTF-GLP-HPM's filters)."""
    m = classical.margin(FALLBACK, ctx.ratio)
    p = np.pad(pan.astype(np.float32), m, mode="symmetric")
    x = np.pad(lms.astype(np.float32), ((0, 0), (m, m), (m, m)), mode="symmetric")
    valid = None if ctx.valid is None else np.pad(ctx.valid, m, mode="symmetric")
    c = classical.TileContext(stats=ctx.stats, ratio=ctx.ratio, gains=ctx.gains,
                              origin=(ctx.origin[0] - m, ctx.origin[1] - m), lattice=ctx.lattice, ms=ctx.ms,
                              ms_origin=(ctx.ms_origin[0] + m, ctx.ms_origin[1] + m), ms_real=ctx.ms_real,
                              valid=valid, place=ctx.place)
    out = np.asarray(fuser(p, x, c), dtype=np.float32)
    return out[:, m:m + pan.shape[0], m:m + pan.shape[1]]


def run_check(pan_ds, ms_ds, pan: RasterInfo, ms: RasterInfo, plan: GridPlan, sensor: Sensor,
              learned: Fuser | None, stats: classical.SceneStats, ms_area: tuple[int, int, int, int],
              feedback: Feedback | None = None, ranges: dict | None = None,
              progress: Callable[[float], None] | None = None, ms_offset: bool = False,
              where: str = "scene", sizes: tuple[int, ...] | None = None) -> SelfCheck:
    """Score ``learned`` and the classical candidates on a spread sample of the scene and decide (module doc).

    ``ms_area`` = (col, row, w, h): the MS pixels inside the output region (``ms_ds`` coordinates).
    ``learned`` None (no model can run): only the classical candidates are scored and the best is chosen.
    ``ranges``: the inputs' ``inrange.guards`` by role: values above a declared bit depth read clamped (not counted:
    the run counts what it reads). ``progress``: told the check's fraction done (0..1) after each method scored on
    a window, by the estimated seconds of the planned windows (``estimate_seconds``), and 1.0 at the end.
    ``ms_offset``: the MS's values carry a declared offset (``ERGAS_ENCODED``, said with the figures).
    ``where``: what ``ms_area`` is called in a reason ("scene", or "area of interest" for an EXTENT's).
    ``sizes``: the window sizes (MS pixels) to read, largest first (``model_window_sizes``); None: all of them.
    """
    clamps = {role: g.quiet for role, g in (ranges or {}).items()}
    fb = feedback or Feedback()
    planned = estimate_seconds(ms_area, plan.ratio, learned is not None)
    spent = 0.0

    def scored(name: str, win: tuple[int, int, int, int]) -> None:
        nonlocal spent
        spent += step_seconds(win, plan.ratio, name == "learned")
        if progress is not None and planned > 0:
            progress(min(1.0, spent / planned))

    t0 = time.perf_counter()
    k = plan.ratio
    gains = sensor.mtf_ms
    # BDSD-PC without fitted coefficients (a sample too small for its fit) is no candidate on this scene
    candidates = [c for c in CLASSICAL_CANDIDATES if c != "bdsd_pc" or getattr(stats, "bdsd_coef", None) is not None]
    fusers = {**({"learned": learned} if learned is not None else {}),
              **{c: classical.FUSERS[c] for c in candidates}}
    pools = {name: (_Pool(ms.bands), _Pool(ms.bands)) for name in fusers}
    pan_pool, ms_pool = _Pool(1), _Pool(ms.bands)
    walk = _Walk(pan_ds, ms_ds, pan, ms, plan, stats, ms_area, clamps, fb, sizes)
    for s in walk:
        _score_window(s, fusers, pools, pan_pool, stats, sensor, gains, scored)
        ms_pool.add_checker(s.ms_window())   # the real MS, not resampled (that blurs its one-pixel detail)
    pixels, taken = walk.pixels, walk.taken
    if progress is not None:
        progress(1.0)
    res = SelfCheck(method=FALLBACK, reason="", pixels=pixels, windows=len(taken))
    narrowest = min(ms_area[2], ms_area[3])
    if pixels < MIN_PIXELS and narrowest < min_window(k):
        # no window fits at all: say so (it read "only 0 valid MS pixels ... of the 0 windows")
        side = "wide" if ms_area[2] <= ms_area[3] else "high"
        res.reason = (f"the area is {narrowest} MS pixels {side} ({ms_area[2]} x {ms_area[3]}), narrower than the "
                      f"{min_window(k)}-pixel check window at ratio {k}")
        res.seconds = time.perf_counter() - t0
        return res
    if pixels < MIN_PIXELS:
        res.reason = _too_few_reason(walk, where)
        res.seconds = time.perf_counter() - t0
        return res
    scores = {}
    for name, (red, full) in pools.items():
        scores[name] = Scores(ergas=red.ergas(k), sam=red.sam(), r_ergas=full.ergas(k),
                              checkerboard=float(np.nanmax(full.checkerboard())))
    chosen, why_classical = pick_classical({c: scores[c] for c in candidates})
    res.learned, res.classical, res.classical_method = scores.get("learned"), scores[chosen], chosen
    res.candidates = scores
    res.notes.append(why_classical)
    if "bdsd_pc" not in candidates:   # QA119: left out unsaid, a user who saw five candidates elsewhere could not tell
        usable, needed, _ = getattr(stats, "bdsd_sample", (0, 0, 0))
        res.notes.append(f"BDSD-PC was left out of the candidates: its coefficients could not be fitted (the scene "
                         f"statistics' sample has {usable} usable MS pixels, the fit needs {needed})")
    mostly = saturation.sample_note(getattr(stats, "pan_top", None), getattr(stats, "ms_top", None))
    if mostly:   # QA: a 93 % saturated sample decided on its 7 % of real content, unsaid
        res.notes.append(mostly)
    low = getattr(stats, "ms_low", None)
    if low is not None and (np.asarray(low) < 0).any():   # QA: reflectance read ~10 x its DN encoding's ERGAS
        res.notes.append(ERGAS_NEAR_ZERO)
    elif ms_offset:   # QA: figures on DN beside an assessment on reflectance, without a word
        res.notes.append(ERGAS_ENCODED)
    res.pan_checkerboard = float(pan_pool.checkerboard()[0])
    res.ms_checkerboard = float(np.nanmax(ms_pool.checkerboard()))
    if learned is None:
        res.method, res.reason = chosen, f"{label(chosen)} is the best classical method on this scene"
        res.seconds = time.perf_counter() - t0
        return res
    red = pools["learned"][0]
    res.detail_gains = [float(a / b) if b > 0 else 1.0 for a, b in zip(red.dt, red.dd)]
    keep, why = decide(res.learned, res.classical, res.pan_checkerboard, res.ms_checkerboard,
                       classic_name=label(chosen))
    res.method = "ksdiff" if keep else chosen
    res.reason = why
    res.seconds = time.perf_counter() - t0
    return res


def _too_few_reason(walk: _Walk, where: str) -> str:
    """Why the check could not run on the windows ``walk`` read: too few valid MS pixels, or, where the MS held data,
    the PAN's nodata in the windows (QA: a lossy PAN's scattered zeros in every window read "only 0 valid MS pixels"
    beside an MS without a hole)."""
    pixels, reads, refused = walk.pixels, walk.reads, walk.pan_refused
    sizes = f"{LAST_RESORT_SIZE} to {WINDOW_SIZES[0]} MS pixels"
    if not refused:
        return (f"the {where} offers only {pixels} valid MS pixels for the self-check (at least {MIN_PIXELS} "
                f"needed to trust it; of the {reads} windows of {sizes} it read, a window counts when "
                f"{MIN_VALID:.0%} of it is data)")
    holes = float(np.mean([h for h, _ in refused]))
    thin = float(np.mean([t for _, t in refused]))
    kind = (f"scattered pixels and specks; the check fills up to {MAX_SCATTERED:.0%} of a window of those, as the "
            "tiles fill them" if thin >= 0.5 * holes else "areas of nodata")
    return (f"the PAN's nodata refused {len(refused)} of the {reads} windows of {sizes} the self-check read, where "
            f"the MS holds data: the PAN holds its nodata value in {holes:.1%} of their pixels ({kind}), and a window "
            f"counts when {MIN_VALID:.0%} of it is data in both inputs; {pixels} valid MS pixels were left, at least "
            f"{MIN_PIXELS} are needed to trust the check")


class _Walk:
    """The check's windows over ``ms_area`` that are usable (``_Sample.usable``), read one at a time, coarse sizes
    first, until TARGET_PIXELS are covered: what ``run_check`` scores and ``usable_pixels`` counts (one path, so
    the count is what the check would find). ``pixels``, ``reads`` and ``taken`` grow as it is iterated."""

    def __init__(self, pan_ds, ms_ds, pan: RasterInfo, ms: RasterInfo, plan: GridPlan, stats: classical.SceneStats,
                 ms_area: tuple[int, int, int, int], clamps: dict, fb: Feedback,
                 sizes: tuple[int, ...] | None = None):
        self.args = (pan_ds, ms_ds, pan, ms, plan)
        self.sizes = sizes or (*WINDOW_SIZES, LAST_RESORT_SIZE)
        self.stats, self.area, self.clamps, self.fb = stats, ms_area, clamps, fb
        self.taken: list[tuple[int, int, int, int]] = []
        self.pixels, self.reads = 0, 0
        # the windows refused for the PAN's nodata where the MS holds data: (share of PAN holes, share scattered)
        self.pan_refused: list[tuple[float, float]] = []

    def __iter__(self) -> Iterator[_Sample]:
        pan_ds, ms_ds, pan, ms, plan = self.args
        k = plan.ratio
        ctx = context_margin(k)
        for size in self.sizes:
            if size == LAST_RESORT_SIZE and self.pixels >= MIN_PIXELS:
                break
            reads = 0   # each size its own budget: a scene whose large windows all hold some nodata tries smaller ones
            for win in candidate_windows(self.area, size, k):
                if self.pixels >= TARGET_PIXELS or reads >= MAX_READS:
                    break
                if any(_overlaps(win, t) for t in self.taken):
                    continue
                self.fb.stop_if_cancelled()
                reads, self.reads = reads + 1, self.reads + 1
                s = _Sample(pan_ds, ms_ds, pan, ms, plan, win, ctx, self.stats, self.clamps)
                drop_cached_blocks([pan_ds, ms_ds])   # one window at a time in GDAL's cache
                if not s.usable:
                    if s.refused == "pan":
                        self.pan_refused.append((s.pan_holes, s.pan_scattered))
                    continue
                self.taken.append(win)
                self.pixels += win[2] * win[3]
                yield s


def usable_pixels(pan_ds, ms_ds, pan: RasterInfo, ms: RasterInfo, plan: GridPlan, stats: classical.SceneStats,
                  ms_area: tuple[int, int, int, int], feedback: Feedback | None = None,
                  ranges: dict | None = None) -> int:
    """The valid MS pixels the check's windows find in ``ms_area``, counted until MIN_PIXELS (then it stops: one
    128-pixel window on a valid area): whether the check can be trusted there (``check_area``)."""
    clamps = {role: g.quiet for role, g in (ranges or {}).items()}
    walk = _Walk(pan_ds, ms_ds, pan, ms, plan, stats, ms_area, clamps, feedback or Feedback())
    for _ in walk:
        if walk.pixels >= MIN_PIXELS:
            break
    return walk.pixels


def _score_window(s: _Sample, fusers: dict[str, Fuser], pools, pan_pool: _Pool, stats, sensor: Sensor,
                  gains, scored: Callable[[str, tuple[int, int, int, int]], None] = lambda name, win: None) -> None:
    """Every fuser's figures on the window ``s`` into its pools; ``scored(name, window)`` after each."""
    k, ctx = s.k, s.ctx
    c, r, w, h = s.win
    # reduced resolution (Wald): degrade the region's PAN and MS, fuse on the MS grid, compare with the MS
    pan_lr = wald_degrade(s.pan, sensor.mtf_pan, k)
    ms_lr = wald_degrade(s.ms, gains, k)
    lms_lr = upsample(ms_lr, k, pan_lr.shape)
    ref = s.ms[:, ctx:ctx + h, ctx:ctx + w]
    ms_real = s.ms_window()
    # each fused as the pipeline would: a learned fuser projects its output onto the MS it was given
    red_ctx = classical.TileContext(stats=stats, ratio=k, gains=gains, origin=(0, 0), ms=ms_lr,
                                    ms_real=s.ms_real_lr, valid=s.valid_lr,
                                    place=f"on the self-check's reduced-resolution copy of its window at MS "
                                          f"column {c}, row {r}")
    full_ctx = classical.TileContext(stats=stats, ratio=k, gains=gains, origin=(s.R0, s.C0),
                                     lattice=s.lattice,
                                     ms=s.ms, ms_real=s.ms_real, valid=s.valid_full)
    for name, fuser in fusers.items():
        red_pool, full_pool = pools[name]
        fused_lr = _fuse_pair(fuser, pan_lr, lms_lr, red_ctx)
        red_pool.add_error(fused_lr[:, ctx:ctx + h, ctx:ctx + w], ref)
        red_pool.add_detail(fused_lr[:, ctx:ctx + h, ctx:ctx + w], lms_lr[:, ctx:ctx + h, ctx:ctx + w], ref)
        # full resolution: the region fused as the pipeline would, MTF-filtered and sampled at the MS pixel centres
        # (also on Landsat 8's offset grid), against the MS as read: ``metrics.reproject_at``, as ksdiff:assess
        fused = _fuse_pair(fuser, s.pan, s.lms, full_ctx)
        full_pool.add_error(M.reproject_at(fused, gains, k, s.ms_window_corner(), (h, w)), ms_real)
        full_pool.add_checker(fused[:, ctx * k:(ctx + h) * k, ctx * k:(ctx + w) * k])
        scored(name, s.win)
    pan_pool.add_checker(s.pan[None, ctx * k:(ctx + h) * k, ctx * k:(ctx + w) * k])


def log_check(res: SelfCheck, fb: Feedback, learned_name: str = "KSDiff") -> None:
    """Both methods' figures and the decision, as info (the choice) and warning (a rejected model)."""
    if res.learned is None and not res.candidates:
        fb.warning(f"Self-check: {res.reason}; fusing with {label(res.method)}.")
        return
    # the sample's figures, not the output's: ksdiff:assess on the output reads other values (QA: R-ERGAS 2.728 here,
    # 2.907 there), since the check scores the network before the run's noise step (docs/VALIDATION.md)
    scored = f", {learned_name}'s before its noise step" if res.learned is not None else ""
    fb.info(f"Self-check on a {res.pixels}-MS-pixel sample, {res.windows} window(s), {res.seconds:.1f} s (figures of "
            f"the sample{scored}; ksdiff:assess on the output gives the whole scene's):")
    rows = [(learned_name, res.learned)] if res.learned is not None else []
    rows += [(label(k), sc) for k, sc in res.candidates.items() if k != "learned"]
    # one sentence-like row per method, its label (as the Method list shows it) first: the Processing dialog's Log
    # tab is HTML and collapses runs of spaces, so rows padded into columns came out ragged there
    for name, sc in rows:
        if sc.unusable:
            fb.info(f"{name}: its output is {UNUSABLE}: no figures")
            continue
        fb.info(f"{name}: Wald ERGAS {sc.ergas:.3f}, SAM {sc.sam:.3f}°; full resolution R-ERGAS {sc.r_ergas:.3f}, "
                f"checkerboard {sc.checkerboard:.3f} (PAN {res.pan_checkerboard:.3f}, MS {res.ms_checkerboard:.3f})")
    # (the detail gains fitted on the Wald sample, ``SelfCheck.detail_gains``, are a study's diagnostic, not applied:
    # not printed, QA: "(diagnostic, not applied)" in every user's log)
    for note in res.notes:
        fb.info(f"  {note}")
    if res.learned is None:   # why KSDiff was not scored was said before the check (QA: "no learned model to check"
        # read false where the model exists and the MS_BANDS selection lacked its bands)
        fb.info(f"Self-check: fusing with {label(res.method)}, the best classical method on this scene (KSDiff was "
                "not scored, as said above).")
    elif res.method != "ksdiff":
        fb.warning(f"Self-check: {learned_name} is not used on this scene because {res.reason}; fusing with "
                   f"{label(res.method)} instead (to force the model, choose {label('ksdiff')} in "
                   f"{param('METHOD', 'ksdiff')}).")
    else:
        fb.info(f"Self-check: {learned_name} kept ({res.reason}).")
