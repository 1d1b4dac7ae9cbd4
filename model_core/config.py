"""Training configurations: YAML files in ``model_core/configs`` (one per sensor/backbone/method).

A config may name the configs it builds on with ``base:`` (one path or a list, relative to the file
naming them, else to ``model_core/configs``). The bases are merged in order, then the file's own keys on
top: mappings merge key by key, anything else (lists such as ``stages`` or ``data.train``, numbers,
strings) is replaced whole. ``configs/base/<method>.yaml`` hold what a method trains with,
``configs/sensors/<sensor>.yaml`` the data of a sensor; a file in ``configs/`` names one of each and adds
what is its own. A config that uses ``base:`` and gives no ``train.out_dir`` runs in ``runs/<its name>``.
A plain complete YAML (no ``base:``) loads exactly as before.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .configtypes import check_types
from .datacache import data_dir

if TYPE_CHECKING:
    from ksdiff_qgis.engine.sensors import Sensor

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


# sensors whose bundled model came from another config than ``<sensor>_ksdiff_fusionnet.yaml``
# (chosen on validation; see README "Experiments")
DEFAULT_CONFIGS = {# the adaptive recipe on HPM with the step, trained on the Landsat scene and Sentinel-2
                   # with Landsat-like PANs, a fifth of the batches one reduction further down (the self-check's
                   # scale); chosen on other ground than that scene (docs/VALIDATION.md), then refitted on the
                   # scene's validation rows too
                   "landsat8": "landsat8_ksdiff_hpm_step1_prered_trval_seed2.yaml",
                   # one adaptive network for the 4-band ratio-4 sensors (issue 12): trained once, bundled per
                   # sensor; its residual sits on an in-graph HPM fusion and it is trained on the output after
                   # the plugin's consistency step too, and a fifth of its batches one Wald reduction further
                   # down (the self-check's scale); started from its bare backbone of the same seed (warm, its
                   # convolutions at a tenth of the rate); the recipe chosen on Sentinel-2 windows it never saw,
                   # then refitted on all data (WorldView-2 pairs 1 and 2, every window); seed 0 of two
                   "wv2": "rr4_ksdiff_hpm_step1_prered_trval_warm_seed0.yaml",
                   "qb": "rr4_ksdiff_hpm_step1_prered_trval_warm_seed0.yaml",
                   "gf2": "rr4_ksdiff_hpm_step1_prered_trval_warm_seed0.yaml",
                   # the same adaptive recipe on eight bands, trained with a real PAN too (WorldView-2 pair 1's
                   # bands spread over eight) and chosen on both WorldView-3 validation sources
                   "wv3": "wv3_ksdiff_realpan_seed0.yaml"}


def default_config_path(sensor: str) -> Path:
    """The config ``make train SENSOR=...`` uses (the one that trained the bundled model): KSDiff around
    FusionNet, both stages."""
    from ksdiff_qgis.engine.sensors import SENSORS

    if sensor not in SENSORS:
        raise ValueError(f"unknown sensor {sensor!r}; known: {', '.join(SENSORS)}")
    path = CONFIG_DIR / DEFAULT_CONFIGS.get(sensor, f"{sensor}_ksdiff_fusionnet.yaml")
    if not path.exists():   # a sensor of the table nobody trained a model for (pleiades, generic, ...)
        raise ValueError(f"no default config for sensor {sensor}: give --config (your own config: "
                         "model_core/README.md, 'Train a model for your own sensor')")
    return path


def sensor_test_config(sensor: str) -> dict[str, Any]:
    """The config whose held-apart test case scores a model of ``sensor``: the sensor's default config, set to that
    sensor. A network shared by several sensors (the 4-band ratio-4 one is bundled for wv2, qb and gf2) was trained
    with one sensor's config; ``model_core export`` scored each sensor's card on that config's test case degraded
    with the card's own sensor's MTF gains and value scale, so a re-measure does too (``load_config(None, "gf2")``
    alone is the WorldView-2 setup: wv2's MTF, 11 bits)."""
    return dict(load_config(None, sensor), sensor=sensor)


def sensor_spec(cfg: dict[str, Any]) -> Sensor:
    """The sensor a config trains for: the table's, or for ``sensor: generic`` the layout measured from its data
    (``datacheck.checked`` puts it in ``data_layout``: bands, ratio, value scale) with its MTF gains
    (``mtf_gains``). A table sensor's ``data_layout`` may set its value scale alone (``adapt``: the scene's)."""
    from dataclasses import replace

    from ksdiff_qgis.engine.sensors import get_sensor

    sensor = get_sensor(cfg["sensor"])
    layout = cfg.get("data_layout")
    if not sensor.generic:
        return replace(sensor, scale=float(layout["scale"])) if layout and layout.get("scale") else sensor
    if not layout:
        raise ValueError("sensor generic: its bands, ratio and value scale come from the config's data "
                         "(model_core.datacheck.checked), which was not read")
    n = int(layout["bands"])
    ms, pan = mtf_gains(cfg, n)
    return replace(sensor, band_names=tuple(layout.get("band_names") or (f"Band {i}" for i in range(1, n + 1))),
                   ratio=int(layout["ratio"]), mtf_ms=ms, mtf_pan=pan, scale=float(layout["scale"]),
                   name=f"Generic (any bands and ratio; MTF gains {gains_words(ms)} for MS, {pan:g} for PAN)")


def gains_words(gains: tuple[float, ...]) -> str:
    """MTF gains in words: one number when every band has it."""
    return ", ".join(f"{g:g}" for g in (gains[:1] if len(set(gains)) == 1 else gains))


def mtf_gains(cfg: dict[str, Any], n: int) -> tuple[tuple[float, ...], float]:
    """(MS gains per band, PAN gain) a generic sensor's ``n`` bands are Wald-degraded with: the config's ``mtf_ms``
    (one for all bands, or one per band) and ``mtf_pan``, else those of a generic card it scores (``data_layout``),
    else the generic 0.3 / 0.15. Raises ValueError (a list of another length than the bands)."""
    from ksdiff_qgis.engine.sensors import GENERIC_MTF_MS, GENERIC_MTF_PAN

    layout = cfg.get("data_layout") or {}
    ms = cfg.get("mtf_ms", layout.get("mtf_ms", GENERIC_MTF_MS))
    pan = cfg.get("mtf_pan", layout.get("mtf_pan", GENERIC_MTF_PAN))
    ms = [ms] * n if isinstance(ms, (int, float)) else list(ms)
    if len(ms) == 1:
        ms = ms * n
    if len(ms) != n:
        raise ValueError(f"mtf_ms gives {len(ms)} MS MTF gains; the data have {n} bands: give one gain for all, or one "
                         "per band in the MS's order")
    return tuple(float(g) for g in ms), float(pan)


def check_mtf_keys(cfg: dict[str, Any], path: str | Path) -> None:
    """``mtf_ms`` / ``mtf_pan``: a generic sensor's MTF gains at Nyquist, each between 0 and 1; a named sensor's are
    known (the plugin's sensor table), so they are refused there rather than ignored. Raises ValueError."""
    from ksdiff_qgis.engine.sensors import get_sensor

    given = [k for k in ("mtf_ms", "mtf_pan") if k in cfg]
    if not given:
        return
    name = Path(path).name
    sensor = get_sensor(cfg["sensor"])
    if not sensor.generic:
        raise ValueError(f"{name}: {' and '.join(given)} set the MTF gains of `sensor: generic`; sensor {sensor.key}'s "
                         f"are known ({gains_words(sensor.mtf_ms)} for MS, {sensor.mtf_pan:g} for PAN): remove "
                         f"{' and '.join(given)}, or train with `sensor: generic`")
    ms = cfg.get("mtf_ms", [])
    values = [*(ms if isinstance(ms, list) else [ms]), *([cfg["mtf_pan"]] if "mtf_pan" in cfg else [])]
    if ("mtf_ms" in cfg and ms == []) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                 and 0.0 < v < 1.0 for v in values):
        raise ValueError(f"{name}: mtf_ms {cfg.get('mtf_ms')!r} / mtf_pan {cfg.get('mtf_pan')!r}: MTF gains at "
                         "Nyquist are numbers between 0 and 1 (exclusive); mtf_ms one for all bands or a list, one "
                         "per band")


