"""Scene lists for batch runs: parse a SCENES.csv, run one scene, remember what produced an output.

Dask-free on purpose: ``ksdiff_qgis.batch`` ships these functions to cluster workers, and tests call
them directly. Each scene calls :func:`pipeline.pansharpen`, the function the Processing algorithm
calls, with the same parameters. A finished output gets a sidecar record ``<output>.ksdiff.json``
(inputs, parameters, version, and the output file it describes) so that a re-run skips it.
"""
from __future__ import annotations

import csv
import glob
import inspect
import io
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from osgeo import gdal

from . import (
    aoi,
    classical,
    extent_cell,
    memory,
    model_card,
    other_runs,
    pipeline,
    raster_io,
    scene_outputs,
    selfcheck,
    threadlimits,
)
from .coregistration import in_batch_terms
from .errors import InputError, OutputBusy, OutputTaken, disk_full, has_control, one_line, quoted
from .feedback import Feedback
from .gdalutil import gdal_str, os_path, real_path
from .grid import same_crs
from .learned import PRECISION_ALIASES, PRECISIONS
from .numbers import decimal_comma_gains, decimal_comma_number
from .provenance import plugin_version  # part of every record: a new version redoes old outputs
from .raster_io.outputs import COMPRESSIONS
from .raster_io.partials import shown_path, signature
from .runtime import DEVICES
from .sensors import AUTO as AUTO_SENSOR
from .sensors import SENSORS, get_sensor

SIDECAR_SUFFIX = ".ksdiff.json"   # one of raster_io.SIDECARS: a run that replaces the output removes it
REQUIRED_COLUMNS = ("pan", "ms", "output")
# CSV column -> pipeline.pansharpen keyword where they differ; every other keyword keeps its name, which is
# also the lower-cased Processing parameter name (TILE_SIZE -> tile_size)
ALIASES = {"pan": "pan_path", "ms": "ms_path", "output": "output_path", "model": "model_path"}
PATH_KEYS = ("pan_path", "ms_path", "output_path", "model_path")
NOT_PARAMETERS = {"feedback"}
# what can change without changing the output: not part of the record that decides a skip
NOT_FINGERPRINTED = {"output_path", "threads", "workers", "feedback"}


