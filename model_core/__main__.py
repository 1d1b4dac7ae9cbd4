"""``python -m model_core train|evaluate|export|adapt|int8|profile`` (see ``--help`` of each)."""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ksdiff_qgis.engine.errors import InputError

if TYPE_CHECKING:
    from ksdiff_qgis.engine.model_card import ModelCard


def _train(a) -> int:
    from .config import load_config, with_seed
    from .train import run

    cfg = load_config(a.config, a.sensor)
    if a.seed is not None:  # paired-seed experiments: same config, another seed, its own run folder
        cfg = with_seed(cfg, a.seed)
    if a.out:
        cfg["train"]["out_dir"] = a.out
    if a.device:
        cfg["train"]["device"] = a.device
    if a.threads:   # not part of a run's identity: a run resumes with other threads
        cfg["train"]["threads"] = a.threads
    from .train import Interrupted

    try:
        with _sigterm_as_interrupt() as term:
            summary = run(cfg, max_steps=a.max_steps)
    except Interrupted as e:   # Ctrl-C: in words, not a traceback (130: the shell's status for SIGINT)
        print(f"python -m model_core train: {e.words()}", file=sys.stderr)
        return _interrupted(term)
    except KeyboardInterrupt:   # before the first step: nothing trained
        print("python -m model_core train: interrupted before any step was trained; the same command runs it again",
              file=sys.stderr)
        return _interrupted(term)
    if summary.get("already_finished"):
        print(f"python -m model_core train: the run in {summary['out_dir']} is already finished (its final checkpoint "
              f"{summary['final_checkpoint']}); nothing was trained. To train it again, delete that folder or give "
              "--out another one", file=sys.stderr)
    stages = [{k: v for k, v in s.items() if k != "losses"} for s in summary["stages"]]
    print(json.dumps({k: v for k, v in summary.items() if k != "stages"} | {"stages": stages}, indent=1))
    return 0


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[list[bool]]:
    """While inside, SIGTERM (timeout, a job scheduler) stops training as Ctrl-C does, so train says where it stopped
    and how the same command resumes (QA141: it ended silently, status 143); the list yielded holds True once a
    SIGTERM came. Only while SIGTERM has its default action (a handler someone else installed is kept)."""
    term: list[bool] = []

    def handler(_signum: int, _frame) -> None:
        term.append(True)
        raise KeyboardInterrupt

    installed = signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    if installed:
        try:
            signal.signal(signal.SIGTERM, handler)
        except ValueError:   # not the main thread
            installed = False
    try:
        yield term
    finally:
        if installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _interrupted(term: list[bool]) -> int:
    """The status of an interrupted train: 130 after Ctrl-C; after a SIGTERM the process ends by it, as without the
    handler (the status ``timeout``, systemd and schedulers expect, as adapt and export end)."""
    if term:
        sys.stderr.flush()
        signal.raise_signal(signal.SIGTERM)
    return 130


