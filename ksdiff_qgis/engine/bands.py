"""Which MS bands a run fuses, in which order, with which MTF gains and names (colours: ``bandcolour``).

Every selected band is fused and written, in the selected order (all bands when none are selected). A learned
model fuses the bands it was trained on, found by name among them (the wv2 model on the Blue, Green, Red, NIR1 of an
8-band WorldView-2 product); MTF-GLP-HPM fuses the others (``BandPlan.model``). The selection is applied as a virtual
raster (VRT), so the rest of the pipeline reads only those bands.
"""
from __future__ import annotations

import dataclasses
import os
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from osgeo import gdal

from . import bandcodes, delivery, dimap_tiles
from .auxlayers import MS_BANDS_WHERE
from .classical import BEST_CLASSICAL
from .errors import InputError, shown_name
from .gdalutil import gdal_call, named_view
from .labels import param
from .metascan import MetadataScan
from .raster_io import RasterInfo, describe
from .sensors import GENERIC_MTF_MS, GENERIC_MTF_PAN, SENSORS, Sensor, table_of


def _words(*words: str) -> str:
    """A pattern matching any of ``words`` as whole words (QA: 'Rot' must not be read in 'Rotation')."""
    return r"\b(?:" + "|".join(words) + r")\b"


# the common German, French, Spanish, Italian and Portuguese names of a kind, as whole words, and the Chinese ones
# (simplified and traditional; Chinese writes no spaces between words, so these are matched anywhere in the name,
# the longer ones first by the order of _KINDS: 红边 red edge, 近红外 NIR before 红 red)
_NIR_LOCAL = (r"nahes infrarot|nah ?infrarot|proche infrarouge|infrarouge proche|infrarrojo cercano|"
              r"infrarosso vicino|vicino infrarosso|infravermelho pr[oó]ximo")
_LOCAL = {
    "rededge": _words("rote kante", "bord (?:du )?rouge", "borde (?:del )?rojo", "bordo (?:del )?rosso",
                      "borda (?:do )?vermelh[oa]") + "|红边|紅邊",
    "coastal": r"\bküste|" + _words("tiefblau", "c[oô]tier", "bleu profond", "costero", "costiero", "costeiro",
                                    "azul profundo", "blu profondo") + "|海岸|沿海|深蓝|深藍",
    # thermal before SWIR and NIR: every one of these names also holds an infrared word (QA: read as NIR)
    "thermal": _words("thermisch(?:es)? infrarot", "thermal ?infrarot", "infrarouge thermique",
                      "infrarrojo t[eé]rmico", "infrarosso termico", "infravermelho t[eé]rmico",
                      "infravermelho termal", "thermique", "termico", "térmico", "termal", "thermisch(?:es)?")
               + "|热红外|熱紅外|远红外|遠紅外|长波红外|長波紅外",
    # both word orders (QA: 'Mittleres Infrarot' and 'Medio infrarrojo' were read as NIR)
    "swir": r"\bkurzwell|" + _words("infrarouge moyen", "moyen infrarouge", "infrarouge (?:[aà] )?ondes? courtes?",
                                    "infrarrojo (?:de )?onda corta", "infrarrojo medio", "medio infrarrojo",
                                    "infrarosso (?:a )?onde corte", "infrarosso medio", "medio infrarosso",
                                    "infravermelho (?:de )?ondas? curtas?", "infravermelho m[eé]dio",
                                    "m[eé]dio infravermelho", "mittler(?:es)? infrarot", "mittel ?infrarot")
            + "|短波红外|中红外|短波紅外|中紅外",
    "nir2": rf"(?:\b(?:{_NIR_LOCAL}) ?2\b|近红外 ?2|近紅外 ?2)",
    "nir": _words(_NIR_LOCAL, "pir", "infrarot", "infrarouge", "infrarrojo", "infrarosso", "infravermelho")
           + "|近红外|近紅外|红外|紅外",
    "yellow": _words("gelb", "jaune", "amarillo", "giallo", "amarelo") + "|黄|黃",
    "blue": _words("blau", "blaues", "bleu", "bleue", "azul", "blu") + "|蓝|藍",
    "green": _words("grün", "grünes", "gruen", "vert", "verte", "verde") + "|绿|綠",
    "red": _words("rot", "rotes", "rouge", "rojo", "roja", "rosso", "rossa", "vermelho", "vermelha") + "|红|紅",
    "pan": "全色",
}
# canonical band kinds, tested in this order (so "Red Edge" is not "Red" and "Deep Blue" not "Blue"), on the name
# with hyphens, underscores and runs of spaces read as one space ("Red-Edge", "NIR_2", "Near-IR2"); the English
# names, then the localised ones of ``_LOCAL`` (QA: an MS named Blau, Grün, Rot, Nahes Infrarot got no natural colour)
_KINDS = [(kind, f"{pat}|{_LOCAL[kind]}" if kind in _LOCAL else pat) for kind, pat in [
    ("rededge", r"red ?edge|\bre\b|vre"),
    ("coastal", r"coastal|deep ?blue|aerosol"),
    ("thermal", r"thermal|\btirs?\d?\b|\blwir\d?\b|long.?wave"),
    ("swir", r"swir|short.?wave|\bmir\b|\bmwir\b|mid.?infra.?red|middle.?infra.?red"),
    ("nir2", r"nir ?2|near ?infra ?red ?2|near ?ir ?2"),
    ("nir", r"nir|near.?infra.?red|near.?ir|\binfra.?red\b"),
    ("yellow", r"yellow"),
    ("blue", r"blue"),
    ("green", r"green"),
    ("red", r"red"),
    ("pan", r"pan"),
]]
# Sentinel-2's band codes by the two characters its products write (B02 ... B12, B8A; ``bandcodes``)
_SENTINEL2 = {"01": "coastal", "02": "blue", "03": "green", "04": "red", "05": "rededge", "06": "rededge",
              "07": "rededge", "08": "nir", "8a": "nir", "09": "vapour", "10": "cirrus", "11": "swir", "12": "swir"}