def load_config(path: str | Path | None = None, sensor: str | None = None) -> dict[str, Any]:
    """Load a YAML config (by path, or the default one for ``sensor``) and fill defaults."""
    if path is None:
        if sensor is None:
            raise ValueError("give a config path or a sensor")
        path = default_config_path(sensor)
    path = Path(path)
    if not path.exists() and (CONFIG_DIR / path).exists():
        path = CONFIG_DIR / path
    cfg = resolve_bases(path)
    check_types(cfg, path)   # every value's type and range, before any default, raster or run folder
    check_sensor(cfg, path)
    cfg = with_defaults(cfg)
    if path.resolve().parent != CONFIG_DIR.resolve():   # the repository's own configs define what is known
        check_keys(cfg, path)
    check_model_keys(cfg, path)
    check_mtf_keys(cfg, path)
    # absolute: export records where the config is (the card's training.config_path), and ``int8`` finds it there
    # from any working folder (a bare name was looked up in the working folder: "No such file ... my_sensor.yaml")
    cfg["config_path"] = str(path.absolute())
    return cfg


def check_sensor(cfg: dict[str, Any], path: str | Path) -> None:
    """A config trains for one sensor of the table: ``sensor: auto`` (the plugin's choice from a product's metadata)
    was refused as "unknown sensor 'auto'; known sensors: auto, …", a list that offered it. Raises ValueError naming
    the sensors a model trains for."""
    from ksdiff_qgis.engine.sensors import AUTO, SENSORS

    key = cfg.get("sensor")
    if key in SENSORS:
        return
    trainable = ", ".join(SENSORS)
    if key is None:
        raise ValueError(f"{Path(path).name} names no sensor: add `sensor:` with one of {trainable}")
    if key == AUTO:
        raise ValueError(f"{Path(path).name}: sensor auto is the plugin's choice from a product's metadata, not a "
                         f"sensor a model is trained for: give one of {trainable} (generic: bands, ratio and scale "
                         "from the data)")
    raise ValueError(f"{Path(path).name}: unknown sensor {key!r}; a model is trained for one of {trainable}")


