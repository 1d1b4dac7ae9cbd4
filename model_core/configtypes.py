"""The type (and sane range) of every value a training config sets, checked in one place before anything is read
or written.

Wrong types used to surface as Python tracebacks deep in training (``lr: fast``: "'<=' not supported between
float and str", after the run folder's config.json was written; ``steps: "twenty"`` after log.jsonl too), or not at
all (``licence: 4`` ended in the model card as a number). ``check_types`` walks the config (its bases merged, no
defaults yet) along ``SCHEMA`` and raises one ``ValueError`` naming the key path ("stages[0].lr") and what it must
be. Keys the schema does not name are ``config.check_keys``'s (typos) or opaque (``model``: the network's
constructor checks them).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# a plain decimal or scientific number written as text: YAML 1.1 reads 1e-3 (no dot) as the string '1e-3'
_NUMBER_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_SCIENTIFIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


@dataclass(frozen=True)
class Value:
    """A leaf: ``ok(value)`` must hold; ``words`` say what it must be. ``real``: a (float) number, which may also
    be written as number text ('1e-3', what YAML reads from ``lr: 1e-3``) and is converted to a float."""
    ok: Callable[[Any], bool]
    words: str
    real: bool = False


@dataclass(frozen=True)
class Mapping:
    """A mapping whose named keys follow their rules (other keys: not this module's)."""
    fields: dict[str, Any] = field(default_factory=dict)
    words: str = "a mapping (key: value)"


@dataclass(frozen=True)
class ListOf:
    """A list whose every item follows ``item``."""
    item: Any
    words: str
    non_empty: bool = False


@dataclass(frozen=True)
class Either:
    """A value that is one of ``rules`` (the first whose outer type fits is followed)."""
    rules: tuple[Any, ...]
    words: str


def nullable(rule: Any) -> Either:
    """``rule``, or null: for what the code reads as "none" when it is null (``data.fullres: null``, ``init_from:``)."""
    return Either((Value(lambda v: v is None, "null"), rule), f"{rule.words}, or null")


TEXT = Value(lambda v: isinstance(v, str), "text (put it in quotes if YAML reads it as a number)")
BOOL = Value(lambda v: isinstance(v, bool), "true or false")
INT_POS = Value(lambda v: _int(v) and v >= 1, "a whole number of at least 1")
INT_NONNEG = Value(lambda v: _int(v) and v >= 0, "a whole number of at least 0")
NUM = Value(_num, "a number", real=True)
NUM_POS = Value(lambda v: _num(v) and v > 0, "a number above 0", real=True)
NUM_NONNEG = Value(lambda v: _num(v) and v >= 0, "a number of at least 0", real=True)
FRACTION = Value(lambda v: _num(v) and 0 <= v <= 1, "a number from 0 to 1", real=True)
TEXTS = ListOf(TEXT, "a list of texts")
NUMBERS = ListOf(NUM, "a list of numbers")
GAINS = ListOf(Value(lambda v: (_num(v) and 0 < v < 1) or v == "box", "an MTF gain between 0 and 1, or box",
                     real=True),
               "a list of MTF gains (numbers between 0 and 1, or box)")

SOURCE = Mapping({
    "kind": Value(lambda v: v in ("pair", "simulated"), "pair or simulated"),
    "pan": TEXT, "ms": TEXT, "root": TEXT, "name": TEXT, "licence": TEXT,
    "match": TEXTS, "match_pan": TEXTS, "coregister": BOOL, "crop_first": BOOL,
    "pan_gains": GAINS, "ms_gains": GAINS,
    "ms_mix": Either((TEXT, ListOf(NUMBERS, "a matrix (a list of rows of numbers)")),
                     "the name of a band mix or a matrix (a list of rows of numbers)"),
    "pan_ratio": INT_POS, "prereduce": INT_POS, "pan_blur": NUM_NONNEG, "pan_offset": NUM, "value_gain": NUM_POS,
    "pan_weights": NUMBERS, "share": NUM_POS,
    "pan_variants": ListOf(Mapping({"blur": NUM_NONNEG, "weights": NUMBERS}), "a list of mappings {blur, weights}"),
    "rows": ListOf(FRACTION, "two fractions [from, to] of the raster's rows"),
    "window": ListOf(INT_NONNEG, "[column, row, width, height] in pixels"),
}, "a data source (a mapping with kind, pan, ms, ...)")
SOURCES = ListOf(SOURCE, "a list of data sources (each a mapping with kind, pan, ms, ...)")

STAGE = Mapping({
    "name": TEXT, "steps": INT_POS, "lr": NUM_POS, "weight_decay": NUM_NONNEG, "warmup": INT_NONNEG,
    "min_lr_frac": FRACTION,
    "ema": Value(lambda v: v is None or (_num(v) and 0 <= v < 1), "a decay from 0 up to (not including) 1, or null",
                 real=True),
    "grad_clip": Value(lambda v: v is None or (_num(v) and v >= 0), "a number of at least 0, or null (no clipping)",
                       real=True),
    "alternate_every": INT_POS, "fr_batch": INT_POS, "backbone_lr": NUM_NONNEG, "distil_weight": NUM_NONNEG,
    "fr_lambda": NUM_NONNEG, "fr_weight": NUM_NONNEG, "output_weight": NUM_NONNEG, "prior_weight": NUM_NONNEG,
    "fr_spectral": TEXT, "freeze": TEXTS, "sampling_t": BOOL,
}, "a stage (a mapping with name, steps, lr, ...)")

SCHEMA = Mapping({
    "sensor": TEXT, "method": TEXT, "backbone": TEXT, "seed": INT_NONNEG, "config_path": TEXT,
    "init_from": nullable(TEXT),
    "backbone_from": nullable(Either((TEXT, Mapping({"config": TEXT, "same_seed": BOOL})),
                                     "a config name, or a mapping {config, same_seed}")),
    "distil_from": nullable(Mapping({"config": TEXT, "seeds": ListOf(INT_NONNEG, "a list of seeds (whole numbers)")})),
    "model": Mapping(), "export": Mapping(), "data_layout": Mapping(),
    "data": Mapping({
        "root": TEXT, "patch": INT_POS, "stride": INT_POS, "batch": INT_POS, "val_patch": INT_POS,
        "exclude_validation": Value(lambda v: v is None or isinstance(v, bool)
                                    or (isinstance(v, list) and all(_int(i) for i in v)),
                                    "true, or a list of validation window numbers"),
        "train": SOURCES, "val": SOURCES,
        "randomise": nullable(Mapping({"band_gain": NUMBERS, "mirror_margin": NUM_NONNEG, "noise": NUM_NONNEG,
                              "offset": NUM_NONNEG, "quantise": NUM_NONNEG})),
        "fullres": nullable(Mapping({"patch": INT_POS, "stride": INT_POS, "sources": SOURCES})),
        "pancollection": Mapping({"train": TEXT, "val": TEXT, "name": TEXT, "licence": TEXT},
                                 "a mapping {train: train.h5, val: valid.h5}"),
    }),
    "train": Mapping({
        "val_every": INT_POS, "ckpt_every": INT_POS, "val_batches": INT_POS, "threads": INT_POS,
        "device": TEXT, "out_dir": TEXT, "scaled_loss": BOOL,
        "consistency_loss": nullable(Mapping({"border": INT_NONNEG, "plain_weight": NUM_NONNEG,
                                              "sam_weight": NUM_NONNEG})),
    }),
    "test": nullable(Mapping({"reduced": nullable(SOURCE), "full": nullable(SOURCE)})),
    "stages": ListOf(STAGE, "a list of stages (each a mapping with name, steps, lr, ...)", non_empty=True),
}, "a mapping (key: value)")


def _as_numbers(rule: Any, value: Any) -> Any:
    """``value`` with every number text at a ``real`` leaf ('1e-3') made a float, its mappings and lists changed in
    place (the config goes on with the numbers); whole-number leaves are left as written (refused if text)."""
    if isinstance(rule, Value):
        return float(value) if rule.real and isinstance(value, str) and _NUMBER_TEXT.match(value) else value
    if isinstance(rule, Either):
        fitting = next((r for r in rule.rules if _fits(r, value)), None)
        if fitting is not None:   # walked as the check walks it; ms_mix's band mix name stays text
            return _as_numbers(fitting, value)
        return next((v for v in (_as_numbers(r, value) for r in rule.rules) if v is not value), value)
    if isinstance(rule, Mapping) and isinstance(value, dict):
        for key, sub in rule.fields.items():
            if key in value:
                value[key] = _as_numbers(sub, value[key])
    elif isinstance(rule, ListOf) and isinstance(value, list):
        value[:] = [_as_numbers(rule.item, item) for item in value]
    return value


def _fits(rule: Any, value: Any) -> bool:
    """Whether ``value`` has the outer type ``rule`` wants (its items are checked when walked)."""
    if isinstance(rule, Mapping):
        return isinstance(value, dict)
    if isinstance(rule, ListOf):
        return isinstance(value, list) and (bool(value) or not rule.non_empty)
    if isinstance(rule, Either):
        return any(_fits(r, value) for r in rule.rules)
    return rule.ok(value)


def _problem(rule: Any, value: Any, where: str) -> tuple[str, Any, str] | None:
    """(key path, value, what it must be) of the first value under ``where`` that breaks ``rule``; None if none."""
    if not _fits(rule, value):
        return where, value, rule.words
    if isinstance(rule, Either):
        return _problem(next(r for r in rule.rules if _fits(r, value)), value, where)
    if isinstance(rule, Mapping):
        for key, sub in rule.fields.items():
            if key in value:
                found = _problem(sub, value[key], f"{where}.{key}" if where else key)
                if found:
                    return found
    elif isinstance(rule, ListOf):
        for i, item in enumerate(value):
            found = _problem(rule.item, item, f"{where}[{i}]")
            if found:
                return found
    return None


def check_types(cfg: Any, path: str | Path) -> None:
    """Refuse the first value of ``cfg`` (a config as read, bases merged) whose type or range ``SCHEMA`` does not
    allow: one ValueError naming the file, the key path and what the value must be. Number text at a number key
    (``lr: 1e-3``, which YAML reads as the text '1e-3') is first made a float in ``cfg``."""
    _as_numbers(SCHEMA, cfg)
    found = _problem(SCHEMA, cfg, "")
    if not found:
        return
    where, value, words = found
    kind = "a mapping" if isinstance(value, dict) else "a list" if isinstance(value, list) else ""
    shown = repr(value) if len(repr(value)) <= 40 and not kind else f"{kind} {value!r}" if len(repr(value)) <= 40 \
        else kind or f"{repr(value)[:37]}..."
    hint = ""
    if isinstance(value, str) and "whole number" in words and _NUMBER_TEXT.match(value):
        # number text left here is at a whole-number key (a real one was converted above)
        written = float(value)
        hint = (f" (YAML reads {value} without a dot as text: write it out, {int(written)})"
                if _SCIENTIFIC.match(value) and written.is_integer() else " (write it without quotes)"
                if written.is_integer() else "")
    what = f"{where} is {shown}" if where else f"its top level is {shown}"
    raise ValueError(f"{Path(path).name}: {what}; it must be {words}{hint}")