# kind by central wavelength (nm), upper bounds: what a description like "B5, central wavelength 705 nm" says
_WAVELENGTHS = [(450, "coastal"), (520, "blue"), (580, "green"), (600, "yellow"), (690, "red"), (750, "rededge"),
                (1000, "nir"), (3000, "swir")]


# Landsat's band numbers (padded like Sentinel-2's too: B05), per numbering: Landsat 8/9 OLI's ("oli": B5 is NIR)
# and Landsat 4/5 TM's and 7 ETM+'s ("tm": B4 is NIR, B5 SWIR), with the word each is written out with
_LANDSAT_WORDS = {
    "oli": {1: "Coastal", 2: "Blue", 3: "Green", 4: "Red", 5: "NIR", 6: "SWIR1", 7: "SWIR2", 8: "PAN", 9: "Cirrus",
            10: "TIRS1", 11: "TIRS2"},
    "tm": {1: "Blue", 2: "Green", 3: "Red", 4: "NIR", 5: "SWIR1", 6: "Thermal", 7: "SWIR2", 8: "PAN"},
}
_WORD_KIND = {"Coastal": "coastal", "Blue": "blue", "Green": "green", "Red": "red", "NIR": "nir", "SWIR1": "swir",
              "SWIR2": "swir", "PAN": "pan", "Cirrus": "cirrus", "TIRS1": "thermal", "TIRS2": "thermal",
              "Thermal": "thermal"}
LANDSAT_NAMES = {"oli": "Landsat 8/9 OLI", "tm": "Landsat 4-7 TM/ETM+"}


def _landsat_kind(number: int, landsat: bool | str) -> str | None:
    return _WORD_KIND.get(_LANDSAT_WORDS["tm" if landsat == "tm" else "oli"].get(number, ""))


def landsat_band_name(code: str, numbering: str) -> str | None:
    """A bare Landsat band code written out with its colour in ``numbering`` ('oli' or 'tm'): 'B4' -> 'B4 Red' (OLI)
    or 'B4 NIR' (TM/ETM+); None for what is no Landsat band code."""
    number = _landsat_number(code)
    word = _LANDSAT_WORDS[numbering].get(number) if number else None
    return f"B{number} {word}" if word else None


def _landsat_number(name: str) -> int | None:
    """The Landsat band number ``name`` is as a bare band code ('B4', 'B05'), or None."""
    code = bandcodes.parse(name)
    return code.landsat if code else None


def band_kind(name: str, landsat: bool | str = False) -> str | None:
    """Canonical kind of a band name ('NIR1' -> 'nir', 'B4 Red' -> 'red', Sentinel-2's 'B05' -> 'rededge',
    '... central wavelength 665 nm' -> 'red'), or None. ``landsat``: band codes are Landsat's, padded or not, in its
    numbering: "oli" or True (Landsat 8/9: B05 and B5 -> 'nir'), "tm" (Landsat 4-7: B4 -> 'nir'); otherwise a bare
    unpadded code (B5) says nothing."""
    # NFC: a name typed on macOS may hold 'ü' as 'u' and a combining diaeresis
    text = unicodedata.normalize("NFC", name or "").lower().replace("_", " ").strip()
    code = bandcodes.parse(text)
    if code:
        if landsat:
            return _landsat_kind(code.landsat, landsat) if code.landsat else None
        return _SENTINEL2.get(code.sentinel2) if code.sentinel2 else None
    words = re.sub(r"[-\s]+", " ", text)   # QA: "Red-Edge" read as red, "NIR-2" as nir (an 8-band model dropped)
    for kind, pat in _KINDS:
        if re.search(pat, words):
            return kind
    nm = wavelength_nm(text)
    if nm is not None:
        return next((kind for top, kind in _WAVELENGTHS if nm < top), None)
    return None


# a central wavelength in a band name: '665 nm', GDAL's ENVI '478.0 Nanometers', '0.478 µm', '0.66 Micrometers'
_NM = re.compile(r"(\d+(?:\.\d+)?) ?(nm|nanometers?|nanometres?|µm|μm|um|micrometers?|micrometres?|microns?)\b")


def wavelength_nm(text: str) -> float | None:
    """The central wavelength (nm) a band name states ('478.0 Nanometers', '0.478 µm'), or None; only values of a
    band between 300 nm and 3 µm count (a '2 m' or a date is none)."""
    m = _NM.search((text or "").lower())
    if not m:
        return None
    value = float(m.group(1)) * (1.0 if m.group(2).startswith("n") else 1000.0)
    return value if 300 <= value <= 3000 else None