class QuietFeedback(Feedback):
    """Warnings go into the scene's report record (also a failed scene's), not into every worker's log: the batch
    driver prints them (a full disk's pre-warning was dropped here)."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.removed: list[str] = []   # killed runs' temporary files the run removed, for the record (JSON-safe)

    def warning(self, message: str) -> None:
        self.warnings.append(in_batch_terms(message))

    def leftover(self, path: str) -> None:
        self.removed.append(shown_path(path))


class SceneListError(ValueError):
    """The scene list cannot be used (raised before any scene runs)."""


@dataclass(frozen=True)
class Scene:
    """One CSV row: its 1-based line number and the keywords for ``pipeline.pansharpen``."""

    line: int
    kwargs: dict[str, Any]

    @property
    def output(self) -> str:
        return self.kwargs["output_path"]


def engine_parameters() -> dict[str, inspect.Parameter]:
    """The keywords of ``pipeline.pansharpen`` a scene list may set."""
    params = inspect.signature(pipeline.pansharpen).parameters
    return {k: p for k, p in params.items() if k not in NOT_PARAMETERS}


def column_keyword(column: str) -> str:
    """The engine keyword of a CSV column (case-insensitive; Processing names work too)."""
    name = column.strip().lower()
    return ALIASES.get(name, name)


def _sequence(value: str, annotation: str, name: str = "") -> list | tuple:
    """'1 2 3', '1;2;3', '[1, 2, 3]' as the list or tuple of ints or floats the annotation names."""
    kind = int if re.match(r"(list|tuple)\[int\b", annotation) else float
    if kind is float:
        _refuse_decimal_commas(value, name)
    items = [kind(v) for v in re.split(r"[\s,;]+", value.strip("[]() ")) if v]
    return tuple(items) if annotation.startswith("tuple") else items


def _refuse_decimal_commas(value: str, name: str) -> None:
    """ValueError for a list of decimals written with decimal commas (a German or French Excel's CSV: '0,35' would
    be read as the two items 0 and 35)."""
    items = [v for v in re.split(r"[\s;]+", value.strip("[]() ")) if v]
    meant = [decimal_comma_number(v) for v in items]
    if any(meant):
        fixed = " ".join(m or v for m, v in zip(meant, items))
    elif name == "mtf_gains" and decimal_comma_gains(value):   # '0,35,0,3': gains lie in (0, 1)
        fixed = decimal_comma_gains(value).replace(",", "")
    else:
        return
    raise ValueError(f"a decimal comma? Write decimals with a decimal point and separate the items with spaces: "
                     f"{fixed}")


TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
KEY_COLUMNS = ("sensor", "method", "device", "precision", "compression")   # option keys: case-insensitive, as in QGIS
# cells read as words: a line break or tab in one is a spreadsheet's mistake (a multi-line cell, Excel's Alt+Enter)
# that failed its scene only when it ran, after the scenes before it (lists and numbers split on any white space)
WORD_KEYS = (*KEY_COLUMNS, "create_options")


def _convert(value: str, param: inspect.Parameter) -> Any:
    """A CSV cell as the keyword's type: that of its default (int, float, bool), a list/tuple its
    annotation names, JSON when it looks like JSON, else the string."""
    default, annotation = param.default, str(param.annotation)
    if isinstance(default, bool):
        if value.lower() not in TRUE + FALSE:
            raise ValueError(f"not one of {', '.join(TRUE + FALSE)}")
        return value.lower() in TRUE
    if isinstance(default, (int, float)) or annotation.startswith(("int", "float")):
        if decimal_comma_number(value):
            raise ValueError(f"a decimal comma? Write {decimal_comma_number(value)} (a decimal point)")
        if isinstance(default, int) or annotation.startswith("int"):
            return int(value)
        return float(value)
    if annotation.startswith(("list[", "tuple[")):
        return _sequence(value, annotation, param.name)
    if value[:1] in "[{":
        return json.loads(value)
    return value


def _resolve_path(value: str, base: str) -> str:
    """Relative paths are relative to the CSV's folder; GDAL virtual paths (/vsis3/ ...) stay as they are.
    Resolved through ``real_path``: Path.resolve() encodes in the locale's encoding and refused a CJK name under
    LC_ALL=de_DE.ISO-8859-1."""
    if value.startswith("/vsi") or "://" in value:
        return value
    return real_path(os.path.join(base, os.path.expanduser(value)))


def option_values(key: str) -> list[str]:
    """The values the engine takes for the option key ``key`` (one of ``KEY_COLUMNS``): the batch's --sensor,
    --method, --device and the list's cells are checked against them before any scene starts."""
    if key == "sensor":
        return [AUTO_SENSOR, *SENSORS]
    if key == "method":
        return list(pipeline.method_names())
    if key == "device":
        return list(DEVICES)
    if key == "precision":
        return [*PRECISIONS, *PRECISION_ALIASES]
    return list(COMPRESSIONS)


COUNT_KEYS = ("threads", "workers")   # a row's cores: checked like the batch's --threads
# a CRS as EXTENT takes one (EPSG:32631, a WKT, a PROJ string) -> what it names, what an empty cell means
CRS_KEYS = {"extent_wkt": (aoi.EXTENT_CRS, "the PAN's CRS"),
            "pan_crs": ("the CRS the PAN's coordinates are in", "the PAN file's own"),
            "ms_crs": ("the CRS the MS's coordinates are in", "the MS file's own")}