def _json_safe(value):
    """``value`` with NaN and infinities as null: strict JSON readers refuse the bare NaN token."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _evaluate(a) -> int:
    from .config import load_config, sensor_spec, sensor_test_config
    from .datacheck import card_layout, checked
    from .evaluate import evaluate, onnx_runner, torch_runner
    from .train import model_from_checkpoint

    if a.onnx:
        run, mult, card = onnx_runner(_onnx_model(a.onnx, "score it with --checkpoint").path, a.threads)
        # without --config: the sensor's test case with its own MTF and scale, as export scored the card (gf2's
        # default config is the shared WorldView-2 one)
        cfg = load_config(a.config) if a.config else sensor_test_config(a.sensor or card["sensor"])
        if cfg["sensor"] == card["sensor"] == "generic":   # scored with the layout it was trained with
            cfg.setdefault("data_layout", card_layout(card))
        def fits(cfg: dict) -> None:   # the plugin refuses these pairs too (ONNX Runtime's traceback, for the bands)
            case = f"{Path(a.config).name}'s test case (sensor {cfg['sensor']})" if a.config else \
                f"{cfg['sensor']}'s test case"
            spec = sensor_spec(cfg)
            if spec.n_bands != len(card["bands"]):
                raise ValueError(f"the model {Path(a.onnx).name} expects {len(card['bands'])} MS bands "
                                 f"({', '.join(card['bands'])}); {case} has {spec.n_bands}: score it on data of its "
                                 "bands (--config, --sensor)")
            if spec.ratio != card["ratio"]:
                raise ValueError(f"the model was trained for ratio {card['ratio']}; {case} has ratio {spec.ratio}")

        if cfg["sensor"] != "generic":   # a table sensor's ratio needs no data: said first, with or without it
            fits(cfg)
        cfg = checked(cfg, parts=("test.",))
        fits(cfg)
        src = str(a.onnx)
    else:
        model, ck = model_from_checkpoint(a.checkpoint)
        run, mult = torch_runner(model)
        cfg = ck["config"] if not a.config else load_config(a.config)
        if cfg["sensor"] == ck["config"]["sensor"] == "generic" and "data_layout" in ck["config"]:
            cfg.setdefault("data_layout", ck["config"]["data_layout"])
        cfg = checked(cfg, parts=("test.",))
        src = str(a.checkpoint)
    torch.set_num_threads(a.threads)
    res = evaluate(run, mult, cfg)
    res["model"] = src
    text = json.dumps(_json_safe(res), indent=1)
    Path(a.out).write_text(text + "\n") if a.out else print(text)
    return 0


def _export(a) -> int:
    from ksdiff_qgis.engine.model_card import MODELS_DIR

    from .config import default_config_path, is_bundled_recipe
    from .datacheck import check_held_apart
    from .export import check_out, checkpoint_record, export, mtf_training, staged, write_models_readme
    from .train import model_from_checkpoint

    if a.sensor:
        from .config import final_checkpoint, load_config

        cfg = load_config(None, a.sensor)
        a.checkpoint = final_checkpoint(cfg)
        if cfg["sensor"] != a.sensor:  # a network shared by several sensors (e.g. the 4-band ratio-4 one)
            a.as_sensor = a.as_sensor or a.sensor
    if a.out:   # before any work: an existing model is replaced only on request, a missing folder is not made
        check_out(a.out, a.overwrite)
    model, ck = model_from_checkpoint(a.checkpoint)
    rec = checkpoint_record(a.checkpoint, ck)   # the exported weights: its stages and steps, not the whole run's
    if a.sensor:   # what `make train SENSOR=...` runs (a seed variant names its base config in the checkpoint)
        rec["config"] = default_config_path(a.sensor).name
    # export options are read from the config as it is now (a run's checkpoint keeps the config it trained with)
    export_opts = load_config(None, a.sensor).get("export") if a.sensor else None
    cfg = dict(ck["config"], export=export_opts) if export_opts else ck["config"]
    target = a.as_sensor or cfg["sensor"]
    out = Path(a.out or MODELS_DIR / f"{target}.onnx")
    bundled = out.resolve().parent == MODELS_DIR.resolve()
    if not a.out and not a.sensor and not out.exists():   # `make train SENSOR=…` may add one; nothing else
        replace = " to replace (--replace-bundled)" if a.replace_bundled else ""
        raise ValueError(f"sensor {target} has no bundled model{replace}: give --out FILE.onnx (then the plugin's "
                         "MODEL)")
    if not a.out and not (a.sensor or a.replace_bundled or is_bundled_recipe(ck["config"], a.checkpoint, target)):
        # a smoke run or any other checkpoint used to replace the plugin's bundled model silently
        raise ValueError(f"{a.checkpoint} was not trained by the bundled {target} model's recipe (make train "
                         f"SENSOR={target}); without --out, export would replace the bundled model: give --out "
                         "FILE.onnx, or --replace-bundled to replace it on purpose")
    if a.as_sensor:  # one network serving several sensors of the same layout (its card says so)
        from ksdiff_qgis.engine.sensors import get_sensor

        from .config import gains_words, sensor_spec

        # the network's layout: the table's, or for a generic run the one measured from its data (``data_layout``)
        trained, target_spec = sensor_spec(cfg), get_sensor(a.as_sensor)
        if target_spec.generic:
            raise ValueError("--as-sensor generic: a generic model's layout is measured from its training data; "
                             "export a run of `sensor: generic` without --as-sensor")
        generic = trained.key == "generic"   # filled in from data_layout: its ``generic`` property is False
        if (trained.n_bands, trained.ratio) != (target_spec.n_bands, target_spec.ratio):
            measured = " (measured from its data)" if generic else ""
            raise ValueError(f"--as-sensor {a.as_sensor}: {target_spec.name} has {target_spec.n_bands} MS bands at "
                             f"ratio {target_spec.ratio}; the network of {Path(a.checkpoint).name} takes "
                             f"{trained.n_bands} at ratio {trained.ratio}{measured}: give a sensor of that layout")
        mtf = (f"MTF gains {gains_words(trained.mtf_ms)} for MS, {trained.mtf_pan:g} for PAN" if generic
               else f"{trained.name}'s nominal MTF")
        rec["serves_sensor"] = (f"{target_spec.key}: the {Path(cfg.get('config_path', '')).name} network (trained "
                                f"with {mtf}, {mtf_training(cfg)}) {'bundled' if bundled else 'exported'} for this "
                                "sensor")
        cfg = dict(cfg, sensor=target_spec.key)
    if "unfinished" in rec:   # a smoke run or a stopped one: the card says so, and it is never bundled
        print(f"python -m model_core export: warning: {rec['unfinished']}", file=sys.stderr)
        if not a.out:
            raise ValueError("an unfinished run is not exported into the bundled models: give --out")
    if not a.no_evaluate:   # the card calls its test case held apart: it must be
        check_held_apart(cfg)
    if bundled:
        print(f"python -m model_core export: {'replacing' if out.exists() else 'adding'} the bundled {target} model "
              f"({out}, its card and {MODELS_DIR / 'README.md'}) with {a.checkpoint}", file=sys.stderr)
    metrics = None if a.no_evaluate else _export_metrics(model, cfg)
    with staged(out) as path:   # nothing half-written: the model and its card replace the old ones together
        card = export(model, cfg, path, rec, metrics)
    if bundled:
        write_models_readme(MODELS_DIR)
        if a.sensor:   # bundled: its weights ship too, so `adapt --sensor` starts from it without training
            from .weights import save_weights, weights_path

            save_weights(ck, weights_path(rec["config"]))
    print(json.dumps(_card_summary(out, card), indent=1))
    return 0


def _onnx_model(path: str, checkpoint_hint: str) -> ModelCard:
    """``evaluate --onnx`` / ``int8 --model``: an ONNX file with its card beside it, checked before any work as the
    plugin checks MODEL (``load_card``: the card's fields, the copy inside the file, the sha256), so int8 never
    re-signs an edited card or a corrupt file (QA141); a .pt file is said to be a training checkpoint
    (``checkpoint_hint``: what to do with it). Raises ValueError / InputError."""
    from ksdiff_qgis.engine.model_card import load_card

    p = Path(path)
    if p.suffix.lower() != ".onnx" and p.is_file():
        hint = f" ({p.name} is a training checkpoint: {checkpoint_hint})" if p.suffix.lower() == ".pt" else ""
        raise ValueError(f"{p} is not an ONNX file: give the model's .onnx file, its card <name>.json beside it{hint}")
    return load_card(p)


def _card_summary(out: Path, card: dict) -> dict:
    """What export wrote, in a few lines: the card itself (its path is given) holds the int8 scale tables, thousands of
    lines it printed whole."""
    training = card.get("training", {})
    summary = {"model": str(out), "card": str(out.with_suffix(".json")), "sensor": card["sensor"],
               "bands": card["bands"], "ratio": card["ratio"], "onnx_sha256": card["onnx_sha256"],
               "training": {k: training[k] for k in ("config", "stages", "steps", "unfinished") if k in training}}
    int8 = card.get("tile_kernels", {}).get("int8")
    summary["int8_calibration"] = int8["calibration"] if int8 else None
    keys = ("ERGAS", "SAM", "network_alone_ERGAS", "best_classical_ERGAS", "best_classical_method", "HQNR")
    summary["metrics"] = {name: {k: m[k] for k in keys if k in m}
                          for name, m in ((card.get("metrics") or {}).get("scenes") or {}).items()} or None
    return summary


def _export_metrics(model, cfg) -> dict | None:
    """The card's evaluation numbers: the exported network on its config's held-apart test case."""
    from .evaluate import card_metrics, evaluate, torch_runner

    try:
        res = evaluate(*torch_runner(model), cfg)
    except (OSError, FileNotFoundError) as e:   # no imagery (`make data` not run): the card says so
        print(f"export: not evaluated ({e}); the card's metrics stay empty", file=sys.stderr)
        return None
    return card_metrics(res, cfg["sensor"], "python -m model_core export (the config's held-apart test case, "
                                            "PyTorch weights = the ONNX graph within 1e-4)")


def _adapt(a) -> int:
    from .adapt import adapt

    if not a.checkpoint and not a.sensor:
        raise SystemExit("adapt: give --checkpoint, or --sensor to start from that sensor's bundled model")
    if a.sensor:   # the trainable sensors in words (the plugin's list offered "auto", which adapt cannot detect)
        from .config import check_sensor

        check_sensor({"sensor": a.sensor}, "--sensor")
    base = None
    if not a.checkpoint:
        from .adapt import check_scene
        from .weights import bundled_checkpoint, starting_model

        base, note = starting_model(a.sensor, check_scene(a.pan, a.ms, a.sensor))
        if note:
            print(f"adapt: {note}", file=sys.stderr)
        a.checkpoint = bundled_checkpoint(base)
    try:
        card = adapt(a.checkpoint, a.pan, a.ms, a.out, a.sensor, a.steps, a.lr, a.patch, threads=a.threads,
                     base_model=base, overwrite=a.overwrite, keep_worse=a.keep_worse)
    except KeyboardInterrupt:   # Ctrl-C (train's Interrupted too): in words, not a traceback; adapt cannot resume
        print(f"python -m model_core adapt: interrupted; nothing was kept ({a.out} not written, the temporary folder "
              "removed); the same command starts again from the first step", file=sys.stderr)
        return 130
    print(json.dumps({k: card[k] for k in ("sensor", "onnx_sha256", "training")}, indent=1))
    return 0


def _int8(a) -> int:
    """Add (or replace) the int8 variant of an exported KSDiff model: what `export` adds when the data is there."""
    from .config import card_config, load_config
    from .export import add_int8, calibration_data, int8_calibration, write_card

    loaded = _onnx_model(a.model, f"export it first: python -m model_core export --checkpoint {a.model} --out M.onnx")
    path, card = loaded.path, dict(loaded.data)
    card.pop("onnx_sha256", None)
    if "tile_kernels" not in card:
        raise SystemExit(f"{path.name} has no per-tile kernel graphs (not a KSDiff model exported by this project)")
    if bool(a.pan) != bool(a.ms):
        raise ValueError("give --pan and --ms together (a calibration pair), or neither (the model's training data)")
    pair = (a.pan, a.ms) if a.pan else None
    training = card.get("training") or {}
    config, looked = card_config(training, path)
    if config is None and pair is None:
        # the config names the training data: without --pan/--ms it is what calibrates
        raise FileNotFoundError(
            f"{path.name} was trained from {training.get('config') or 'a config its card does not name'}, which is "
            f"not in {', '.join(map(str, looked)) or 'any place'}: put the config beside the model, or give a "
            "calibration pair with --pan and --ms")
    # with --pan/--ms and no config, the card alone says what calibration needs: the sensor, its ratio and bands
    cfg = dict(load_config(config, None) if config else {}, sensor=card["sensor"])
    if card["sensor"] == "generic":   # the layout it was trained with
        from .datacheck import card_layout

        cfg["data_layout"] = card_layout(card)
    feeds, data = ((_int8_feeds(cfg, card["scale"], pair), calibration_data(cfg, pair)) if config is None
                   else int8_calibration(cfg, card["scale"], pair))
    if not feeds:
        raise SystemExit("no calibration pair: run `make data`, or give --pan and --ms")
    add_int8(path, card, feeds, data=data)
    card = write_card(path, card)
    print(json.dumps({"model": str(path), "onnx_sha256": card["onnx_sha256"],
                      "int8": card["tile_kernels"]["int8"]["calibration"]}, indent=1))
    return 0


def _int8_feeds(cfg: dict, scale: float, pair: tuple[str, str]) -> list[dict]:
    """Calibration patches of ``pair`` alone: no training config to fall back on when it holds none."""
    from . import tile_int8
    from .config import sensor_spec
    from .data.scenes import NoPatchError

    try:
        return tile_int8.calibration_feeds(pair[0], pair[1], cfg["sensor"], scale, ratio=sensor_spec(cfg).ratio)
    except NoPatchError as e:
        raise ValueError(f"{e}; the model's training config is not found to calibrate on its data instead: give a "
                         "larger --pan/--ms pair, or put the config beside the model") from None


def _profile(a) -> int:
    from .profile import main

    res = main(a.out, a.tile, a.threads)
    print(json.dumps(res, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    from .train import DEVICES

    ap = argparse.ArgumentParser(prog="python -m model_core", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train every stage of a config (resumes unfinished stages)")
    t.add_argument("--config", help="YAML config (path or name in model_core/configs)")
    t.add_argument("--sensor", help="use the sensor's default config (KSDiff around FusionNet)")
    t.add_argument("--out", help="run directory (default: the config's train.out_dir)")
    t.add_argument("--device", choices=DEVICES,
                   help="where to train (default: the config's train.device, auto: CUDA when available)")
    t.add_argument("--max-steps", type=_positive, help="train at most this many more steps, from where the run "
                   "stopped, then stop (smoke runs; the same command again trains as many more)")
    t.add_argument("--seed", type=int, help="override the config's seed (run folder gets a _seed<N> suffix)")
    t.add_argument("--threads", type=_positive, help="torch threads (default: the config's train.threads, 2); "
                   "1 each when runs share the cores")
    t.set_defaults(fn=_train)
    e = sub.add_parser("evaluate", help="score a checkpoint or an ONNX file; writes JSON")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a training checkpoint (runs/<config>/<stage>.pt)")
    src.add_argument("--onnx", help="an exported ONNX model with its card beside it (<name>.json), checked as the "
                                    "plugin checks MODEL")
    e.add_argument("--config", help="config whose 'test' section to use (default: the checkpoint's / sensor's)")
    e.add_argument("--sensor", help="with --onnx: the sensor whose test case to use, degraded with its own MTF "
                                    "and scale (default: the card's)")
    e.add_argument("--out", help="JSON output (default: stdout)")
    e.add_argument("--threads", type=_positive, default=2, help="threads (default 2)")
    e.set_defaults(fn=_evaluate)
    x = sub.add_parser("export", help="export a checkpoint to ONNX + model card")
    xs = x.add_mutually_exclusive_group(required=True)
    xs.add_argument("--checkpoint", help="a training checkpoint (runs/<config>/<stage>.pt)")
    xs.add_argument("--sensor", help="the final checkpoint of the sensor's default config (what make train trained)")
    x.add_argument("--out", help="ONNX file to write, its card beside it (default: the bundled "
                                 "ksdiff_qgis/resources/models/<sensor>.onnx, only for a checkpoint of that sensor's "
                                 "bundled recipe or with --replace-bundled); its folder must exist")
    x.add_argument("--overwrite", action="store_true", help="replace an existing --out and its card")
    x.add_argument("--replace-bundled", action="store_true",
                   help="without --out: replace the bundled model with a checkpoint of another recipe")
    x.add_argument("--as-sensor", help="write the card for another sensor of the same band layout and ratio")
    x.add_argument("--no-evaluate", action="store_true",
                   help="leave the card's metrics empty (default: score the config's held-apart test case)")
    x.set_defaults(fn=_export)
    ad = sub.add_parser("adapt", help="fine-tune a checkpoint on one scene (target-adaptive); export ONNX + card")
    ad.add_argument("--checkpoint", help="a trained checkpoint (make train: runs/<config>/<stage>.pt); default: the "
                                         "bundled model of --sensor (its weights ship in model_core/weights)")
    ad.add_argument("--pan", required=True, help="the scene's PAN raster (one band)")
    ad.add_argument("--ms", required=True, help="the scene's MS raster, overlapping the PAN")
    ad.add_argument("--out", required=True, help="ONNX file to write, ending in .onnx (its card beside it): the "
                                                 "plugin's MODEL; its folder must exist")
    ad.add_argument("--overwrite", action="store_true", help="replace an existing --out and its card")
    ad.add_argument("--keep-worse", action="store_true",
                    help="write the adapted model even when the self-check on the scene does not score it better "
                         "than the model it started from")
    ad.add_argument("--sensor", help="sensor key of the scene (default: the checkpoint's); without --checkpoint, "
                                     "the bundled model of this sensor is adapted")
    ad.add_argument("--steps", type=_positive, default=200, help="fine-tuning steps (default 200)")
    ad.add_argument("--lr", type=float, default=1e-4, help="learning rate (default 1e-4)")
    ad.add_argument("--patch", type=_positive, default=64, help="PAN patch side, pixels (default 64)")
    ad.add_argument("--threads", type=_positive, help="torch threads (default: the checkpoint's config's "
                    "train.threads); 1 each when runs share the cores")
    ad.set_defaults(fn=_adapt)
    q = sub.add_parser("int8", help="add the int8 CPU variant to an exported KSDiff model (calibrated on a pair)")
    q.add_argument("--model", required=True, help="an exported KSDiff ONNX file (its card beside it)")
    q.add_argument("--pan", help="calibration PAN (default: the training data of the model's config, found where "
                                  "export recorded it, beside the model or in model_core/configs); with --pan/--ms "
                                  "the config is not needed")
    q.add_argument("--ms", help="calibration MS, with --pan")
    q.set_defaults(fn=_int8)
    p = sub.add_parser("profile", help="parameters, FLOPs/pixel and ONNX Runtime time per tile")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "PROFILE.json"),
                   help="JSON to write (default: model_core/PROFILE.json, the repository's own profile, replaced)")
    p.add_argument("--tile", type=_positive, default=512, help="tile side, PAN pixels (default 512)")
    p.add_argument("--threads", type=_positive, default=1, help="ONNX Runtime threads (default 1)")
    p.set_defaults(fn=_profile)
    a = ap.parse_args(argv)
    if a.cmd == "train" and not (a.config or a.sensor):
        ap.error("train needs --config or --sensor")
    try:
        return a.fn(a)
    except (FileNotFoundError, ValueError, KeyError, InputError) as e:
        if os.environ.get("MODEL_CORE_DEBUG"):
            raise
        # what a user can fix (a path, a value, a missing key): one line, not a traceback
        print(f"python -m model_core {a.cmd}: {_why(e)} (MODEL_CORE_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 2


def _why(error: Exception) -> str:
    """An error in words: a KeyError's own message as is (e.g. an unknown sensor), a bare key as what is missing."""
    if not isinstance(error, KeyError):
        return str(error)
    key = error.args[0] if error.args else ""
    return key if isinstance(key, str) and " " in key else f"missing {key!r}"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