class ModelBandsMissing(InputError):
    """The model cannot fuse the MS bands: ``str()`` is METHOD ksdiff's refusal, with both ways out (other bands or
    a classical method); ``auto`` what METHOD auto says as it takes the second one itself (QA: auto's log and
    SELFCHECK_REASON told the user to choose a classical method after it had chosen one)."""

    def __init__(self, text: str, auto: str):
        super().__init__(text)
        self.auto = auto


@dataclass
class BandPlan:
    indices: list[int]                 # 1-based MS bands fused, in output order
    names: list[str]                   # output band names
    gains: tuple[float, ...]           # MTF gain per fused band
    notes: list[str] = field(default_factory=list)
    # a learned model's bands as 0-based positions in ``indices``, in the model's order; None: all of them, in order
    # (or no model). The bands not among them are fused by a classical method (``learned.OnnxFuser``)
    model: list[int] | None = None
    warnings: list[str] = field(default_factory=list)
    # every fused band unnamed, taken in the model's order: the band each is taken as, per output band ('Blue', ...);
    # the names stay 'Band i' (no name says it), but the natural-colour style follows this order (``assumed_rgb``)
    assumed: list[str] | None = None


def left_names(descriptions: list[str], spec: Sensor) -> list[str] | None:
    """The sensor's band names (a generic run's ``like`` sensor's) the unnamed bands of a raster with its band count
    take, in the sensor's order: those whose kind no named band has, when they are as many as the unnamed bands (R,
    G, B named or colour-tagged beside one unnamed band: that band is the sensor's NIR, whatever its position); None
    when no band is named or they are not as many (then each unnamed band is taken by its position)."""
    like = table_of(spec)
    if len(descriptions) != like.n_bands or not any(descriptions):
        return None
    kind = kind_of(like)
    named = {kind(d) for d in descriptions if d}
    left = [n for n in like.band_names if kind(n) not in named]
    return left if len(left) == sum(1 for d in descriptions if not d) else None


def band_names(descriptions: list[str], spec: Sensor) -> list[str]:
    """Name of every band of a raster with these band ``descriptions``: its description (a bare band code the sensor
    names, e.g. Landsat's 'B4', as the sensor does: 'B4 Red'), else the sensor's name (a generic run's ``like``
    sensor's: an 8-bit Landsat-geometry stack is ETM+, B1 Blue .. B4 NIR) the named bands leave (``left_names``),
    else the sensor's name for that position, else 'Band i'."""
    like = table_of(spec)
    table = like.band_names
    left = iter(left_names(descriptions, spec) or [])
    out = []
    for i, d in enumerate(descriptions):
        if d:
            named = [n for n in table if bandcodes.parse(d) and n.upper().startswith(d.upper() + " ")]
            out.append(named[0] if len(named) == 1 else d)
        elif len(descriptions) == like.n_bands:
            out.append(next(left, table[i]))
        else:
            out.append(f"Band {i + 1}")
    return out


def with_delivery_names(ms: RasterInfo, scan: MetadataScan | None = None) -> tuple[RasterInfo, list[str]]:
    """``ms`` with names for the bands it leaves unnamed: a VRT band's from the description of its source band (all
    its sources agreeing: ``delivery.source_band_statements``; gdalbuildvrt copies none), then from its delivery
    (``delivery``): the band layout of the Airbus DIMAP that describes it (a VRT of its tiles too, each band by the
    data file and band it reads: ``dimap_tiles``),
    else the band code in the name of a VRT band's source file ('..._B4.TIF' -> 'B4', Sentinel-2's
    '..._B04_10m.jp2' -> 'B04': QGIS's Build Virtual Raster stacks files in any order and names no band). A bare
    Landsat band code is written out with its colour as the product's mission numbers its bands, when its MTL or
    product ID says which ('B4' -> 'B4 NIR' on Landsat 7, 'B4 Red' on Landsat 8). Returns log lines that say where
    the names came from. ``scan``: the run's metadata files, found and read once (``metascan``)."""
    scan = scan or MetadataScan()
    names, notes = list(ms.descriptions), []
    vrt_filled: list[int] = []
    stated = (delivery.source_band_statements(ms.path) or []) if not all(names) else []
    # first what the VRT's source bands are named (gdalbuildvrt copies no band description): the file's own names,
    # as the file itself would have given them, before a DIMAP's or a file name's
    from_sources = [i for i, (d, _) in enumerate(stated[:ms.bands]) if d and not names[i]]
    for i in from_sources:
        names[i] = stated[i][0]
    if not all(names):
        notes += _dimap_names(ms, names, scan)
        codes = delivery.source_band_codes(ms.path) or []
        vrt_filled = [i for i, code in enumerate(codes[:ms.bands]) if code and not names[i]]
        for i in vrt_filled:
            names[i] = codes[i]
    bare = [i for i, n in enumerate(names) if n and _landsat_number(n)]
    mission = delivery.landsat_mission(ms.path, scan) if bare else None
    if mission:
        for i in bare:
            names[i] = landsat_band_name(names[i], mission[0]) or names[i]
    said = f" ({LANDSAT_NAMES[mission[0]]} band codes: {mission[2]})" if mission else ""
    if from_sources:
        notes.append("MS band names from the band descriptions of the VRT's source files: "
                     + ", ".join(f"band {i + 1} {shown_name(names[i])}" for i in from_sources)
                     + (said if any(i in bare for i in from_sources) else ""))
    if vrt_filled:
        notes.append("MS band names from the VRT's source files: "
                     + ", ".join(f"band {i + 1} {shown_name(names[i])}" for i in vrt_filled) + said)
    described = [i for i in bare if i not in vrt_filled and i not in from_sources]
    if mission and described:
        notes.append("MS band descriptions read as band codes"
                     + said + ": " + ", ".join(f"band {i + 1} {shown_name(names[i])}" for i in described))
    if names == list(ms.descriptions):
        return ms, notes
    return dataclasses.replace(ms, descriptions=names), notes