def _row_kwargs(row: dict[str, str], params: dict[str, inspect.Parameter], base: str, line: int) -> dict:
    kwargs: dict[str, Any] = {}
    extent_read: tuple[str, str, str | None, str] | None = None   # column, cell, CRS in brackets, order read
    for column, cell in row.items():
        if column is None:   # csv puts the cells beyond the header's columns under None
            raise SceneListError(f"line {line}: more cells than the header has columns ({len(cell)} too many)")
        cell = (cell or "").strip()
        if not cell:
            continue   # empty cell: the engine's default
        key = column_keyword(column)
        written = cell
        if key in KEY_COLUMNS:
            cell = cell.lower()
        if key in PATH_KEYS and has_control(cell):   # QA: a newline in an output cell named the file with it
            raise SceneListError(f"line {line}: column {column!r}: {quoted(one_line(cell))} holds a control "
                                 "character (a line break, a tab, ...): a file name with one is almost certainly a "
                                 "mistake of the spreadsheet; remove it from the cell")
        if key in WORD_KEYS and has_control(cell):
            raise SceneListError(f"line {line}: column {column!r}: {quoted(one_line(cell))} holds a control "
                                 "character (a line break, a tab, ...), which no value of this column has: a "
                                 "spreadsheet saves a cell written on several lines (Excel: Alt+Enter) so; remove it "
                                 "from the cell")
        if key in KEY_COLUMNS and cell not in option_values(key):   # else its scene failed only when it ran
            raise SceneListError(f"line {line}: column {column!r}: {quoted(one_line(written))} is not known: give one "
                                 f"of {', '.join(option_values(key))} (upper or lower case)")
        if key in CRS_KEYS:   # read as a CRS now: an unreadable one failed every scene at its reprojection
            try:
                wkt = aoi.crs_wkt(cell, column.strip(), *CRS_KEYS[key])
            except InputError as e:
                raise SceneListError(f"line {line}: {e}") from None
            # extent_wkt as written (a PROJJSON's '{' is no JSON parameter): the engine reads it alike; a layer's CRS
            # as the WKT the engine takes (EPSG:32631 was assigned, but its warning named the CRS "none")
            kwargs[key] = cell if key == "extent_wkt" else wkt
            continue
        if key == "extent":   # QGIS's comma form in QGIS's order, gdalwarp's space form in its own
            try:
                if not extent_cell.QGIS_FORM.match(cell):   # '0,5 1,5 2 3': a German Excel's decimal commas
                    _refuse_decimal_commas(cell, key)
                kwargs[key], crs, order = extent_cell.read_extent(cell)
            except ValueError as e:
                raise SceneListError(f"line {line}: column {column!r}: cannot read {quoted(cell)}: "
                                     f"{one_line(e)}") from None
            extent_read = (column, cell, crs, order)
            continue
        try:
            kwargs[key] = _resolve_path(cell, base) if key in PATH_KEYS else _convert(cell, params[key])
        except (ValueError, json.JSONDecodeError) as e:
            raise SceneListError(f"line {line}: column {column!r}: cannot read {quoted(cell)}: {one_line(e)}") from None
        if key in COUNT_KEYS and kwargs[key] < 0:   # as --threads: the batch checks the upper limit (cores)
            raise SceneListError(f"line {line}: column {column!r}: {kwargs[key]} is below 0: give 0 (the scene's "
                                 "share of the cores) or more")
    missing = [c for c in REQUIRED_COLUMNS if column_keyword(c) not in kwargs]
    if missing:
        raise SceneListError(f"line {line}: no {', '.join(missing)} given")
    if extent_read:
        _check_extent(kwargs, *extent_read, line)
    return kwargs


def _check_extent(kwargs: dict[str, Any], column: str, cell: str, crs: str | None, order: str, line: int) -> None:
    """The CRS an extent cell names in brackets as the row's extent_wkt, and SceneListError for a box that cannot be
    meant for the row's PAN (``extent_cell.misread``), before any scene runs."""
    if crs is not None:
        try:
            wkt = aoi.crs_wkt(crs, column.strip())
        except InputError as e:
            raise SceneListError(f"line {line}: {e}") from None
        given = kwargs.get("extent_wkt")
        if given and not same_crs(aoi.crs_wkt(given), wkt):
            raise SceneListError(f"line {line}: column {column!r} names the CRS {one_line(crs)} in brackets but "
                                 f"extent_wkt says {quoted(given)}: keep one of them")
        kwargs["extent_wkt"] = given or crs
    problem = extent_cell.misread(kwargs["extent"], kwargs.get("extent_wkt"), kwargs["pan_path"],
                                  kwargs.get("pan_crs"), order)
    if problem:
        raise SceneListError(f"line {line}: column {column!r}: {quoted(cell)}: {problem}")


