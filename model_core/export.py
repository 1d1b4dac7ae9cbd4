"""ONNX export of the whole inference path plus the model card.

The graph: inputs ``pan`` (N x 1 x H x W) and ``lms`` (N x C x H x W), output ``hrms`` (N x C x H x W),
all float32 divided by the sensor scale; N, H and W dynamic. For KSDiff the graph holds the condition
encoder, the unrolled deterministic sampler (its initial noise is a constant of the graph), the kernel
generator and the modulated backbone.

Model card: written beside the ONNX file (same stem, ``.json``) and embedded in the ONNX metadata
under the key ``model_card``. A file cannot contain its own hash, so the embedded card has no
``onnx_sha256``; the JSON beside the file has it, computed over the final ``.onnx`` bytes (the ones
that carry the embedded card). Check a file with ``verify_card``. The card records the training's wall-clock time, so
two runs of one config and seed give bit-identical weights but files of different sha256: ``network_sha256``
compares the networks without the card.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator

import onnx
import torch
from torch import nn

from ksdiff_qgis.engine.model_card import sha256_file

from . import tile_graphs, tile_int8
from .config import CONFIG_DIR, backbone_spec, sensor_spec
from .data.scenes import NoPatchError
from .nets import size_multiple
from .say import stage

OPSET = 17


def count_parameters(model: nn.Module, inference_only: bool = True) -> int:
    """Parameters of the inference path (KSDiff's stage-1 prior encoder is training-only)."""
    return sum(p.numel() for n, p in model.named_parameters() if not (inference_only and n.startswith("prior_enc.")))


def make_card(model: nn.Module, cfg: dict[str, Any], training: dict[str, Any]) -> dict[str, Any]:
    """The model card (without ``onnx_sha256``) for a network trained with ``cfg``."""
    sensor = sensor_spec(cfg)
    method = cfg["method"]
    card = {
        "format_version": 1,
        "sensor": sensor.key,
        "sensor_name": sensor.name,
        "bands": list(sensor.band_names),
        "ratio": sensor.ratio,
        "scale": sensor.scale,
        "method": method,
        "backbone": cfg["backbone"] if method in ("ksdiff", "fusionnet", "pannet") else "ssdiff-unet",
        "inputs": {"pan": "pan", "lms": "lms"},
        "output": "hrms",
        "layout": "NCHW",
        "normalisation": ("value / scale; the graph then normalises each tile itself (PAN matched to the MS "
                          "intensity, all divided by the tile's mean intensity), so any value scale works")
        if getattr(model, "tile_norm", False) else "value / scale",
        "margin": int(model.margin),
        "size_multiple": size_multiple(model),
        "parameters": count_parameters(model),
        "training": training,
        "metrics": {},
    }
    if cfg.get("data_layout"):   # the generic sensor: what was measured from the training data
        card["sensor_layout"] = cfg["data_layout"]["how"]
    if sensor.key == "generic":   # the MTF gains its Wald patches were degraded with (config mtf_ms / mtf_pan)
        card["mtf"] = {"ms": list(sensor.mtf_ms), "pan": sensor.mtf_pan}
    if method in ("ksdiff", "ssdiff"):
        # honest about context: the KSDiff prior / SSDiff channel attention summarise the whole tile
        card["global_context"] = True
        card["notes"] = ("margin is the convolutional receptive field; the output also depends on tile-level "
                         "context (KSDiff: prior tokens pooled over the tile; SSDiff: channel attention), so "
                         "use large tiles with overlap")
    return card


def add_metadata(onnx_path: str | Path, entries: dict[str, str]) -> None:
    """Set ONNX metadata entries (replacing any of the same keys)."""
    m = onnx.load(str(onnx_path))
    keep = [p for p in m.metadata_props if p.key not in entries]
    del m.metadata_props[:]
    m.metadata_props.extend(keep)
    for key, value in entries.items():
        m.metadata_props.add(key=key, value=value)
    onnx.save(m, str(onnx_path))


def write_card(onnx_path: str | Path, card: dict[str, Any]) -> dict[str, Any]:
    """Embed ``card`` (minus ``onnx_sha256``) as ONNX metadata ``model_card``, then write the JSON beside
    the file with ``onnx_sha256`` = sha256 of the final ONNX bytes. Returns the JSON card."""
    onnx_path = Path(onnx_path)
    embedded = {k: v for k, v in card.items() if k != "onnx_sha256"}
    add_metadata(onnx_path, {"model_card": json.dumps(embedded, sort_keys=True)})
    full = dict(embedded, onnx_sha256=sha256_file(onnx_path))
    onnx_path.with_suffix(".json").write_text(json.dumps(full, indent=1, sort_keys=True) + "\n")
    return full


def network_sha256(onnx_path: str | Path) -> str:
    """sha256 of an ONNX file's network without its embedded card (``model_card``): the graph, weights and the other
    metadata (tile graphs, int8 variant). The file's own sha256 (the card's ``onnx_sha256``) differs between two runs
    of one config and seed because the embedded card records the training's wall-clock time (``training.seconds``);
    this one does not, so it tells whether two exports hold the same network bit for bit."""
    import hashlib

    m = onnx.load(str(onnx_path))
    keep = [p for p in m.metadata_props if p.key != "model_card"]
    del m.metadata_props[:]
    m.metadata_props.extend(keep)
    return hashlib.sha256(m.SerializeToString(deterministic=True)).hexdigest()


def verify_card(onnx_path: str | Path) -> dict[str, Any]:
    """Load the JSON card beside ``onnx_path``; raise if its hash or embedded copy disagree."""
    onnx_path = Path(onnx_path)
    card = json.loads(onnx_path.with_suffix(".json").read_text())
    if card.get("onnx_sha256") != sha256_file(onnx_path):
        raise ValueError(f"{onnx_path}: sha256 does not match its card")
    meta = {p.key: p.value for p in onnx.load(str(onnx_path), load_external_data=False).metadata_props}
    embedded = json.loads(meta["model_card"])
    if embedded != {k: v for k, v in card.items() if k != "onnx_sha256"}:
        raise ValueError(f"{onnx_path}: embedded card differs from the JSON beside it")
    return card


def check_out(out: str | Path, overwrite: bool = False) -> Path:
    """``--out`` of ``export`` / ``adapt``, checked before any work as the plugin checks its outputs: not a folder, in a
    folder that exists (never created unasked), and neither the model nor its card there already unless ``overwrite``.
    Raises ValueError."""
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder: give the model's file name, ending in .onnx")
    if out.suffix.lower() != ".onnx":   # the plugin's MODEL takes .onnx files; its card is <name>.json beside it
        raise ValueError(f"--out {out}: give the model's file name, ending in .onnx (its card <name>.json is written "
                         "beside it)")
    folder = out.absolute().parent
    if not folder.is_dir():
        raise ValueError(f"--out {out}: the folder {folder} does not exist (create it, or give another folder)")
    there = [p.name for p in (out, out.with_suffix(".json")) if p.exists()]
    if there and not overwrite:
        raise ValueError(f"--out {out}: {' and its card '.join(there)} already exist{'s' if len(there) == 1 else ''} "
                         "in that folder; give --overwrite to replace the model and its card, or another name")
    return out


def place(staged_onnx: str | Path, out: str | Path) -> Path:
    """Move an exported model and its card (``<name>.json``) to ``out``: each copied beside ``out`` under a hidden
    name, then both renamed into place, so an existing model and its card are replaced together or not at all."""
    from ksdiff_qgis.engine.raster_io.partials import removed_on_sigterm

    src, out = Path(staged_onnx), Path(out)
    pairs = [(src, out), (src.with_suffix(".json"), out.with_suffix(".json"))]
    hidden = [dst.with_name(f".{dst.name}.partial") for _, dst in pairs]
    with removed_on_sigterm(lambda: [str(h) for h in hidden if h.exists()]):
        try:
            for (s, _), h in zip(pairs, hidden):
                shutil.copyfile(s, h)
            for (_, dst), h in zip(pairs, hidden):
                os.replace(h, dst)
        finally:
            for h in hidden:
                h.unlink(missing_ok=True)
    return out


@contextlib.contextmanager
def staged(out: str | Path) -> Iterator[Path]:
    """A path in a temporary folder to export into; when the block ends without error the model and its card go to
    ``out`` (``place``). A failed, interrupted or killed (SIGTERM) export leaves ``out`` as it was and no temporary
    folder behind."""
    from ksdiff_qgis.engine.raster_io.partials import removed_on_sigterm

    with tempfile.TemporaryDirectory(prefix="ksdiff_export_") as tmp, removed_on_sigterm(lambda: [tmp]):
        path = Path(tmp) / Path(out).name
        yield path
        place(path, out)


def export_onnx(model: nn.Module, path: str | Path, bands: int, size: int = 64) -> Path:
    """Trace the inference path into ``path`` with dynamic N, H, W (one self-contained file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    m = size_multiple(model)
    size = (size + m - 1) // m * m
    pan, lms = torch.rand(1, 1, size, size), torch.rand(1, bands, size, size)
    dyn = {0: "N", 2: "H", 3: "W"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (pan, lms), str(path), input_names=["pan", "lms"], output_names=["hrms"],
                          dynamic_axes={"pan": dyn, "lms": dyn, "hrms": dyn}, opset_version=OPSET, dynamo=False)
    return path


def export(model: nn.Module, cfg: dict[str, Any], path: str | Path, training: dict[str, Any],
           metrics: dict[str, Any] | None = None, calibration: tuple[str, str] | None = None) -> dict[str, Any]:
    """Export ``model`` to ``path`` and write its card (with ``metrics``, the evaluation numbers, when given);
    returns the card. The card is written once, here: nothing rewrites it later (the bench only reads it).
    ``calibration``: the (PAN, MS) pair the int8 variant is calibrated on (default: the config's training
    sources, ``int8_calibration``)."""
    bands = sensor_spec(cfg).n_bands
    stage("tracing the network into ONNX")
    export_onnx(model, path, bands)
    card = make_card(model, cfg, training)
    if tile_graphs.supported(model):   # the CPU fast path travels inside the file (tile_graphs.py)
        stage("building the CPU tile graphs")
        meta, offsets = tile_graphs.tile_graphs(model, bands)
        add_metadata(path, meta)
        card["tile_kernels"] = {"prior": tile_graphs.META_PRIOR, "backbone": tile_graphs.META_BACKBONE,
                                "offsets": offsets}
        # a config may refuse the int8 copy (export.int8: false) when it failed the 1 % check on validation
        feeds, data = (int8_calibration(cfg, card["scale"], calibration) if cfg.get("export", {}).get("int8", True)
                       else (None, None))
        if feeds:
            stage(f"calibrating the int8 variant on {len(feeds)} patches")
            add_int8(path, card, feeds, meta, data)
        elif data:   # no patch to calibrate on (`make data` not run; PanCollection samples are smaller than one)
            print(f"export: no int8 variant: {data} hold no {tile_int8.PATCH}² calibration patch; add it with "
                  f"python -m model_core int8 --model {Path(path).name} --pan PAN --ms MS", file=sys.stderr)
    if metrics:
        card["metrics"] = metrics
    return write_card(path, card)


def int8_calibration(cfg: dict[str, Any], scale: float,
                     pair: tuple[str, str] | None = None) -> tuple[list[dict] | None, str]:
    """(calibration inputs of the int8 variant, what they come from in words: ``calibration_data``): patches of
    ``pair`` (e.g. the user's scene of ``adapt``), else of every training source of the config
    (``tile_int8.training_feeds``), also when ``pair`` is too small to hold one calibration patch; None when there are
    none (`make data` not run: the model is exported without its int8 variant)."""
    if pair:
        try:
            feeds = tile_int8.calibration_feeds(pair[0], pair[1], cfg["sensor"], scale, ratio=sensor_spec(cfg).ratio)
            return feeds, calibration_data(cfg, pair)
        except NoPatchError as e:
            print(f"export: {e}; the int8 variant is calibrated on the training sources", file=sys.stderr)
    return tile_int8.training_feeds(cfg) or None, calibration_data(cfg)


def calibration_data(cfg: dict[str, Any], pair: tuple[str, str] | None = None) -> str:
    """What the int8 variant is calibrated on, for its card: the PAN/MS pair, else the config's training sources."""
    if pair:
        return f"the pair {Path(pair[0]).absolute()} + {Path(pair[1]).absolute()}"
    name = Path(cfg.get("config_path") or "").name
    return f"the training sources of {name}" if name else "the training sources of its config"


def add_int8(path: str | Path, card: dict[str, Any], feeds: list[dict], meta: dict[str, str] | None = None,
             data: str | None = None) -> None:
    """Add the int8 backbone graph (``tile_int8.py``), calibrated on ``feeds``, to the exported ``path`` and its
    entry to ``card["tile_kernels"]`` (the card is written afterwards); ``data``: what the feeds come from, recorded
    with the patch count (``calibration_data``). Fewer candidate patches than one contrast class takes
    (``tile_int8.PER_CLASS``) are warned about: a small scene calibrated silently on 5. ``meta``: the file's tile
    graphs when the caller has them (else read from the file)."""
    import base64

    if meta is None:
        meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    tk = card["tile_kernels"]
    prior, backbone = (base64.b64decode(meta[tk[k]]) for k in ("prior", "backbone"))
    graph, spec = tile_int8.int8_graph(prior, backbone, tk["offsets"], feeds)
    add_metadata(path, {tile_int8.META_INT8: base64.b64encode(graph).decode("ascii")})
    tk["int8"] = {"graph": tile_int8.META_INT8, **spec}
    calibration = tk["int8"]["calibration"]
    if data:
        calibration["data"] = data
    if calibration["candidates"] < tile_int8.PER_CLASS:
        print(f"python -m model_core: warning: the int8 variant is calibrated on only {calibration['candidates']} "
              f"patches of {tile_int8.PATCH}² pixels ({data or 'the calibration data'}; up to {tile_int8.PER_CLASS} "
              "per contrast class when there are more): its value ranges may not cover other scenes; calibrate on a "
              "larger PAN/MS pair (int8 --pan/--ms) or the training data", file=sys.stderr)


def write_models_readme(models_dir: str | Path) -> Path:
    """``<models_dir>/README.md``: the bundled cards in words (the JSON cards are authoritative). Written by
    ``python -m model_core export`` when it exports into the plugin's models folder."""
    models_dir = Path(models_dir)
    lines = ["# Bundled models", "",
             "One KSDiff model per sensor, each `<sensor>.onnx` with its model card `<sensor>.json` (also embedded "
             "in the ONNX metadata as `model_card`; the plugin refuses a file whose sha256 differs from its card). "
             "Generated from the cards by `python -m model_core export` (`make train`), which writes a model and its "
             "card once; `make bench` never rewrites them (its measurements: `docs/BENCHMARKS.md`, "
             "`bench/results.json`). Held-apart test areas: `model_core/datacache.py`. Reproduce a model with "
             "`make train SENSOR=<key>`. A card's evaluation is `python -m model_core export`'s, once, on the sensor "
             "config's `test` case (`model_core/evaluate.py`; the case fused in one piece, float32, no int8, no noise "
             "pull, no tiles): cards exported before 2026-12-06 (see their `measured_by`) score the network alone, "
             "without the back-projection step onto the MS the plugin adds to every tile a model fuses "
             "(`ksdiff_qgis/engine/consistency.py`), against Brovey, GSA and MTF-GLP-HPM; cards exported since "
             "score the output with that step and the soft floor (the network alone as `network_alone_ERGAS`) against "
             "MTF-GLP-FS too. The plugin's own figures, through its pipeline in float32 and int8, are `make bench`'s: "
             "`docs/BENCHMARKS.md`, `bench/results.json`.", ""]
    for p in sorted(models_dir.glob("*.onnx")):
        card = json.loads(p.with_suffix(".json").read_text())
        tr = card.get("training", {})
        lines += [f"## `{card['sensor']}` — {card.get('sensor_name', '')}", "",
                  f"- Network: KSDiff around {card.get('backbone')}, {card.get('parameters', 0):,} parameters, "
                  f"{p.stat().st_size / 1e6:.1f} MB; bands {', '.join(card['bands'])}; ratio {card['ratio']}; "
                  f"values / {card['scale']:g}; receptive-field margin {card['margin']} px"
                  + ("; on CPU the plugin runs each tile's kernels on the plain backbone (the file also holds "
                     "the prior and backbone graphs: `model_core/tile_graphs.py`)" if "tile_kernels" in card else "")
                  + (f"; it also holds an int8 copy (`model_core/tile_int8.py`, activation scales calibrated on "
                     f"{card['tile_kernels']['int8']['calibration']['patches']} training patches, per contrast class; "
                     "run with PRECISION=int8)." if "int8" in card.get("tile_kernels", {}) else "."),
                  f"- Training: config `model_core/configs/{tr.get('config')}`, "
                  f"stages {', '.join(tr.get('stages', []))}, {tr.get('steps')} steps, "
                  f"{tr.get('seconds', 0) / 60:.0f} min on a shared 2-core CPU, seed {tr.get('seed')}, "
                  f"git {str(tr.get('git_revision', ''))[:10]}."
                  + (f" Started from the trained bare backbone of `{tr['backbone_from'].split(':')[0]}` "
                     "(not counted in the steps and minutes)." if tr.get("backbone_from") else ""), "- Data:"]
        lines += [f"  - {d.get('name')}: {d.get('how')} (licence: {d.get('licence')})" for d in tr.get("data", [])]
        metrics = card.get("metrics") or {}
        scenes = metrics.get("scenes", {})
        if scenes:
            lines.append(f"- Evaluation in the card (measured by {metrics.get('measured_by', 'its exporter')}"
                         + (f", {metrics['date_utc']}" if metrics.get("date_utc") else "") + "):")
            for name, m in scenes.items():
                lines.append("  - " + name + ": " + ", ".join(f"{k} {v}" for k, v in m.items() if v is not None))
        else:
            lines.append("- No evaluation in the card (see the card's data notes).")
        lines.append("")
    out = models_dir / "README.md"
    out.write_text("\n".join(lines))
    return out


def training_record(ck: dict[str, Any], sources: list[dict[str, str]], git_revision: str) -> dict[str, Any]:
    cfg = ck["config"]
    path = Path(cfg.get("config_path", ""))
    record = {"config": path.name, "stages": [s["name"] for s in cfg["stages"]],
              "steps": int(ck["step"]), "seconds": round(float(ck.get("seconds", 0.0)), 1), "seed": cfg["seed"],
              "git_revision": git_revision, "data": sources}
    if path.name and path.resolve().parent != CONFIG_DIR.resolve():
        # a user's own config: where it is, for `python -m model_core int8` (a bundled one is found by its name)
        record["config_path"] = str(path.absolute())
    if cfg.get("backbone_from"):
        spec = backbone_spec(cfg["backbone_from"])
        name = spec["config"] + (f" seed {cfg['seed']}" if spec.get("same_seed") else "")
        record["backbone_from"] = (f"{name}: the backbone started from the bare backbone this config trains; "
                                   "its steps and time are not counted in steps/seconds")
    return record


def checkpoint_record(checkpoint: str | Path, ck: dict[str, Any], verb: str = "exported") -> dict[str, Any]:
    """The card's training record of the weights in ``checkpoint`` (loaded as ``ck``): the stages up to and including
    its own, the steps and seconds of the earlier stages' final checkpoints beside it plus its own, the revision that
    trained them, and an ``unfinished`` note when it is not the end of its run (``verb``: what is done with it)."""
    from .train import data_sources, git_revision, load_checkpoint

    cfg, checkpoint = ck["config"], Path(checkpoint)
    names = [st["name"] for st in cfg["stages"]]
    upto = names[: names.index(ck["stage"]) + 1] if ck.get("stage") in names else names
    earlier = [load_checkpoint(p) for p in (checkpoint.parent / f"{n}.pt" for n in upto[:-1]) if p.exists()]
    # the revision that trained the weights (older checkpoints lack it: the current one then)
    record = training_record(ck, data_sources(cfg), ck.get("git_revision") or git_revision())
    record["stages"] = upto
    record["steps"] = int(ck["step"]) + sum(int(c["step"]) for c in earlier)
    record["seconds"] = round(float(ck.get("seconds", 0.0)) + sum(float(c.get("seconds", 0.0)) for c in earlier), 1)
    last = cfg["stages"][-1]
    # a weights file (``weights.save_weights``) kept no ``done`` flag before 2026-12-06: the last stage's final step
    # says the same
    done = ck.get("done") or int(ck.get("step", -1)) >= int(last["steps"])
    if not done or ck.get("stage") != last["name"]:
        record["unfinished"] = (f"{verb} from {checkpoint.name}: stage {ck.get('stage')} at step {ck.get('step')}, "
                                f"not the end of the run (its last stage {last['name']}, {last['steps']} steps)")
        # the plugin's warning says where it stopped (``engine.model_card.unfinished_note``)
        record["unfinished_at"] = {"step": record["steps"], "of": sum(int(st["steps"]) for st in cfg["stages"])}
    return record


def mtf_training(cfg: dict[str, Any]) -> str:
    """How the config's training sources vary the MTF around the sensor's nominal one, in words."""
    sources = cfg["data"].get("train", [])
    pan = any(s.get("pan_gains") or s.get("pan_variants") for s in sources)
    ms = any(s.get("ms_gains") for s in sources)
    varied = " and ".join(name for name, on in (("PAN", pan), ("MS", ms)) if on)
    return f"{varied} MTF randomised" if varied else "no MTF randomisation"