def _dimap_names(ms: RasterInfo, names: list[str], scan: MetadataScan) -> list[str]:
    """Fill ``names``' empty entries from the Airbus DIMAP that describes ``ms``, and say so: each band by the data
    file and band it reads (a VRT of a Pléiades Neo's RGB and NED tiles, bands in any order: ``dimap_tiles``), else,
    for the DIMAP itself or a VRT whose band i is its tiles' band i, the DIMAP's band order."""
    dimap = delivery.dimap_for(ms.path, scan)
    if not dimap:
        return []
    by_file = dimap_tiles.dimap_source_names(ms.path, ms.bands, dimap, scan)
    if by_file:
        layout, how, note = by_file
        filled = [i for i, n in enumerate(layout) if n and not names[i]]
    else:
        sources = delivery.vrt_sources(ms.path)
        in_order = sources is None or all(b == i for i, band in enumerate(sources, 1) for _, b in band)
        found = delivery.dimap_band_names(dimap, ms.bands, scan) if in_order else None
        if not found:
            return []
        layout, how, note = found
        filled = [i for i, d in enumerate(names) if not d]
    for i in filled:
        names[i] = str(layout[i])
    if not filled:
        return []
    said = [f"MS band names from {os.path.basename(dimap)} ({how}): "
            + ", ".join(f"band {i + 1} {names[i]}" for i in filled)]
    # the display order taken against the order the DIMAP lists the bands in
    return said + ([note] if note else [])


def unread_layout_warnings(scan: MetadataScan, spec: Sensor, ms: RasterInfo) -> list[str]:
    """A warning per DIMAP ``with_delivery_names`` could not read the MS's band layout from because it is no
    well-formed XML (a truncated download): which file, what is wrong, and the band order taken instead."""
    if not scan.malformed:
        return []
    table = table_of(spec)
    unnamed = [i for i, d in enumerate(ms.descriptions) if not d]
    if table.band_names and ms.bands == table.n_bands:
        assumed = (f"the MS bands are taken in {table.name.split(' (')[0]}'s order ("
                   + ", ".join(f"band {i + 1} {table.band_names[i]}" for i in unnamed or range(ms.bands)) + ")")
    else:
        assumed = "the MS bands are taken by position, with generic names"
    return [f"{os.path.basename(path)}, the MS's DIMAP, is malformed XML ({error}; a truncated copy?): its band layout "
            f"was not read, and {assumed}. Download the product's DIMAP again, or name the bands (band descriptions) "
            "or reorder them with MS bands to fuse (MS_BANDS) if they are held otherwise."
            for path, error in scan.malformed.items()]


def _names(ms: RasterInfo, spec: Sensor) -> list[str]:
    return band_names(ms.descriptions, spec)


def kind_of(spec: Sensor):
    """``band_kind`` as the sensor reads band codes (a Landsat 8/9 product's B05 is its NIR, Sentinel-2's a red edge,
    a Landsat 4-7 product's B4 its NIR)."""
    landsat = table_of(spec).landsat or False
    return lambda name: band_kind(name, landsat)


def band_gain(i: int, name: str, n_bands: int, spec: Sensor) -> float:
    """Gain of band ``i`` (0-based) of ``n_bands``: the sensor's value for that band name (products may reorder bands,
    e.g. R, G, B, NIR), by position when the layout matches, else generic. A generic run of a sensor's product
    (``Sensor.like``) takes that sensor's gain for a band whose name matches one of its bands."""
    table = table_of(spec)
    kind = kind_of(table)
    kinds = [kind(n) for n in table.band_names]
    k = kind(name)
    if k is not None and kinds.count(k) == 1:
        return table.mtf_ms[kinds.index(k)]
    if n_bands == spec.n_bands:
        return spec.gain_for(i)
    return GENERIC_MTF_MS