def _check_header(fields: list[str] | None, params: dict[str, inspect.Parameter]) -> None:
    if not fields:
        raise SceneListError("the scene list is empty (expected the header pan,ms,sensor,method,output)")
    named = [f for f in fields if f.strip()]   # unnamed columns: Excel's trailing ';;' (``_unnamed_cells``)
    unknown = [f for f in named if column_keyword(f) not in params]
    if unknown:
        known = sorted({"pan", "ms", "output", "model"} | set(params) - set(PATH_KEYS))
        raise SceneListError(f"unknown column(s) {', '.join(map(repr, unknown))}; known: {', '.join(known)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in {f.strip().lower() for f in fields}]
    if missing:
        raise SceneListError(f"the header lacks the column(s) {', '.join(missing)}")
    seen: dict[str, str] = {}
    for f in named:   # QA: 'method' and 'METHOD' both given, the last one silently won
        key = column_keyword(f)
        if key in seen:
            raise SceneListError(f"the columns {seen[key]!r} and {f!r} both set {key}: keep one of them")
        seen[key] = f


def _unnamed_cells(fields: list[str], cells: list[str], line: int) -> None:
    """SceneListError for a value under a column the header leaves unnamed; empty ones are ignored (Excel saves
    'pan;ms;method;output;;' when cells beyond the table were ever touched)."""
    for i, (field, cell) in enumerate(zip(fields, cells), start=1):
        if not field.strip() and cell.strip():
            raise SceneListError(f"line {line}: column {i} has no name in the header but holds "
                                 f"{quoted(one_line(cell))}: name the column (e.g. tile_size) or empty its cells")


def _swallowed_rows(cells: list[str], delimiter: str, columns: int, line: int) -> None:
    """SceneListError for a quoted cell that spans lines which look like rows of their own: a quote opened by
    mistake and closed only by a later one took those rows in (QA: a 4-row list ran as 3 scenes)."""
    for cell in cells:
        later = cell.splitlines()[1:]
        if any(part.count(delimiter) >= max(1, columns - 1) for part in later):
            raise SceneListError(f"line {line}: a quoted cell starting on line {line} spans lines that look like "
                                 f"rows of their own ({quoted(one_line(cell[:80]))}): its quote (\") is closed "
                                 "only further down; remove the stray quote or close it where the cell ends")


def unclosed_quote(text: str, delimiter: str, inside: bool = False) -> int | None:
    """The line on which a quoted cell opens that is never closed (csv then reads the rest of the file into it),
    else None; ``inside``: ``text`` starts within a quoted cell (opened on its line 1). The default dialect's rules:
    a quote opens a cell only at its start, '""' inside is a quote."""
    # start of a cell, plain cell, quoted cell, quote seen in a quoted cell
    line, opened, state = 1, 1 if inside else 0, "quoted" if inside else "start"
    for ch in text:
        if state == "quoted":
            if ch == '"':
                state = "quote"
        elif state == "quote" and ch == '"':
            state = "quoted"
        elif ch == delimiter or ch in "\r\n":
            state = "start"
        elif state == "start" and ch == '"':
            state, opened = "quoted", line
        else:
            state = "plain"
        line += ch == "\n"
    return opened if state == "quoted" else None


COMMENT = "#"   # a row whose first cell starts with it is a note, skipped (QA: '# my scenes' was a bad header)


def _physical_lines(text: str) -> list[str]:
    """``text`` cut after each line break csv knows ('\r\n', '\r', '\n'; str.splitlines also cuts at others)."""
    return re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", text)


def is_comment(line: str) -> bool:
    return line.lstrip(" ").startswith(COMMENT)


def blank_comments(text: str, delimiter: str) -> str:
    """``text`` with each comment line (a row whose first cell starts with '#') emptied, its line break kept: the
    rows keep their physical line numbers, and a quote inside a note opens no cell. A line inside a quoted cell that
    spans lines is part of that cell, whatever it starts with."""
    kept, inside = [], False   # inside: a quoted cell goes on across this line's start
    for line in _physical_lines(text):
        if not inside and is_comment(line):
            kept.append(line[len(line.rstrip("\r\n")):])
            continue
        kept.append(line)
        inside = unclosed_quote(line, delimiter, inside) is not None
    return "".join(kept)


DELIMITERS = ",;\t"


def sniff_delimiter(header: str) -> str:
    """The cell delimiter of a scene list from its header line: ',', or ';' as a German or French Excel saves CSV,
    or a tab; ',' when the header has one column."""
    try:
        return csv.Sniffer().sniff(header, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def read_scenes(csv_path: str, defaults: dict[str, Any] | None = None) -> list[Scene]:
    """Every scene of a CSV list; ``defaults`` (engine keywords) apply where a row leaves a cell empty."""
    params = engine_parameters()
    base = os.path.dirname(real_path(csv_path))   # through os_path, as _resolve_path
    try:
        with open(os_path(csv_path), newline="", encoding="utf-8-sig") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise SceneListError(f"{csv_path} is not UTF-8 text ({e.reason} at byte {e.start}): save it as UTF-8 (Excel: "
                             "'CSV UTF-8 (comma delimited)')") from None
    # the header: the first line that is neither empty nor a comment (notes above it are no header)
    header = next((line for line in _physical_lines(text) if line.strip() and not is_comment(line)), "")
    delimiter = sniff_delimiter(header.rstrip("\r\n"))
    text = blank_comments(text, delimiter)
    opened = unclosed_quote(text, delimiter)
    if opened is not None:   # checked first: the rows it took in would be missing from every other message
        raise SceneListError(f"line {opened}: a quoted cell starting on line {opened} is never closed, so it takes "
                             "in the rest of the file: close its quote (\") or remove it")
    scenes = [Scene(line, {**(defaults or {}), **cells}) for line, cells in
              _rows(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), params, base, defaults or {},
                    delimiter)]
    if not scenes:
        raise SceneListError(f"{csv_path} lists no scene")
    for check in (scene_outputs.plain_geotiff_problem, scene_outputs.shared_output_problem,
                  scene_outputs.overwritten_input_problem):
        problem = check(scenes)
        if problem:
            raise SceneListError(problem)
    return scenes


def _rows(reader, params: dict[str, inspect.Parameter], base: str, defaults: dict[str, Any], delimiter: str = ","):
    """(line, engine keywords) of each non-empty row of ``reader`` (a csv.reader), ``line`` the row's first physical
    line: csv's line_num after a row is its last, and a quoted cell spanning lines made the message point past it.
    Rows as csv.DictReader makes them: cells beyond the header under None, missing cells None."""
    # empty lines above the header (comments are emptied by ``blank_comments``) are skipped like those below it
    fields = next((cells for cells in reader if any(c.strip() for c in cells)), None)
    _check_header(fields, params)
    while True:
        line = reader.line_num + 1
        cells = next(reader, None)
        if cells is None:
            return
        _unnamed_cells(fields, cells, line)
        _swallowed_rows(cells, delimiter, len(fields), line)
        row: dict[str | None, Any] = {f: c for f, c in zip(fields, cells + [None] * (len(fields) - len(cells)))
                                      if f.strip()}
        if len(cells) > len(fields):
            row[None] = cells[len(fields):]
        if any(isinstance(v, str) and v.strip() for v in row.values()) or None in row:
            kwargs = _row_kwargs(row, params, base, line)
            _check_tiling(kwargs, defaults, params, line)
            yield line, kwargs


def _check_tiling(cells: dict[str, Any], defaults: dict[str, Any], params: dict[str, inspect.Parameter],
                  line: int) -> None:
    """SceneListError when a row's tile size and overlap (its cells, else ``defaults``, else the engine's) would
    stop its scene: every scene of a run would fail alike (QA: 10k scenes, 10k identical errors)."""
    values, origins = {}, []
    for key in ("tile_size", "overlap"):
        if key in cells:
            values[key], origin = cells[key], "in the list"
        elif key in defaults:
            values[key], origin = defaults[key], "given on the command line"
        else:
            values[key], origin = params[key].default, "by default"
        origins.append(f"{key} {values[key]} {origin}")
    try:
        pipeline.check_tiling(values["tile_size"], values["overlap"], "--tile-size (or the row's tile_size)",
                              "--overlap (or the row's overlap)")
    except InputError as e:
        where = f"line {line}: " if {"tile_size", "overlap"} & set(cells) else ""   # else: every such row
        raise SceneListError(f"{where}{e} ({', '.join(origins)})") from None


# ------------------------------------------------------------------------- sidecar records
def file_identity(path: str | None) -> dict | None:
    """Path, size and modification time of a file (GDAL virtual files too), None when it is missing."""
    if not path:
        return None
    if path.startswith("/vsi"):
        st = gdal.VSIStatL(path)
        return None if st is None else {"path": path, "size": st.size, "mtime": st.mtime}
    try:
        st = os.stat(os_path(path))   # the file GDAL reads by that name (``os_path``)
    except OSError:
        return None
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _model_identity(kwargs: dict[str, Any]) -> dict | None:
    """The model file(s) a learned (or automatic) method may use; None for classical methods."""
    method = kwargs.get("method", engine_parameters()["method"].default)
    if method in classical.METHODS:
        return None
    if kwargs.get("model_path"):
        return file_identity(kwargs["model_path"])
    try:
        sensor = kwargs.get("sensor", engine_parameters()["sensor"].default)
        main = file_identity(str(pipeline.resolve_model(sensor, None).path))
        sub = get_sensor(sensor).subset_model   # an MS_BANDS selection may send the run to this one
        bundled = model_card.bundled_cards()
        return {"main": main, sub: file_identity(str(bundled[sub]))} if sub in bundled else main
    except Exception:   # SENSOR=auto or a sensor without its own model: any bundled model may be the one
        return {name: file_identity(str(path)) for name, path in model_card.bundled_cards().items()}


def fingerprint(kwargs: dict[str, Any]) -> dict:
    """What decides the output: version, parameters (with engine defaults filled in), inputs and model."""
    defaults = {k: p.default for k, p in engine_parameters().items() if p.default is not inspect.Parameter.empty}
    params = {k: v for k, v in {**defaults, **kwargs}.items() if k not in NOT_FINGERPRINTED}
    return {
        "version": plugin_version(),
        "parameters": {k: v for k, v in params.items() if k not in ("pan_path", "ms_path", "model_path")},
        "pan": file_identity(kwargs["pan_path"]),
        "ms": file_identity(kwargs["ms_path"]),
        "model": _model_identity(kwargs),
    }


def sidecar_path(output: str) -> str:
    return output + SIDECAR_SUFFIX


def read_record(output: str) -> dict | None:
    """The sidecar record of ``output``, None when there is none or it is unreadable."""
    try:
        with open(os_path(sidecar_path(output)), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_record(output: str, record: dict) -> None:
    """Write the sidecar atomically (temp file + rename), like the raster itself."""
    path = sidecar_path(output)
    tmp = f"{path}.{os.getpid()}.partial"
    try:
        with open(os_path(tmp), "w", encoding="utf-8") as f:   # beside the output GDAL wrote (``os_path``)
            json.dump(record, f, indent=1, sort_keys=True, ensure_ascii=False)
        os.replace(os_path(tmp), os_path(path))
    except OSError:   # a full disk: no half-written record left behind
        if os.path.exists(os_path(tmp)):
            os.remove(os_path(tmp))
        raise


def up_to_date(kwargs: dict[str, Any]) -> dict | None:
    """The record of an existing output made from the same inputs and parameters, else None."""
    record = read_record(kwargs["output_path"])
    if record is None or record.get("fingerprint") != json.loads(json.dumps(fingerprint(kwargs))):
        return None
    # the output must still be the file the record describes (not replaced or truncated since)
    return record if record.get("output") == file_identity(kwargs["output_path"]) else None


def remove_partials(output: str) -> list[str]:
    """Delete temporary files killed writers left beside ``output``; a live writer's file stays (it is locked)."""
    pattern = glob.escape(os_path(sidecar_path(output))) + os_path(".*.partial")   # a sidecar write is one rename
    removed = []
    for p in glob.glob(pattern):
        try:
            os.remove(p)
            removed.append(p)
        except OSError:   # held open by another process (Windows refuses to delete it), or gone: leave it
            pass
    return raster_io.remove_stale_partials(output) + [gdal_str(p) for p in removed]


# ------------------------------------------------------------------------- one scene
def base_record(scene: Scene) -> dict:
    """The report fields every outcome of a scene has."""
    kw = scene.kwargs
    params = engine_parameters()
    return {
        "line": scene.line, "pan": kw["pan_path"], "ms": kw["ms_path"], "output": scene.output,
        "sensor": kw.get("sensor", params["sensor"].default), "method": kw.get("method", params["method"].default),
        "method_used": None, "sensor_used": None, "device": None, "workers": kw.get("workers"),
        "threads": kw.get("threads"), "width": None, "height": None,
        "seconds": None, "mpx_per_s": None, "status": None, "error": None, "warnings": [], "removed": [],
        "coregistration": None, "selfcheck": None,
    }


def _done_record(base: dict, result: pipeline.PansharpenResult, said: list[str] | None = None) -> dict:
    """``said``: the warnings the run gave its feedback; the result's own follow (once each). Advice names the scene
    list's columns (``in_batch_terms``)."""
    said = list(said or [])
    mpx = result.width * result.height / 1e6
    # method_used: what ran, e.g. the method an automatic choice settled on
    return {**base, "status": "done", "method_used": result.method, "sensor_used": result.sensor,
            "device": result.device,
            "width": result.width, "height": result.height,
            "seconds": round(result.seconds, 3), "mpx_per_s": round(mpx / max(result.seconds, 1e-9), 3),
            "warnings": _with_result_warnings(said, result),
            "coregistration": in_batch_terms(result.coregistration) if result.coregistration else None,
            "selfcheck": _selfcheck_figures(result)}


def _with_result_warnings(said: list[str], result: pipeline.PansharpenResult) -> list[str]:
    """The warnings the feedback was given, then the result's own not among them, in the batch's terms."""
    said = list(said or [])
    return said + [w for w in map(in_batch_terms, result.warnings) if w not in said]


def _selfcheck_figures(result: pipeline.PansharpenResult) -> dict | None:
    """METHOD auto's self-check figures as the Processing outputs carry them (``SELFCHECK_*``, rounded alike)."""
    return result.selfcheck.outputs(selfcheck.DIGITS) if result.selfcheck else None


def _checked_record(base: dict, result: pipeline.PansharpenResult, said: list[str]) -> dict:
    """A ``check_only`` row: status 'checked' (nothing was fused or written), the method the self-check chose and
    its figures."""
    return {**base, "status": "checked", "method_used": result.method, "sensor_used": result.sensor,
            "device": result.device, "width": 0, "height": 0, "seconds": round(result.seconds, 3),
            "warnings": _with_result_warnings(said, result), "selfcheck": _selfcheck_figures(result)}


def share_cores(kwargs: dict[str, Any], cores: int) -> dict[str, Any]:
    """Split a scene's ``cores`` into the engine's tile workers and ONNX Runtime threads (a row's own win).

    Tile workers first, as the engine itself does: reading, upsampling and blending stay single-threaded
    inside a tile, so intra-op threads would idle through them.
    """
    workers, threads = kwargs.get("workers") or 0, kwargs.get("threads") or 0
    if not workers:
        workers = max(1, cores // threads) if threads else cores
    if not threads:
        threads = max(1, cores // workers)
    return {**kwargs, "workers": workers, "threads": threads}


# a 'done' record's fields its sidecar keeps: a scene that finished while a stop closed the cluster is reported from
# them (QA: without workers, threads, mpx_per_s, selfcheck and worker); a 'skipped' one keeps what describes the output
RESULT_KEYS = ("method_used", "sensor_used", "device", "workers", "threads", "width", "height", "seconds", "mpx_per_s",
               "warnings", "coregistration", "selfcheck", "worker")
OUTPUT_KEYS = ("method_used", "sensor_used", "device", "width", "height", "warnings", "coregistration", "selfcheck")


def skipped_record(base: dict, previous: dict) -> dict:
    """The record of a scene whose output is up to date: what made that output (method, self-check figures,
    warnings: QA found a re-run's lines without them), nothing run now (0 s)."""
    result = previous.get("result", {})
    kept = {k: result.get(k) for k in OUTPUT_KEYS}
    kept["warnings"] = list(kept["warnings"] or [])
    return {**base, **kept, "status": "skipped", "seconds": 0.0}


ANOTHER_RUN = "another run finished it"   # a skipped row's note when a concurrent run wrote its output first
RECORD_WAIT = 5.0   # seconds: another run writes its record just after renaming its output into place


def _finished_by_another_run(kwargs: dict[str, Any]) -> dict | None:
    """The record of the output a concurrent run just committed, when it is complete and made from the same inputs and
    parameters (``up_to_date``); None otherwise (another list's output there stays a failure)."""
    deadline = time.monotonic() + RECORD_WAIT
    while True:
        record = up_to_date(kwargs)
        if record is not None or time.monotonic() > deadline:
            return record
        time.sleep(0.1)


def _after_other_writer(base: dict, kwargs: dict[str, Any], busy: OutputBusy,
                        stopped: Callable[[], bool]) -> dict | None:
    """The row was refused because another run is writing its output right now (two batches on one list): wait for
    that run to end (``other_runs.wait_for_writer``). Its complete output with a record of the same inputs and
    parameters: the row is 'skipped' ("another run finished it"); another list's result: kept, the row fails; the
    other run left nothing new: None, the row runs itself. A stop or ``BUSY_WAIT`` passing first: the refusal."""
    output = kwargs["output_path"]
    before = signature(output)
    if not other_runs.wait_for_writer(output, stopped):
        return {**base, "status": "failed", "error": in_batch_terms(str(busy)), "warnings": []}
    if signature(output) == before:   # it failed or was stopped: this row fuses the scene itself
        finished = up_to_date(kwargs)   # unless it committed just before ``before`` was taken
        return None if finished is None else {**skipped_record(base, finished), "note": ANOTHER_RUN}
    finished = _finished_by_another_run(kwargs)
    if finished is not None:
        return {**skipped_record(base, finished), "note": ANOTHER_RUN}
    return {**base, "status": "failed", "warnings": [],
            "error": f"another run wrote the output {quoted(output)} while this row waited for it to finish: that "
                     "result is kept (its record names other inputs or parameters); choose another output for one "
                     "of the rows"}


def run_scene(scene: Scene, cores: int | None = None, force: bool = False, worker: str | None = None,
              stopped: Callable[[], bool] = other_runs.never_stopped, wait: bool = True) -> dict:
    """Fuse one scene on ``cores`` CPU cores unless its output is up to date; returns its report record
    (``worker``: the Dask worker's address, in the record and its sidecar).

    ``wait``: a row refused because another run is writing its output right now waits for that run to end, then is
    skipped when that run made the same output, else runs (once: ``_after_other_writer``); ``stopped()`` true (the
    batch was stopped) ends the wait.

    Bad input (InputError) is reported in the record: retrying cannot fix it. Any other exception
    (I/O, memory) propagates so that the scheduler retries the scene.
    """
    kwargs = dict(scene.kwargs)
    if cores:   # the CPU cores this scene may use
        kwargs = share_cores(kwargs, cores)
    base = {**base_record(scene), "workers": kwargs.get("workers"), "threads": kwargs.get("threads")}
    if worker is not None:
        base["worker"] = worker
    if kwargs.get("check_only"):   # nothing is written: no record beside an output that is not there (or not new)
        return _check_scene(base, kwargs)
    previous = None if force else up_to_date(kwargs)
    if previous is not None:
        return skipped_record(base, previous)
    output = kwargs["output_path"]
    if os.path.exists(os_path(sidecar_path(output))):
        os.remove(os_path(sidecar_path(output)))   # the output is about to be replaced: its record no longer holds
    os.makedirs(os_path(os.path.dirname(os.path.abspath(output))), exist_ok=True)   # where GDAL will write
    identity = fingerprint(kwargs)        # before the run: inputs changed during it do not count as done
    fb = QuietFeedback()
    try:
        result = pipeline.pansharpen(**kwargs, feedback=fb)
    except (InputError, MemoryError, OSError, RuntimeError) as e:
        # bad input, a full disk, too little memory or threads (RuntimeError "can't start new thread"): said in one
        # line, not retried (it would fail the same way)
        if wait and isinstance(e, OutputBusy):   # refused before any pixel: two batches on one list, most often
            after = _after_other_writer(base, kwargs, e, stopped)
            return after if after is not None else run_scene(scene, cores, force, worker, stopped, wait=False)
        finished = _finished_by_another_run(kwargs) if isinstance(e, OutputTaken) else None
        if finished is not None:   # two batches on one list: the output is valid, this row has nothing left to do
            return {**skipped_record(base, finished), "note": ANOTHER_RUN}
        threads = threadlimits.failure_message(e, output)
        if threads:
            error = threads
        elif memory.out_of_memory(e):
            error = memory_advice(str(e) or type(e).__name__, kwargs)
        elif isinstance(e, InputError) or disk_full(e):
            error = in_batch_terms(str(e))
        else:   # another I/O error may pass (a network share that hiccuped): the scheduler retries the scene
            e.ksdiff_warnings = fb.warnings   # kept by the failed record (``batch.outcome``)
            raise
        return {**base, "status": "failed", "error": error, "warnings": fb.warnings, "removed": fb.removed}
    except Exception as e:
        e.ksdiff_warnings = fb.warnings
        raise
    record = {**_done_record(base, result, fb.warnings), "removed": fb.removed}
    try:
        write_record(output, {"fingerprint": identity, "output": file_identity(output), "written": time.time(),
                              "result": {k: record[k] for k in RESULT_KEYS if k in record}})
    except OSError as e:   # the output is complete: only its record is missing (a retry would fuse it again)
        return {**record, "status": "failed", "error": record_failure(output, e)}
    return record


def _check_scene(base: dict, kwargs: dict[str, Any]) -> dict:
    """A ``check_only`` row: the self-check alone, reported as 'checked'; an existing output and its record are left
    alone (QA: a record was written beside an output never written, and a later real run was skipped)."""
    fb = QuietFeedback()
    try:
        result = pipeline.pansharpen(**kwargs, feedback=fb)
    except (InputError, MemoryError, RuntimeError) as e:
        if not isinstance(e, (InputError, MemoryError)) and not memory.out_of_memory(e):
            e.ksdiff_warnings = fb.warnings
            raise
        error = (threadlimits.failure_message(e, kwargs["output_path"])
                 or (memory_advice(str(e) or type(e).__name__, kwargs) if memory.out_of_memory(e)
                     else in_batch_terms(str(e))))
        return {**base, "status": "failed", "error": error, "warnings": fb.warnings}
    except Exception as e:
        e.ksdiff_warnings = fb.warnings
        raise
    return _checked_record(base, result, fb.warnings)


def record_failure(output: str, error: OSError) -> str:
    """The sidecar of a finished output could not be written: the output is complete, its record is not."""
    why = error.strerror or str(error)
    return (f"the output {quoted(output)} is complete, but its record {os.path.basename(sidecar_path(output))} could "
            f"not be written ({why}): the next run fuses this scene again instead of skipping it"
            + ("; free some space in its folder" if disk_full(error) else ""))


def memory_advice(detail: str, kwargs: dict[str, Any]) -> str:
    """``memory.advice`` in the batch's terms: its option and columns, and the memory limit it reads."""
    tile = kwargs.get("tile_size") or engine_parameters()["tile_size"].default
    method = kwargs.get("method") or engine_parameters()["method"].default
    return memory.advice(detail, tile, "--tile-size (or the row's tile_size)", "the row's threads",
                         (kwargs.get("workers") or 1) * (kwargs.get("threads") or 1),
                         kwargs["output_path"], limit_option=memory.ENV_LIMIT,
                         learned=method in pipeline.LEARNED_METHODS or method == selfcheck.AUTO)
