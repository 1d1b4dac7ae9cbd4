"""Target-adaptive fine-tuning: adapt a trained network to one user scene, export ONNX + card for MODEL.

Scarpa, Vitale & Cozzolino ("Target-adaptive CNN-based pansharpening", TGRS 2018) fine-tune briefly on the
scene that is about to be fused; Ciotola et al. (Z-PNN) do it at full resolution without reference. Here
both at once, as the full-resolution stage of training does: every step mixes

* a Wald batch from the scene itself (PAN and MS degraded by the ratio with the sensor MTF; the real MS is
  the reference), and
* a full-resolution batch from the scene (spectral consistency with the MS, spatial consistency with the
  PAN, see ``model_core.losses``).

    python -m model_core adapt --sensor wv2 --pan pan.tif --ms ms.tif \
        --out my_scene.onnx [--steps 200] [--checkpoint runs/<config>/fullres.pt]

The exported file and its card (``my_scene.json``) go to the plugin's MODEL parameter. They are written only when the
plugin's own self-check on the scene (METHOD auto's ``engine.selfcheck.run_check``) scores the adapted model better
than the one it started from (``compared``; ``--keep-worse`` writes it anyway): the bundled model file as the plugin
runs it (``start_model``), what the user gets today.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any, Callable

from ksdiff_qgis.engine.sensors import Sensor, get_sensor

from .config import sensor_spec
from .data.fullres import FullResSampler
from .data.patches import PatchSampler
from .data.scenes import NoPatchError, pair_triple


def adapt_config(ck_cfg: dict[str, Any], sensor: str, steps: int, lr: float, patch: int) -> dict[str, Any]:
    """The checkpoint's config with one ``fullres`` stage on the user's scene."""
    cfg = copy.deepcopy(ck_cfg)
    cfg["sensor"] = sensor
    cfg["stages"] = [{"name": "fullres", "steps": steps, "lr": lr, "warmup": max(1, steps // 10),
                      "weight_decay": 1e-4, "min_lr_frac": 0.05, "ema": None, "grad_clip": 1.0,
                      "fr_weight": 1.0, "fr_lambda": 0.05, "fr_batch": 8}]
    cfg["data"] = dict(cfg["data"], patch=patch, val=[])   # its randomisation kept: see ``pair_variants``
    cfg["train"] = dict(cfg["train"], val_every=10 ** 9, ckpt_every=max(1, steps))
    return cfg


MIN_PATCH = 16   # pixels of the grid the network outputs: below this a patch holds too little of the scene


def fitting(make: Callable[[int], Any], patch: int, ratio: int, what: str) -> Any:
    """``make(p)`` for the largest patch ``p`` <= ``patch`` (a multiple of the ratio, at least ``MIN_PATCH``) that
    fits the scene's valid area: a small scene (a clipped AOI, a Wald case) still adapts, on smaller patches."""
    sizes = list(range(patch - patch % ratio, MIN_PATCH - 1, -ratio))
    for p in sizes:
        try:
            sampler = make(p)
        except NoPatchError:
            continue
        if p < patch:
            print(f"adapt: the scene is small; {what} patches of {p} pixels instead of {patch}", file=sys.stderr)
        return sampler
    raise ValueError(f"the scene is too small to adapt on: not one {what} patch of {MIN_PATCH} pixels fits its valid "
                     "(non-nodata) area")


def pair_variants(cfg: dict[str, Any]) -> dict[str, Any]:
    """The PAN and MS degradation variants (``pair_triple``'s ``pan_gains`` / ``ms_gains``) the checkpoint's real
    pairs were trained with. Adapting on the scene's one Wald version alone teaches the network that version's PAN
    sharpness: at full resolution it then over-sharpens the real, sharper PAN into a one-pixel grid (WorldView-2
    pair 2 at 1:1: checkerboard 0.61-0.64 against the PAN's 0.478, docs/VALIDATION.md 16:29 UTC)."""
    pairs = [src for src in cfg["data"].get("train", []) if src.get("kind") == "pair"]
    return {k: pairs[0][k] for k in ("pan_gains", "ms_gains") if pairs and k in pairs[0]}