def gains_note(plan: BandPlan, spec: Sensor, given: bool, pan_gain: float, pan_given: bool) -> str:
    """The log line that says which MTF gains the fusion uses and whose they are: each fused band's MS gain (``plan``)
    and the PAN's (``pan_gain``), from MTF_GAINS (``given``), the model's own training (``pan_given``), the sensor's
    table (``spec``'s, or a generic run's ``like`` sensor's) or the generic values. QA: no line or tag said it."""
    table = table_of(spec)
    short = table.name.split(" (")[0]
    # no published gains for the sensor (sensors.py): the generic ones, said so
    unpublished = table.generic or all(g == GENERIC_MTF_MS for g in table.mtf_ms) and table.mtf_pan == GENERIC_MTF_PAN
    if table.generic:
        whose = "the generic values"
    elif unpublished:
        whose = f"the generic values: none are published for {short}"
    else:
        whose = f"{short}'s"
    ms_whose = "as given in MTF_GAINS" if given else whose
    pan_whose = "the model's own, from its training" if pan_given else \
        "the generic value" if unpublished else f"{short}'s"
    bands = ", ".join(f"{shown_name(n)} {g:g}" for n, g in zip(plan.names, plan.gains))
    return f"MTF gains at Nyquist: MS {bands} ({ms_whose}); PAN {pan_gain:g} ({pan_whose})"


def positional(band_names: list[str]) -> bool:
    """Whether a model's band names are positions only ("Band 1", "Band 2", ...: a generic model trained on rasters
    without band descriptions): it fuses bands by position, whatever the data call them."""
    return all(re.fullmatch(r"Band \d+", n.strip()) for n in band_names)


def check_selection(selection: list[int] | None, count: int) -> None:
    """InputError unless every band of ``selection`` (1-based) is one of an MS raster's ``count`` and none is
    repeated: ``plan_bands`` starts with it, and ksdiff:pansharpen's parameter check runs it on MS_BANDS."""
    for b in selection or []:
        if not 1 <= b <= count:
            raise InputError(f"MS_BANDS: band {b} does not exist (the MS raster has {count} bands)")
    if selection and len(set(selection)) != len(selection):
        raise InputError("MS_BANDS: a band is selected twice")


def plan_bands(ms: RasterInfo, spec: Sensor, selection: list[int] | None, model_bands: list[str] | None = None,
               custom_gains: list[float] | None = None) -> BandPlan:
    """Decide the bands to fuse. ``selection``: user's 1-based bands (None: all); ``model_bands``: a model's."""
    check_selection(selection, ms.bands)
    if custom_gains and any(not 0.0 < g < 1.0 for g in custom_gains):
        raise InputError("MTF gains must lie between 0 and 1 (exclusive)")
    if not selection and not spec.generic and ms.bands != spec.n_bands:
        # MS_BANDS only picks bands out of more: a 3-band MS cannot make up a 4-band sensor's (QA: it was advised)
        sensor = f"set {param('SENSOR')} to the MS's own sensor, auto, or generic (it fuses any bands)"
        fix = (f"choose {spec.n_bands} of its bands with {MS_BANDS_WHERE}, or {sensor}" if ms.bands > spec.n_bands else
               f"no choice of its {ms.bands} bands can make up {spec.n_bands}: {sensor}")
        raise InputError(f"the MS raster has {ms.bands} bands but sensor {spec.name} expects {spec.n_bands} "
                         f"({', '.join(spec.band_names)}); {fix}")
    names = _names(ms, spec)
    chosen = list(selection or range(1, ms.bands + 1))
    notes, warnings, model, assumed = [], [], None, None
    unnamed = [b for b in chosen if not ms.descriptions[b - 1]]
    if unnamed and not spec.generic and ms.bands == spec.n_bands:
        notes.append(_order_assumed(ms, spec, unnamed, names))
    if model_bands is not None:
        picked = _match(model_bands, chosen, names, kind_of(spec))
        if picked is None and not positional(model_bands):   # unnamed bands: the model's order, said so
            # the bands neither named nor given a sensor's name (a generic run's 'Band 4')
            bare = [b for b in chosen if not ms.descriptions[b - 1] and kind_of(spec)(names[b - 1]) is None]
            picked, note = _match_unnamed(model_bands, chosen, names, kind_of(spec), bare)
            if picked is not None:
                notes.append(note)
            if picked is not None and len(bare) == len(chosen):
                assumed = [model_bands[picked.index(b)] for b in chosen]
            if picked is not None and len(bare) < len(chosen):
                # beside named (or colour-tagged) bands the output names them as the network took them, as a
                # sensor's run names its unnamed bands; bands all unnamed stay 'Band i' (no name says anything)
                names = [model_bands[picked.index(b)] if b in bare else n for b, n in enumerate(names, 1)]
        twice = _ambiguous(model_bands, chosen, names, kind_of(spec)) if picked is not None else None
        if twice:
            warnings.append(twice)
        expects = f"the model expects {len(model_bands)} MS bands ({', '.join(model_bands)})"
        if picked is None and len(model_bands) > ms.bands:   # no MS_BANDS can help: say what can
            has = f"the MS raster has {ms.bands} ({', '.join(names)})"
            other = (f"{ms.bands}-band model (MODEL empty: the bundled model of SENSOR, set to the MS's "
                     f"{ms.bands}-band sensor or auto)")
            raise ModelBandsMissing(
                f"{expects}; {has}: choose a classical method (it fuses any bands), or a {other}",
                f"{expects}; {has}, which a {other} fits")
        if picked is None and len(model_bands) != len(chosen):
            selected = ", ".join(names[b - 1] for b in chosen)
            raise ModelBandsMissing(
                f"{expects}; they were not all found among the selected MS bands ({selected}): include them in "
                "MS_BANDS (in any order: the model finds them by name), or choose a classical method (it fuses any "
                "bands)",
                f"{expects}, not all among the selected MS bands ({selected}; to use it, include them in MS_BANDS, "
                "in any order)")
        if picked is None and not positional(model_bands):   # a model of unnamed bands knows no names to differ
            unlike = _unlike(model_bands, [names[b - 1] for b in chosen], kind_of(spec))
            if unlike:
                warnings.append(f"the MS bands are named {unlike}, but the model learned {', '.join(model_bands)}: "
                                "it fuses them by position. Pick a classical method, or let METHOD auto check it "
                                "on this scene")
        if picked is not None and picked != chosen:
            model = [chosen.index(b) for b in picked]
            left = [names[b - 1] for b in chosen if b not in picked]
            notes.append(
                f"KSDiff fuses the bands its model knows: {', '.join(f'{names[b - 1]} (band {b})' for b in picked)}"
                + (f"; {BEST_CLASSICAL} fuses the others: {', '.join(left)}" if left else "")
                + "; the output keeps the MS band order")
    if custom_gains and len(custom_gains) not in (1, len(chosen)):
        raise InputError(f"MTF gains: give one for all bands or one per fused band ({len(chosen)}, in the order of "
                         f"the fused bands); {len(custom_gains)} were given")
    if custom_gains:   # in the order of the fused bands, as MS_BANDS lists them
        gains = tuple(float(custom_gains[0 if len(custom_gains) == 1 else j]) for j in range(len(chosen)))
    else:
        gains = tuple(band_gain(b - 1, names[b - 1], ms.bands, spec) for b in chosen)
    return BandPlan(indices=chosen, names=[names[b - 1] for b in chosen], gains=gains, notes=notes, model=model,
                    warnings=warnings, assumed=assumed)