def card_config(training: dict[str, Any], model: str | Path) -> tuple[Path | None, list[Path]]:
    """The training config a model card names, and every place it was looked for: where export recorded it
    (``training.config_path``, cards since 2026-12-07), beside ``model``, in model_core/configs, in the working
    folder (``training.config``: its file name). (None, places) when it is in none of them."""
    name = training.get("config") or ""
    places = [Path(training["config_path"])] if training.get("config_path") else []
    if name:
        places += [Path(model).absolute().parent / name, CONFIG_DIR / name, Path(name).absolute()]
    places = list(dict.fromkeys(places))
    return next((p for p in places if p.is_file()), None), places


# keys the code reads that no bundled config sets, by section (``_section``)
EXTRA_KEYS = {"": {"config_path",
                   "data_layout",   # the generic sensor's bands, ratio and scale, measured (``datacheck``)
                   "mtf_ms", "mtf_pan"},   # a generic sensor's own MTF gains (``sensor_spec``)
              "data": {"root",
                       "pancollection"},   # PanCollection HDF5 files instead of rasters (``data.pancollection``)
              "data.pancollection": {"train", "val", "name", "licence"},
              "source": {"root", "name",
                         "licence"}}   # a data source's licence, for the model card (``train.data_sources``)
# the sections every data source may sit in: one set of keys for all of them
SOURCES = {"data.train[]", "data.val[]", "data.val", "test.reduced", "test.full", "data.fullres.sources[]"}
# below these, keys are not the configs' to check: the network's own parameters (its constructor checks them), what
# the code measures or calibrates
OPAQUE = {"model", "data_layout", "export.int8"}
_KNOWN: dict[str, set[str]] = {}


def _section(path: str) -> str:
    """The section a mapping at ``path`` ("data.train[]", "stages[]") is: every data source is one ("source")."""
    return "source" if path in SOURCES else path


def _section_words(section: str) -> str:
    """A section as the user writes it."""
    return {"": "the top level", "source": "a data source (data.train / data.val / test.reduced / test.full entries)",
            "stages[]": "a stage (an entry of stages)"}.get(section, repr(section.replace("[]", "")))