def samplers(pan: Path, ms: Path, sensor: str | Sensor, patch: int, variants: dict[str, Any] | None = None,
             randomise: dict[str, Any] | None = None) -> tuple[PatchSampler, FullResSampler]:
    """(Wald patches, full-resolution patches) of one scene; absolute paths, nothing held apart. ``sensor``: a key, or
    the sensor as adapt resolved it (its value scale, a generic scene's layout). ``variants`` and ``randomise``: the
    training config's PAN/MS variants and randomisation for the Wald patches."""
    spec = get_sensor(sensor) if isinstance(sensor, str) else sensor
    root = Path("/")
    triple = pair_triple(root, str(pan.resolve()), str(ms.resolve()), spec, **(variants or {}))
    wald = fitting(lambda p: PatchSampler([triple], p, max(4, p // 4), augment=True, randomise=randomise), patch,
                   spec.ratio, "reduced-resolution")
    full = fitting(lambda p: FullResSampler(root, [{"pan": str(pan.resolve()), "ms": str(ms.resolve())}], spec, p),
                   patch, spec.ratio, "full-resolution")
    return wald, full


def check_scene(pan: str | Path, ms: str | Path, sensor: str) -> tuple[int, int]:
    """Before any step: the pair opens as PAN (one band) and MS, overlaps, and has the sensor's ratio and band count
    (the plugin's own checks; a wrong sensor used to fail after every adaptation step, in the int8 calibration).
    Returns the scene's (MS bands, ratio)."""
    from ksdiff_qgis.engine.grid import plan_grid
    from ksdiff_qgis.engine.raster_io import open_raster

    pan_ds, pan_info = open_raster(str(pan), "PAN")
    ms_ds, ms_info = open_raster(str(ms), "MS")
    if pan_info.bands != 1:
        raise ValueError(f"the PAN raster must have one band; {pan} has {pan_info.bands} (PAN and MS swapped?)")
    plan = plan_grid(pan_info, ms_info, ms_ds)
    spec = get_sensor(sensor)
    if not spec.generic and (plan.ratio != spec.ratio or ms_info.bands != spec.n_bands):
        raise ValueError(f"the scene has {ms_info.bands} MS bands at ratio {plan.ratio}; the {sensor} network takes "
                         f"{spec.n_bands} at ratio {spec.ratio}: give --sensor the scene's sensor")
    return ms_info.bands, plan.ratio


def scene_scale(pan: str | Path, ms: str | Path, scale: float) -> tuple[float, str]:
    """The value scale the adapted network is trained with and its card states, and why: what the plugin divides the
    scene by (``engine.learned.value_scale``: the raster's NBITS, 8-bit data's 255), else ``scale`` (the sensor's, or
    the base model's for the generic sensor) unless the scene's values exceed it, else the smallest 2**k - 1 above
    them (12-bit data adapted from an 11-bit sensor's model: 4095)."""
    import math

    import numpy as np

    from .rasters import describe, read

    metas = [describe(str(p)) for p in (pan, ms)]
    nbits = [m.nbits for m in metas if m.nbits and m.dtype.kind in "iu"]
    if nbits:
        return float(2 ** max(nbits) - 1), f"the scene's NBITS {max(nbits)}"
    if all(m.dtype == np.uint8 for m in metas):
        return 255.0, "8-bit scene"
    top = max(float(np.nanmax(read(str(p)).data)) for p in (pan, ms))
    if scale > 0 and top <= scale:
        return float(scale), f"the sensor's scale; the scene's values reach {top:g}"
    bits = max(1, math.ceil(math.log2(top + 1))) if top > 0 else 1
    return float(2 ** bits - 1), (f"the scene's values reach {top:g}, above the sensor's {scale:g}: {bits}-bit"
                                  if scale > 0 else f"the scene's values reach {top:g}: {bits}-bit")


def base_card(checkpoint: str | Path, ck: dict[str, Any],
              model: str | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The bundled ONNX file and its card of weights shipped in ``model_core/weights`` (``model``: the bundled model
    adapt starts from, when several share the weights; else the card of the sensor they were trained for), None for
    others. The file is the one the card was read from: what the plugin runs (``start_model``)."""
    from ksdiff_qgis.engine.model_card import bundled_cards, load_card

    from .weights import WEIGHTS_DIR

    checkpoint = Path(checkpoint)
    if checkpoint.resolve().parent != WEIGHTS_DIR.resolve():
        return None
    found = [(p, load_card(p).data) for p in bundled_cards().values()]
    mine = [(p, c) for p, c in found if Path(c["training"].get("config", "")).stem == checkpoint.stem]
    mine.sort(key=lambda pc: (pc[1]["sensor"] != model, pc[1]["sensor"] != ck["config"]["sensor"]))
    return mine[0] if mine else None


def start_model(base: tuple[Path, dict[str, Any]] | None) -> Path | None:
    """The bundled ONNX file of ``base`` (``base_card``: the file its card came from): the model the plugin runs
    today, which adapting must beat; None for weights no bundled model holds. Not looked up by the card's sensor: a
    file's name need not be its card's sensor key."""
    return base[0] if base else None


def base_record(checkpoint: str | Path, ck: dict[str, Any], model: str | None = None) -> dict[str, Any]:
    """The training record of the weights ``adapt`` starts from: the bundled card's for weights shipped in
    ``model_core/weights`` (the file holds the last stage only, its card the whole run), else the checkpoint's own."""
    from .export import checkpoint_record

    base = base_card(checkpoint, ck, model)
    if base:
        return {k: v for k, v in base[1]["training"].items() if k != "serves_sensor"}
    return checkpoint_record(checkpoint, ck, "adapted")


def base_metrics(base: tuple[Path, dict[str, Any]] | None) -> dict[str, Any] | None:
    """The base model's card metrics (``base_card``), labelled as the base's (the adapted network itself is not
    evaluated)."""
    card = base[1] if base else None
    if not card or not (card.get("metrics") or {}).get("scenes"):
        return None
    m = card["metrics"]
    return dict(m, measured_by=f"the base model {base[0].name} before adaptation, not the adapted one: "
                               f"{m.get('measured_by', 'its exporter')}")


def scene_licence(ms: str | Path) -> str:
    """The licence of the scene adapted on: that of the `make data` folder it lies in (``wv2/pair1_ms.tif``: Maxar's
    CC BY-SA 4.0, ``train.source_licence``), else the user's own scene's (never guessed)."""
    from .train import UNDECLARED, source_licence

    licence = source_licence({"data": {}}, {"ms": str(Path(ms).resolve())})
    return "the user's own scene" if licence == UNDECLARED else licence


def base_metrics_words(base: dict[str, Any], checkpoint: str | Path) -> str:
    """Where the card's reader finds the scores of the model adapting started from: ``training.base.metrics`` when
    its card had any (a bundled model's), else how to measure them (a checkpoint was never evaluated)."""
    if (base.get("metrics") or {}).get("scenes"):
        return "the metrics of the model it started from are in training.base.metrics"
    return (f"the model it started from ({Path(checkpoint).name}) has no metrics either: score it with `python -m "
            f"model_core evaluate --checkpoint {checkpoint}`")


def adapted_record(base: dict[str, Any], checkpoint: str | Path, scene: str, steps: int, seconds: float,
                   revision: str, licence: str = "the user's own scene") -> dict[str, Any]:
    """The adapted model's training record: the base's (its data and licences stay) plus the scene (``licence``:
    ``scene_licence``), the steps and seconds of both, and both revisions (``git_revision``: the one that adapted;
    ``base``: what it started from)."""
    record = {k: v for k, v in base.items() if k != "metrics"}
    record["base"] = {k: base.get(k) for k in ("stages", "steps", "seconds", "git_revision")}
    if base.get("model"):
        record["base"]["model"] = base["model"]
    if base.get("metrics"):
        record["base"]["metrics"] = base["metrics"]
    record["adaptation"] = {"steps": steps, "seconds": round(seconds, 1), "scene": scene}
    record.pop("model", None)
    record.update(stages=[*base.get("stages", []), "adapt"], steps=int(base.get("steps", 0)) + steps,
                  seconds=round(float(base.get("seconds", 0.0)) + seconds, 1), git_revision=revision,
                  adapted_from=str(checkpoint))
    record["data"] = [*base.get("data", []), {"name": scene, "licence": licence,
                                              "how": "target-adaptive fine-tuning: Wald patches and full-resolution "
                                                     "patches of this scene"}]
    return record


def scene_check(model: str | Path, pan: str | Path, ms: str | Path, sensor: str, threads: int | None = None,
                gains: tuple[tuple[float, ...], float] | None = None):
    """The plugin's own self-check of ``model`` on the scene: ``engine.selfcheck.run_check`` as METHOD auto runs it
    (``pipeline.pansharpen(check_only=True)``: the plugin's defaults, its value scale, int8 where the card has it);
    returns its ``SelfCheck`` (``learned``: the model's Wald ERGAS, SAM, R-ERGAS; None when the scene is too small).
    ``gains``: (MS gains, PAN gain) of its Wald degradation in place of the sensor's (a generic model's own)."""
    from ksdiff_qgis.engine import selfcheck
    from ksdiff_qgis.engine.feedback import RecordingFeedback
    from ksdiff_qgis.engine.pipeline import pansharpen

    model = Path(model)
    res = pansharpen(str(pan), str(ms), str(model.with_name("selfcheck.tif")), sensor=sensor, method=selfcheck.AUTO,
                     model_path=str(model), threads=threads or 0, feedback=RecordingFeedback(), check_only=True,
                     mtf_gains=list(gains[0]) if gains else None, mtf_pan=gains[1] if gains else None)
    return res.selfcheck


def compared(start, adapted) -> tuple[bool | None, str]:
    """(is the adapted model better on the scene?, both self-check figures in words); None when the self-check could
    not score the models there. Better: a lower Wald ERGAS, and kept by the self-check wherever the start model is."""
    import math

    if start.learned is None or adapted.learned is None:
        return None, (f"the self-check cannot score this scene ({adapted.reason}); the adapted model is written "
                      "without a comparison")
    a, b = start.learned, adapted.learned
    words = (f"self-check on the scene ({adapted.pixels} MS pixels): Wald ERGAS {a.ergas:.3f} for the model it "
             f"started from, {b.ergas:.3f} adapted (R-ERGAS {a.r_ergas:.3f} -> {b.r_ergas:.3f}; the best classical "
             f"method there, {adapted.classical_method}, {adapted.classical.ergas:.3f})")
    if not (math.isfinite(b.ergas) and b.ergas < a.ergas):
        return False, words
    if start.method == "ksdiff" and adapted.method != "ksdiff":
        return False, f"{words}; but the self-check would not use the adapted model: {adapted.reason}"
    return True, words


def check_figures(check) -> dict[str, Any]:
    """A self-check's figures of the learned model, for the card."""
    sc = check.learned
    return {"wald_ergas": round(sc.ergas, 4), "sam": round(sc.sam, 4), "r_ergas": round(sc.r_ergas, 4),
            "checkerboard": round(sc.checkerboard, 4), "kept_by_selfcheck": check.method == "ksdiff"}


def adapt(checkpoint: str | Path, pan: str | Path, ms: str | Path, out: str | Path, sensor: str | None = None,
          steps: int = 200, lr: float = 1e-4, patch: int = 64, work_dir: str | Path | None = None,
          progress: bool = True, threads: int | None = None, base_model: str | None = None, overwrite: bool = False,
          keep_worse: bool = False) -> dict[str, Any]:
    """Fine-tune ``checkpoint`` on the scene (``pan``, ``ms``) and export ``out`` (.onnx) with its card, if the
    plugin's self-check on the scene (``scene_check``) scores the adapted model better than the one it started from
    (``compared``), else raise ValueError and write nothing (``keep_worse``: write it anyway).
    ``threads``: torch threads (default: the checkpoint's config's); ``base_model``: the bundled model whose weights
    ``checkpoint`` holds (its card's record and metrics become the base's); ``overwrite``: replace an existing
    ``out`` and its card (else refused, as a missing folder is). The work happens in a temporary folder, removed at
    the end, on an error, Ctrl-C or SIGTERM; an interrupted adaptation starts again from the beginning."""
    import tempfile

    import torch

    from ksdiff_qgis.engine.raster_io.partials import removed_on_sigterm

    from .export import check_out, place, write_card
    from .export import export as export_model
    from .nets import build_model
    from .train import git_revision, load_checkpoint, train_stage

    check_out(out, overwrite)   # a folder that exists, a name ending in .onnx, nothing replaced unasked
    ck = load_checkpoint(checkpoint)
    sensor = sensor or ck["config"]["sensor"]
    bands, ratio = check_scene(pan, ms, sensor)
    net = sensor_spec(ck["config"])
    if bands != net.n_bands or int(ck["config"]["model"].get("ratio", ratio)) != ratio:
        raise ValueError(f"the scene has {bands} MS bands at ratio {ratio}; the network of {Path(checkpoint).name} "
                         f"fuses {net.n_bands} at ratio {ck['config']['model'].get('ratio', net.ratio)}")
    bundled = base_card(checkpoint, ck, base_model)   # (its file, its card) for shipped weights
    base = base_record(checkpoint, ck, base_model)
    base.update(model=bundled[0].name if bundled else None, metrics=base_metrics(bundled))
    if "unfinished" in base:   # as export warns: a smoke run or a stopped one
        print(f"adapt: warning: {base['unfinished']}", file=sys.stderr)
    cfg = adapt_config(ck["config"], sensor, steps, lr, patch)
    # the value scale: what the plugin will divide this scene by, which the card states (``scene_scale``)
    generic = get_sensor(sensor).generic
    scale, how = scene_scale(pan, ms, net.scale if generic else get_sensor(sensor).scale)
    cfg["data_layout"] = {"scale": scale, "how": f"values / {scale:g} ({how}; python -m model_core adapt)"}
    if generic:   # the scene's layout, the base network's band names
        cfg["data_layout"].update(bands=bands, ratio=ratio, band_names=list(net.band_names))
    print(f"adapt: values normalised by {scale:g} ({how})", file=sys.stderr)
    if threads:   # not part of what is trained: where it computes
        cfg["train"]["threads"] = threads
    torch.manual_seed(cfg["seed"])
    torch.set_num_threads(int(cfg["train"]["threads"]))
    model = build_model(cfg["method"], net.n_bands, cfg["backbone"], **cfg["model"])
    model.load_state_dict(ck["ema"] if ck.get("ema") else ck["model"])
    spec = sensor_spec(cfg)
    wald, full = samplers(Path(pan), Path(ms), spec, patch, pair_variants(cfg),
                          cfg["data"].get("randomise"))
    name = Path(out).name
    with tempfile.TemporaryDirectory(prefix="ksdiff_adapt_") as tmp, removed_on_sigterm(lambda: [tmp]):
        tmp = Path(tmp)
        # a generic network's self-check degrades with the MTF gains it was trained with (config mtf_ms / mtf_pan)
        gains = (spec.mtf_ms, spec.mtf_pan) if spec.key == "generic" else None
        # what the user gets today, scored by the plugin's own self-check on the scene: the bundled model file as
        # the plugin runs it (its own int8 ranges and precision). QA: a start model re-exported with this scene's
        # int8 ranges scored 7.698 where the bundled wv2.onnx the plugin runs scores 7.667, so the adapted 7.638
        # was measured against a model nobody uses. A checkpoint no bundled model holds has no file the plugin runs:
        # it is exported as the adapted one will be (this scene's value scale and int8 ranges).
        start = start_model(bundled)
        if start is None:
            (tmp / "start").mkdir()
            start = tmp / "start" / name
            export_model(model, cfg, start, base, None, calibration=(str(pan), str(ms)))
        before = scene_check(start, pan, ms, sensor, threads, gains)
        model.train()
        run_dir = Path(work_dir or tmp / "run")
        run_dir.mkdir(parents=True, exist_ok=True)
        summary = train_stage(model, cfg, 0, wald, None, run_dir, progress=progress, fullres=full)
        model.eval()
        if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):   # the int8 calibration would crash
            raise ValueError(f"the adaptation diverged (its weights are no longer finite after {steps} steps at "
                             f"learning rate {lr:g}); {out} was not written: give a lower --lr")
        record = adapted_record(base, checkpoint, f"{pan} + {ms}", steps, summary["seconds"], git_revision(),
                                scene_licence(ms))
        metrics = {"measured_by": "nothing: the adapted network is not evaluated on a reference (its scene has "
                                  "none; the self-check on that scene is in training.adaptation.selfcheck); "
                                  + base_metrics_words(record["base"], checkpoint), "scenes": {}}
        (tmp / "adapted").mkdir()
        staged = tmp / "adapted" / name
        card = export_model(model, cfg, staged, record, metrics, calibration=(str(pan), str(ms)))  # its int8 ranges
        after = scene_check(staged, pan, ms, sensor, threads, gains)
        better, words = compared(before, after)
        print(f"adapt: {words}", file=sys.stderr)
        if better is False and not keep_worse:
            why = (f"self-check Wald ERGAS {after.learned.ergas:.3f} against {before.learned.ergas:.3f}"
                   if not after.learned.ergas < before.learned.ergas else "the self-check would not use it")
            raise ValueError(f"the adapted model is not better than the model it started from on this scene ({why}); "
                             f"{out} was not written. Fewer --steps or a lower --lr may help; --keep-worse writes it "
                             "anyway")
        if better is False:
            print("adapt: warning: the adapted model is not better on this scene; written anyway (--keep-worse)",
                  file=sys.stderr)
        if better is not None:   # on the scene it was adapted on: not an independent measure (the card says so)
            card["training"]["adaptation"]["selfcheck"] = {
                "measured_by": "the plugin's self-check (METHOD auto) on the scene the model was adapted on: not "
                               "independent of the adaptation",
                "start": check_figures(before), "adapted": check_figures(after),
                "best_classical": {"method": after.classical_method, "wald_ergas": round(after.classical.ergas, 4)}}
            card = write_card(staged, {k: v for k, v in card.items() if k != "onnx_sha256"})
        place(staged, out)
    return card