_REORDER = "name them (band descriptions) or reorder them with MS bands to fuse (MS_BANDS)"


def _order_assumed(ms: RasterInfo, spec: Sensor, unnamed: list[int], names: list[str]) -> str:
    """The info line for unnamed bands taken in the sensor's order: all of them by position, or those beside named
    (or colour-tagged) bands as the sensor's bands the others leave (``left_names``)."""
    sensor = spec.name.split(" (")[0]
    listed = ", ".join(f"band {b} {names[b - 1]}" for b in unnamed)
    if not any(ms.descriptions):
        return (f"MS band order assumed: the bands have no names, so they are taken in {sensor}'s order ({listed}); "
                f"if the file holds them in another order, {_REORDER}")
    one = len(unnamed) == 1
    how = (f"as {sensor}'s remaining band{'' if one else 's'}" if left_names(ms.descriptions, spec) is not None
           else f"by {'its' if one else 'their'} position in {sensor}'s order")
    return (f"MS band order assumed: {_no_name(unnamed)}, so {'it is' if one else 'they are'} taken {how} "
            f"({listed}); if the file holds other bands there, {_REORDER}")


def _no_name(bands: list[int]) -> str:
    """'band 4 has no name' or 'bands 1 and 4 have no names'."""
    if len(bands) == 1:
        return f"band {bands[0]} has no name"
    return f"bands {', '.join(map(str, bands[:-1]))} and {bands[-1]} have no names"


def _match_unnamed(wanted: list[str], chosen: list[int], names: list[str], kind,
                   unnamed: list[int]) -> tuple[list[int] | None, str | None]:
    """``_match`` for a model of named bands on chosen bands some or all of which are unnamed (a generic run: 'Band
    4'): the named ones by kind, the unnamed ones, in order, as the model's bands no name gives — when every chosen
    band is one of the model's and the unnamed are as many as the bands left (an R, G, B product tagged so beside one
    unnamed band: that band is the model's NIR). Returns the bands in the model's order and the "order assumed" info
    line, or (None, None). The model fused them by position before, silently (QA: an R, G, B, NIR product's Red and
    Blue swapped, Wald ERGAS 1.478 against 1.314 named)."""
    if not unnamed or len(chosen) != len(wanted):
        return None, None
    out: list[int | None] = []
    for w in wanted:
        k = kind(w)
        hit = [b for b in chosen if b not in unnamed and k is not None and kind(names[b - 1]) == k and b not in out]
        out.append(hit[0] if hit else None)
    missing = [j for j, b in enumerate(out) if b is None]
    if len(missing) != len(unnamed):
        return None, None
    for j, b in zip(missing, unnamed):
        out[j] = b
    listed = ", ".join(f"band {b} {wanted[j]}" for j, b in zip(missing, unnamed))
    if len(unnamed) == len(chosen):
        note = (f"MS band order assumed: the bands have no names, so the network takes them in its order ({listed}); "
                f"if the file holds them in another order, {_REORDER}")
    else:
        one = len(unnamed) == 1
        note = (f"MS band order assumed: {_no_name(unnamed)}, so the network takes {'it' if one else 'them'} as its "
                f"remaining band{'' if one else 's'} ({listed}); if the file holds other bands there, {_REORDER}")
    return [b for b in out if b is not None], note