def _keys_by_section(value: Any, path: str = "", out: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    """Every mapping key in ``value`` by the section it sits in (``_section``), nested in mappings and lists (not
    below ``OPAQUE`` paths)."""
    out = {} if out is None else out
    if path in OPAQUE:
        return out
    if isinstance(value, dict):
        out.setdefault(_section(path), set()).update(map(str, value))
        for k, v in value.items():
            _keys_by_section(v, f"{path}.{k}" if path else str(k), out)
    elif isinstance(value, list):
        for v in value:
            _keys_by_section(v, f"{path}[]", out)
    return out


def known_keys() -> dict[str, set[str]]:
    """The keys each section of the repository's configs uses (resolved, with defaults), and the few only code
    reads."""
    if not _KNOWN:
        for f in sorted(CONFIG_DIR.glob("*.yaml")):
            for section, keys in _keys_by_section(with_defaults(resolve_bases(f))).items():
                _KNOWN.setdefault(section, set()).update(keys)
        for section, keys in EXTRA_KEYS.items():
            _KNOWN.setdefault(section, set()).update(keys)
    return _KNOWN


def check_keys(cfg: dict[str, Any], path: Path) -> None:
    """A key no config of the repository uses is most likely a typo ("warmpu", "bacth"): refused by name, where it
    used to be ignored silently and the run trained with the default instead. So is a known key in a section that
    does not read it (``train: {lr: 0.1}``: lr is a stage's): it was ignored as silently. Raises ValueError."""
    known = known_keys()
    everywhere = set().union(*known.values())
    unknown, misplaced = set(), []
    for section, keys in _keys_by_section(cfg).items():
        allowed = known.get(section, everywhere)   # a section no config has: any known key
        for key in sorted(keys - allowed):
            homes = [s for s, ks in sorted(known.items()) if key in ks]
            if not homes:
                unknown.add(key)
            else:
                misplaced.append(f"{key!r} is not a key of {_section_words(section)}; it belongs in "
                                 + " or ".join(map(_section_words, homes)))
    said = []
    if unknown:
        said.append(f"unknown key(s) {', '.join(map(repr, sorted(unknown)))} (a typo? the keys the configs in "
                    "model_core/configs use are the known ones)")
    said += misplaced
    if said:
        raise ValueError(f"{path.name}: {'; '.join(said)}; it would be ignored: move it or remove it"
                         if misplaced and not unknown else f"{path.name}: {'; '.join(said)}")


def check_model_keys(cfg: dict[str, Any], path: str | Path) -> None:
    """A ``model:`` key the network's constructor does not take (``nets.model_keys``: "widht") is refused by name as
    ``check_keys`` refuses other typos, before anything is written: it used to end in a raw TypeError after the run
    folder's config.json was written (KSDiff), or be ignored silently (a bare backbone). Raises ValueError."""
    from .nets import model_keys

    known = model_keys(cfg["method"], cfg.get("backbone", "fusionnet"))
    unknown = sorted(set(map(str, cfg.get("model") or {})) - known)
    if unknown:
        net = f"{cfg['method']} around {cfg.get('backbone')}" if cfg["method"] == "ksdiff" else cfg["method"]
        raise ValueError(f"{Path(path).name}: unknown model key(s) {', '.join(map(repr, unknown))} (a typo? the "
                         f"{net} network takes {', '.join(sorted(known))})")


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping: PyYAML keeps the last one silently, so a
    second ``base:`` (or ``data:``) in a config would quietly train another recipe than the one the file names."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice in one mapping",
                                                    key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def merge(under: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``under``: mappings merge recursively, every other value replaces."""
    out = copy.deepcopy(under)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def resolve_bases(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The YAML at ``path`` with its ``base:`` configs merged underneath (recursively), ``base`` removed."""
    path = Path(path).resolve()
    if path in _seen:
        raise ValueError(f"config {path.name}: circular base ({' -> '.join(p.name for p in _seen + (path,))})")
    with open(path) as f:
        cfg = yaml.load(f, Loader=_UniqueKeyLoader) or {}
    if not isinstance(cfg, dict):   # a list or a bare value: refused in words (was "'list' has no attribute 'get'")
        check_types(cfg, path)
    if "base" not in cfg:
        return cfg
    bases = cfg.pop("base")
    if not (isinstance(bases, str) or (isinstance(bases, list) and all(isinstance(b, str) for b in bases))):
        raise ValueError(f"config {path.name}: base is {bases!r}; it must be a config file name or a list of them")
    merged: dict[str, Any] = {}
    for b in [bases] if isinstance(bases, str) else bases:
        bp = path.parent / b
        if not bp.exists():
            bp = CONFIG_DIR / b
        if not bp.exists():
            raise FileNotFoundError(f"config {path.name}: base {b!r} not found beside it or in {CONFIG_DIR}")
        merged = merge(merged, resolve_bases(bp, _seen + (path,)))
    cfg = merge(merged, cfg)
    if not _seen:  # the named config itself: its runs go to runs/<its name> unless it says otherwise
        cfg.setdefault("train", {}).setdefault("out_dir", f"runs/{path.stem}")
    return cfg


def with_defaults(cfg: dict[str, Any]) -> dict[str, Any]:
    cfg = copy.deepcopy(cfg)
    cfg.setdefault("seed", 0)
    cfg.setdefault("backbone", cfg["method"] if cfg["method"] in ("fusionnet", "pannet") else "fusionnet")
    cfg.setdefault("model", {})
    d = cfg.setdefault("data", {})
    d.setdefault("patch", 64)
    d.setdefault("stride", 16)
    d.setdefault("batch", 16)
    t = cfg.setdefault("train", {})
    t.setdefault("val_every", 500)
    t.setdefault("val_batches", 8)
    t.setdefault("ckpt_every", 500)
    t.setdefault("device", "auto")
    t.setdefault("threads", 2)
    t.setdefault("out_dir", f"runs/{cfg['sensor']}_{cfg['method']}" + (
        f"_{cfg['backbone']}" if cfg["method"] == "ksdiff" else ""))
    for st in cfg["stages"]:
        st.setdefault("lr", 1e-3)
        st.setdefault("weight_decay", 1e-4)
        st.setdefault("warmup", 100)
        st.setdefault("min_lr_frac", 0.05)
        st.setdefault("ema", None)
        st.setdefault("grad_clip", 1.0)
    return cfg


def with_seed(cfg: dict[str, Any], seed: int) -> dict[str, Any]:
    """``cfg`` run with another seed in its own folder (``<out_dir>_seed<N>``), as ``train --seed N`` runs it."""
    cfg = copy.deepcopy(cfg)
    cfg["seed"] = seed
    cfg["train"]["out_dir"] = f"{cfg['train']['out_dir']}_seed{seed}"
    return cfg


def backbone_spec(spec: str | dict[str, Any]) -> dict[str, Any]:
    """A config's ``backbone_from`` as a dict: ``{config, same_seed}`` (a bare string names the config alone)."""
    return dict(spec) if isinstance(spec, dict) else {"config": spec}


def final_checkpoint(cfg: dict[str, Any], root: str | Path = "") -> Path:
    """The checkpoint a config's run ends with (its last stage's), under ``root`` (default: relative to the working
    folder, as ``train`` writes it)."""
    return Path(root) / cfg["train"]["out_dir"] / f"{cfg['stages'][-1]['name']}.pt"


def is_bundled_recipe(ck_cfg: dict[str, Any], checkpoint: str | Path, sensor: str) -> bool:
    """Whether ``checkpoint`` (its config ``ck_cfg``) is what ``make train SENSOR=sensor`` trains: the final
    checkpoint of the sensor's default config (``default_config_path``) run from the repository or the working
    folder, or weights trained with that config as it is now (where and how it computed aside: a run of the default's
    base config with ``--seed N`` is the same recipe)."""
    import json

    from .train import _differences

    try:
        default = load_config(default_config_path(sensor))
    except ValueError:   # no default config: the sensor has no bundled recipe
        return False
    here = Path(checkpoint).resolve()
    if any(here == final_checkpoint(default, root).resolve() for root in ("", CONFIG_DIR.parent.parent)):
        return True
    plain = lambda c: json.loads(json.dumps(c, default=str))  # noqa: E731  (tuples as lists, as config.json has them)
    return not _differences(plain(ck_cfg), plain(default))   # where and how it computed aside (train.RESUMABLE)


def data_root(cfg: dict[str, Any]) -> Path:
    """Where real imagery lives: config ``data.root``, else make data's cache (``datacache.data_dir()``)."""
    return Path(cfg["data"].get("root") or data_dir())