def _unlike(model_bands: list[str], names: list[str], kind) -> str | None:
    """The bands' names with their kinds when every one is known and they are not the model's kinds, else None."""
    kinds = [kind(n) for n in names]
    if None in kinds or Counter(kinds) == Counter(kind(b) for b in model_bands):
        return None
    return ", ".join(f"{n} ({k})" for n, k in zip(names, kinds))


def _ambiguous(wanted: list[str], chosen: list[int], names: list[str], kind) -> str | None:
    """One line when two chosen bands' names read as the same kind the model needs (e.g. 'Red' and a red edge named
    in a way not read as one): the match by name took the first, which is said rather than resolved silently."""
    needed = {kind(w) for w in wanted} - {None}
    by_kind: dict[str, list[int]] = {}
    for b in chosen:
        k = kind(names[b - 1])
        if k in needed:
            by_kind.setdefault(k, []).append(b)
    twice = {k: bs for k, bs in by_kind.items() if len(bs) > 1}
    if not twice:
        return None
    listed = "; ".join(" and ".join(f"{names[b - 1]} (band {b})" for b in bs) + f" both read as {k}"
                       for k, bs in twice.items())
    return (f"MS band names are ambiguous: {listed}; the model takes the first of each. Rename the bands (band "
            "descriptions) or choose them with MS bands to fuse (MS_BANDS)")


def holds_bands(ms: RasterInfo, spec: Sensor, selection: list[int] | None, model_bands: list[str]) -> bool:
    """Whether the selected MS bands (None: all) hold every band a model fuses."""
    return _match(model_bands, list(selection or range(1, ms.bands + 1)), _names(ms, spec), kind_of(spec)) is not None


def _match(wanted: list[str], chosen: list[int], names: list[str], kind=band_kind) -> list[int] | None:
    """The chosen bands whose kinds match the model's band names, in the model's order; None if one is missing."""
    out = []
    for w in wanted:
        k = kind(w)
        hit = [b for b in chosen if k is not None and kind(names[b - 1]) == k and b not in out]
        if not hit:
            return None
        out.append(hit[0])
    return out


def holds_sensor_bands(ms: RasterInfo, spec: Sensor) -> bool:
    """Whether the MS's band names hold every band of ``spec`` (found by name, in any order), while it has other
    bands too: a Landsat 8 B1-B7 stack named from its files holds OLI's B2-B5, and is its product all the same."""
    if spec.generic or not spec.band_names or ms.bands <= spec.n_bands:
        return False
    names, every = _names(ms, spec), list(range(1, ms.bands + 1))
    kind = kind_of(spec)
    if _match(list(spec.band_names), every, names, kind) is None:
        return False
    # QA: an alpha-like 'Band 5' was fused as a fifth band, an 8-band WorldView-2 under SENSOR wv2 with the 4-band
    # sensor's MTF gains, a Pleiades Neo under 'pleiades' — all refused before, naming the sensor that fits. The other
    # bands must be spectral bands by name, and no sensor of the MS's own band count may hold them all.
    if any(kind(n) is None for n in names):
        return False
    return not any(other.n_bands == ms.bands and not other.generic and other.band_names
                   and _match(list(other.band_names), every, band_names(ms.descriptions, other), kind_of(other))
                   is not None for other in SENSORS.values())


def effective_selection(ms: RasterInfo, spec: Sensor, selection: list[int] | None) -> list[int] | None:
    """The MS bands a run fuses as MS_BANDS would name them: ``selection``, else all bands listed when the MS holds
    the sensor's bands among others (``holds_sensor_bands``), else None (all, as the sensor's layout). Leaving
    MS_BANDS empty then takes the same path as listing every band (QA: a Landsat 8 B1-B7 stack fell back to
    generic and MTF-GLP-FS by default, yet fused B2-B5 with KSDiff when 1..7 were listed)."""
    if selection or not holds_sensor_bands(ms, spec):
        return selection
    return list(range(1, ms.bands + 1))


def select_bands(ds: gdal.Dataset, info: RasterInfo, indices: list[int]) -> tuple[gdal.Dataset, RasterInfo]:
    """A virtual raster of ``indices`` (1-based, in order); the original itself when that is all of it in order."""
    if indices == list(range(1, info.bands + 1)):
        return ds, info
    vrt, msg = gdal_call(gdal.Translate, "", ds, format="VRT", bandList=indices)
    if vrt is None:
        raise InputError(f"cannot select the bands {indices} of {info.path}: {msg}")
    named_view(vrt, ds)
    # a VRT does not carry NBITS; the value range (and a model's normalisation) must stay the product's, also
    # when ``ds`` is a masked float view of it (``masks.masked_view``)
    sub = describe(vrt, info.path)
    return vrt, dataclasses.replace(sub, nbits=info.nbits, dtype=info.dtype, gdal_type=info.gdal_type,
                                    mask=info.mask, descriptions=[info.descriptions[b - 1] for b in indices])


def band_colours(ds: gdal.Dataset, stated: list[tuple[str, int]] | None, bands: list[int] | None = None) -> list[int]:
    """The GDAL colour interpretation of each band of ``ds``, a view of the MS file holding its 1-based ``bands``
    (default: all, in order): a band's Undefined replaced by the one its VRT source bands agree on (``stated``:
    ``delivery.source_band_statements`` of the file; ``gdalbuildvrt -separate`` copies none, so a stack of files
    tagged Red, Green, Blue said nothing)."""
    bands = bands or list(range(1, ds.RasterCount + 1))
    out = []
    for j, b in enumerate(bands, 1):
        colour = ds.GetRasterBand(j).GetColorInterpretation()
        if colour == gdal.GCI_Undefined and stated and b <= len(stated):
            colour = stated[b - 1][1]
        out.append(colour)
    return out


def colour_names(ds: gdal.Dataset, stated: list[tuple[str, int]] | None) -> list[str]:
    """GDAL's name of each band's colour interpretation ('Red', 'Undefined', ...), a VRT band's from its sources when
    it has none (``band_colours``)."""
    return [gdal.GetColorInterpretationName(c) for c in band_colours(ds, stated)]


def _said(descriptions: list[str], colours: list[str], dtype) -> dict[int, str]:
    """``colour_statement`` of bands with these ``descriptions`` and numpy ``dtype``."""
    said = {i: c.lower() for i, c in enumerate(colours) if not descriptions[i] and c.lower() in
            ("red", "green", "blue")}
    if dtype == np.uint8 and said == {0: "red", 1: "green", 2: "blue"}:
        return {}   # GDAL's default tags of any 3- or 4-band 8-bit GeoTIFF: they say nothing about the order
    return said


def colour_statement(colours: list[str], ms: RasterInfo) -> dict[int, str]:
    """The colour ('red', 'green', 'blue') the file's colour interpretation (``colours``: GDAL's names) gives each
    unnamed band (0-based), when it says one; GDAL's default tags of an 8-bit product (R, G, B on bands 1-3, whatever
    they hold) say nothing."""
    return _said(ms.descriptions, colours, ms.dtype)


def colour_named(descriptions: list[str], colours: list[str], dtype, role: str = "MS") -> tuple[list[str], list[str]]:
    """``descriptions`` with the unnamed bands the colour interpretation (``colours``: GDAL's names) tags Red, Green or
    Blue (``colour_statement``) named so, and the info line that says so (none when no band is). A colour tagged on
    two bands, or on one while another band is named so, names none. ``role``: the raster's, for that line."""
    said = _said(descriptions, colours, dtype)
    have = Counter(c for c in said.values()) + Counter(band_kind(d) for d in descriptions if d)
    named = {i: c for i, c in said.items() if have[c] == 1}
    if not named:
        return list(descriptions), []
    names = [d or (named[i].title() if i in named else "") for i, d in enumerate(descriptions)]
    return names, [f"{role} band names from the file's colour interpretation (the bands have no descriptions): "
                   + ", ".join(f"band {i + 1} {names[i]}" for i in sorted(named))]


def with_colour_names(ms: RasterInfo, colours: list[str]) -> tuple[RasterInfo, list[str]]:
    """``ms`` with its unnamed bands that the file's colour interpretation (``colours``: GDAL's names) tags Red, Green
    or Blue named so (``colour_named``), for every sensor: the model's band order, the MTF gains by name and the
    natural-colour style follow them (QA: an R, G, B, NIR product tagged so was fused as B, G, R, NIR under SENSOR
    auto/generic, Wald ERGAS 1.478 against 1.314 named, and got no style). Bands still unnamed (a NIR, which has no
    colour interpretation) are taken as the sensor's or the model's remaining bands, said by the "order assumed" line
    (``plan_bands``). Returns the info line that says so."""
    names, notes = colour_named(ms.descriptions, colours, ms.dtype)
    return (dataclasses.replace(ms, descriptions=names) if notes else ms), notes


def colour_order_note(colours: list[str], ms: RasterInfo, spec: Sensor) -> str | None:
    """A warning when bands without names are taken in the sensor's order while the file's colour interpretation
    (``colours``: GDAL's names, e.g. 'Red') says otherwise — e.g. an R, G, B, NIR product (Pleiades, SPOT) tagged as
    such, fused as WorldView-2's B, G, R, NIR: Red and Blue swapped in the fusion and in the output's names. The
    tags are not followed silently, and GDAL's default tags of an 8-bit product (R, G, B on bands 1-3, whatever they
    hold) are not taken for a statement."""
    if ms.bands != spec.n_bands:
        return None
    said = colour_statement(colours, ms)
    wrong = [i for i, c in said.items() if band_kind(spec.band_names[i]) != c]
    if not wrong:
        return None
    order: list[int | None] = []
    for name in spec.band_names:
        kind = band_kind(name)
        order.append(next((i + 1 for i, c in said.items() if c == kind), None))
    rest = iter(b for b in range(1, ms.bands + 1) if b not in order)
    order = [b if b is not None else next(rest, None) for b in order]
    hint = (f" If the file holds its bands in that order, set MS bands to fuse (MS_BANDS) to "
            f"{','.join(map(str, order))} (the sensor's order), or name its bands." if None not in order else
            " If the file holds its bands in that order, name its bands.")
    listed = ", ".join(f"band {i + 1} {said[i].title()}" for i in sorted(said))
    return (f"The MS bands have no names, so they are taken in the sensor's order ({', '.join(spec.band_names)}), "
            f"but the file's colour interpretation says {listed}.{hint}")
