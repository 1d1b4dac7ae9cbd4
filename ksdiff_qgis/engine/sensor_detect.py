"""``SENSOR=auto``: guess the sensor from the data and its metadata, and say why.

Evidence, strongest first: product metadata (GDAL's ``IMAGERY`` domain ``SATELLITEID``, a Maxar
``.IMD``/``.XML``, a Landsat ``MTL.txt``/``MTL.json``/``MTL.xml`` or an Airbus DIMAP that names either input or a
VRT's source files: ``delivery``) unless its sensor's ratio and PAN pixel size both contradict the data's, then band
descriptions, then the geometry (PAN/MS ratio, MS band count, PAN pixel size; at Landsat's, the MS's bit depth; where
two sensors share the pixel size, GaoFen-2's and IKONOS's 0.8 m, the MS's bit depth too: ``PIXEL_TWINS``).
Without a match the answer is
``generic`` with a warning: the classical methods still work, with generic MTF gains. Metadata that names a sensor
whose band count the MS does not have (a 3-band composite of a Landsat scene) gives ``generic`` with that sensor's
ratio and gains where they apply, with a warning; an explicit SENSOR is checked by the band plan instead. A sensor
without a SENSOR key (Landsat 4-7: ``sensors.METADATA_ONLY``) gives ``generic`` with its band codes, ratio and gains,
said as such; without any metadata file, a Landsat product ID the file names start with counts as metadata.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field, replace

import numpy as np
from osgeo import osr

from . import bandcodes, delivery
from .bands import band_kind, holds_sensor_bands
from .errors import InputError, shown_name
from .gdalutil import gdal_text, quiet_metadata
from .labels import param
from .metascan import MetadataScan
from .raster_io import RasterInfo, open_dataset, read_nearest
from .sensors import GENERIC_MTF_MS, GENERIC_MTF_PAN, METADATA_ONLY, SENSORS, Sensor, generic_like, known_sensor

# satellite ids as GDAL, Maxar, Airbus and USGS write them (upper case, spaces/dashes/underscores removed)
SATELLITE_IDS: dict[str, str] = {
    "WV02": "wv2", "WORLDVIEW2": "wv2",
    "WV03": "wv3", "WORLDVIEW3": "wv3",
    "WV04": "wv4", "WORLDVIEW4": "wv4",
    "QB02": "qb", "QB": "qb", "QUICKBIRD": "qb", "QUICKBIRD2": "qb",
    "GE01": "ge1", "GEOEYE1": "ge1",
    # no IK01: DigitalGlobe's own geoio keys IKONOS's IMD satId as IK02 (constants.DG_BAND_NAMES 'IK02_MULTI'); the
    # IK01 of the Polar Geospatial Center's imagery_utils is a code it gives GeoEye-format file names (lib/utils.py
    # get_sensor), not an IMD's satId (searched 2026-12-07)
    "IK02": "ikonos", "IKONOS": "ikonos", "IKONOS2": "ikonos",
    "PHR1A": "pleiades", "PHR1B": "pleiades", "PLEIADES1A": "pleiades", "PLEIADES1B": "pleiades", "PHR": "pleiades",
    "PNEO3": "pneo", "PNEO4": "pneo", "PNEO": "pneo", "PLEIADESNEO": "pneo",
    "SPOT6": "spot67", "SPOT7": "spot67",
    "GF2": "gf2", "GAOFEN2": "gf2",
    "LANDSAT8": "landsat8", "LANDSAT9": "landsat8", "LC08": "landsat8", "LC09": "landsat8",
    # no network or SENSOR key: generic, with Landsat 4-7's band codes, ratio and gains (``sensors.METADATA_ONLY``)
    "LANDSAT7": "landsat_tm", "LANDSAT5": "landsat_tm", "LANDSAT4": "landsat_tm", "LE07": "landsat_tm",
    "LT05": "landsat_tm", "LT04": "landsat_tm",
}
LANDSAT_KEYS = {"oli": "landsat8", "tm": "landsat_tm"}   # sensor key by a product ID's band numbering
MAX_IMAGERY_SOURCES = 8   # a VRT's source files whose GDAL IMAGERY metadata is read
# the key for a satellite's product with this many MS bands, when it differs from the default key
BAND_VARIANTS = {("wv2", 8): "wv2_8", ("wv3", 4): "wv3_4"}

# (sensor, PAN pixel sizes in metres) for ratio 4 by MS band count, first match wins: where sensors share
# a pixel size (0.5 m resampled WorldView-2, GeoEye-1 and Pléiades) the sensor with a trained model comes first
BY_PIXEL_SIZE: dict[int, list[tuple[str, float, float]]] = {
    4: [("wv4", 0.25, 0.38), ("wv2", 0.38, 0.56), ("qb", 0.56, 0.7), ("gf2", 0.7, 0.9), ("ikonos", 0.9, 1.2),
        ("spot67", 1.2, 1.8)],
    6: [("pneo", 0.2, 0.45)],
    8: [("wv3", 0.2, 0.38), ("wv2_8", 0.38, 0.7)],
}
# sensors whose products share the pixel size BY_PIXEL_SIZE gives the first of them, too close for the size to tell
# apart, each with the PAN pixel sizes (m) where it does: GaoFen-2 (0.81 m, 10-bit) and IKONOS (0.82 m nominal, archive
# products at 0.8 m; 11-bit), and Pléiades 1A/1B at its own 0.7 m (12-bit; up to 10 % coarser): BY_PIXEL_SIZE's
# first-match rule keeps it out only where its products are resampled, at 0.5 m, which WorldView-2's network serves
# (QA: a 0.70 m 14-bit product fitted only GaoFen-2 and IKONOS). QA: an IKONOS product at 0.80 m was taken as
# GaoFen-2 and its 11-bit values divided by GaoFen-2's 1023. The data's bit depth decides (``_by_bit_depth``); where
# several hold the values, the first of them is kept and the warning names them; where none does, no known sensor fits
PIXEL_TWINS: dict[int, dict[str, tuple[tuple[str, float, float], ...]]] = {
    4: {"gf2": (("ikonos", 0.7, 0.9), ("pleiades", 0.7, 0.77))}}
TOP_SAMPLE = 512   # the MS read decimated to at most this many pixels a side (nearest: real values) for its top value


# ends the reason of a guess from the data alone (``Detection.confirmed`` takes it out)
BE_SURE = ": set SENSOR to be sure"


@dataclass
class Detection:
    key: str
    reasons: list[str] = field(default_factory=list)
    source: str = "geometry"     # "metadata", "descriptions", "geometry" or "fallback"
    like: str | None = None      # generic: the sensor whose ratio and gains apply (``sensors.generic_like``)
    # what the log must warn about besides the guess: metadata that disagrees, or names a satellite KSDiff lacks
    warnings: list[str] = field(default_factory=list)
    ratio: int | None = None     # a resolution ratio the evidence states (a Wald case's tag), for ERGAS
    # no known sensor has the data's shape (the first reason says it): a generic run, said as such (``message``)
    unrecognised: bool = False

    def sensor(self) -> Sensor:
        """The sensor the run uses."""
        return generic_like(self.like) if self.like else SENSORS[self.key]

    def confirmed(self, why: str) -> Detection:
        """This guess with ``why`` (evidence that names the same sensor) instead of the advice to set SENSOR to be
        sure."""
        return replace(self, reasons=[r for r in self.reasons if not r.endswith(BE_SURE)] + [why])

    def message(self, network: str | None = None) -> str:
        """The guess for the log. ``network``: for a product of no known sensor, the bundled network it gets and
        what checks it ('the WorldView-2 network (wv2.onnx); the self-check below compares ...'): one actionable line
        (QA: "no known sensor ..." then "generic sensor: using the bundled network ...; compare with a classical
        method" right above the self-check that compares them)."""
        if self.unrecognised:
            gains = f"generic MTF gains ({GENERIC_MTF_MS:g} for MS, {GENERIC_MTF_PAN:g} for PAN)"
            notes = "".join(f"; {n}" for n in self.reasons[1:])
            return (f"Sensor not recognised ({self.reasons[0]}): {gains}" + (f" and {network}" if network else "")
                    + f"{notes}. Set {param('SENSOR')} if you know the sensor.")
        name = self.sensor().name
        return f"SENSOR=auto: {name} [{self.key}] — {'; '.join(self.reasons)}"


def _norm_id(text: str) -> str:
    return re.sub(r"[\s_\-]", "", text).upper()


def _satellite_key(text: str) -> str | None:
    return SATELLITE_IDS.get(_norm_id(text))


def _imagery_domain(path: str) -> str | None:
    try:   # a file GDAL cannot open simply carries no IMAGERY metadata
        ds = open_dataset(path, "input")
    except InputError:
        return None
    md = quiet_metadata(ds, "IMAGERY")
    return md.get("SATELLITEID")


def _from_sidecar(path: str, text: str) -> str | None:
    """Satellite id in a Maxar IMD/XML, a Landsat MTL (text, JSON or XML) or an Airbus DIMAP: ``path``, whose head is
    ``text``."""
    if path.lower().endswith(".json"):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        stack = [data]
        while stack:       # SPACECRAFT_ID sits a level or two down; walk without caring where
            node = stack.pop()
            if isinstance(node, dict):
                if isinstance(node.get("SPACECRAFT_ID"), str):
                    return node["SPACECRAFT_ID"]
                stack.extend(node.values())
        return None
    for pat in (r'satId\s*=\s*"([^"]+)"', r"<SATID>\s*([^<]+?)\s*</SATID>", r'SPACECRAFT_ID\s*=\s*"?([^"\s]+)"?',
                # a Landsat Collection 2 MTL.xml (beside MTL.txt and MTL.json; QA: kept alone, it was not read)
                r"<SPACECRAFT_ID>\s*([^<]+?)\s*</SPACECRAFT_ID>",
                # China's vendors (GaoFen-1/2, SuperView ...): <ProductMetaData><SatelliteID>GF2</SatelliteID>
                r"<SatelliteID>\s*([^<]+?)\s*</SatelliteID>",
                r"<MISSION>\s*([^<]+?)\s*</MISSION>\s*<MISSION_INDEX>\s*([^<]+?)\s*</MISSION_INDEX>"):
        m = re.search(pat, text, re.IGNORECASE)
        if m:
            # a Landsat 4/5 MSS product numbers its bands otherwise than TM: no sensor KSDiff knows
            sensor = delivery.MTL_SENSOR.search(text) if "SPACECRAFT" in pat else None
            mss = sensor is not None and sensor.group(1).upper() == "MSS"
            return "".join(m.groups()) + (" MSS" if mss else "")
    return None


@dataclass
class Candidate:
    """A sensor some product metadata names: its key, where it was found, and which input it names (an index into
    the paths searched: ``detect_sensor`` searches MS, then PAN)."""
    key: str
    why: str
    input: int


def metadata_candidates(paths: list[str], scan: MetadataScan | None = None) -> tuple[list[tuple[str, str]], list[str]]:
    """(sensor key, where it was found) per piece of product metadata that names ``paths`` (GDAL's IMAGERY domain of
    the inputs and of a VRT's source files, then the metadata files that name them: ``delivery.metadata_files``),
    strongest first; and a note per metadata file beside them that names a satellite but not the input (ignored),
    or a satellite KSDiff has no entry for. ``scan``: the run's, whose files are not searched or read again."""
    found, unknown, strangers = _candidates(paths, scan or MetadataScan())
    return [(c.key, c.why) for c in found], [f"{file} says {sat}, a satellite KSDiff has no entry for: ignored"
                                             for file, sat in unknown] + strangers


def _candidates(paths: list[str], scan: MetadataScan) -> tuple[list[Candidate], list[tuple[str, str]], list[str]]:
    """``metadata_candidates``: the candidates with the input each names, (file name, satellite) per metadata file
    that names a satellite KSDiff has no entry for, and the notes on files that name none of the inputs."""
    found: list[Candidate] = []
    for i, p in enumerate(paths):
        for file in delivery.input_files(p)[:1 + MAX_IMAGERY_SOURCES]:
            sat = _imagery_domain(file)
            if sat and _satellite_key(sat):
                found.append(Candidate(_satellite_key(sat),
                                       f"GDAL IMAGERY metadata of {shown_name(os.path.basename(file))} says "
                                       f"SATELLITEID={shown_name(sat)}", i))
    named: set[str] = set()
    strangers: dict[str, str] = {}
    unknown: list[tuple[str, str]] = []
    for i, p in enumerate(paths):
        naming, other = delivery.metadata_files(p, scan)
        for side in naming:
            sat = _from_sidecar(side, scan.text(side))
            if sat and _satellite_key(sat) and side not in named:
                named.add(side)
                said = f"{shown_name(os.path.basename(side))} says {shown_name(sat)}"
                found.append(Candidate(_satellite_key(sat), said, i))
            elif sat and side not in named:
                named.add(side)
                # the satellite id and file name of a file are untrusted text: shown on one line, cut
                unknown.append((shown_name(os.path.basename(side)), shown_name(sat)))
        for side in other:
            sat = _from_sidecar(side, scan.text(side))
            if sat and _satellite_key(sat):
                strangers[side] = shown_name(sat)
    if not found:   # no metadata file: a Landsat product ID the file names start with (LE07_..., LC80200392015216...)
        for i, p in enumerate(paths):
            for file in delivery.input_files(p):
                product = delivery.landsat_id(file)
                if product:
                    found.append(Candidate(LANDSAT_KEYS[product[0]], f"the file name {os.path.basename(file)} carries "
                                                                     f"a Landsat {product[1]} product ID", i))
                    break
            if found:
                break
    # a file that names the PAN and lies beside the MS too is no stranger to the input
    return found, unknown, [f"{shown_name(os.path.basename(side))} ({sat}) lies beside the input but names none of its "
                            "files: ignored" for side, sat in strangers.items() if side not in named]


def metadata_satellite(paths: list[str]) -> tuple[str, str] | None:
    """(sensor key, where it was found) from the product metadata that names ``paths``, or None."""
    found, _ = metadata_candidates(paths)
    return found[0] if found else None


def metadata_detection(paths: list[str], ms_bands: int) -> Detection | None:
    """The sensor the product metadata of ``paths`` names (its band variant for ``ms_bands`` MS bands), or None."""
    found = metadata_satellite(paths)
    if not found:
        return None
    key, why = found
    if key in METADATA_ONLY:
        return Detection("generic", [why, _generic_as(key), f"{ms_bands} MS bands"], "metadata", like=key)
    return Detection(BAND_VARIANTS.get((key, ms_bands), key), [why, f"{ms_bands} MS bands"], "metadata")


def _plugin_tag(path: str, name: str) -> str | None:
    """The default-domain metadata item ``name`` of ``path`` (None when absent or unreadable)."""
    try:   # a file GDAL cannot open simply carries no tag
        ds = open_dataset(path, "input")
    except InputError:
        return None
    return gdal_text(ds.GetMetadataItem(name) or "").strip() or None


def wald_tag(path: str) -> dict[str, str]:
    """The fields of the ``KSDIFF_WALD`` tag ``model_core.wald.make_reduced_case`` writes into a Wald case's PAN, MS
    and reference (``sensor=landsat8 ratio=2 ms_window=...``; a fusion of the case inherits it), or {}."""
    text = _plugin_tag(path, "KSDIFF_WALD") or ""
    return dict(part.split("=", 1) for part in text.split() if "=" in part)


def tagged_ratio(path: str) -> int | None:
    """The resolution ratio ksdiff:pansharpen fused ``path`` at (its ``KSDIFF_RATIO`` tag), or None (no tag: not
    a KSDiff output, or one from before the tag came, 2026-12-07)."""
    text = _plugin_tag(path, "KSDIFF_RATIO") or ""
    return int(text) if text.isdigit() and int(text) >= 2 else None


def plugin_tag_detection(fused: str, others: list[str], bands: int, descriptions: list[str]) -> Detection | None:
    """The sensor KSDiff's own tags or the band codes name, for an assessment without the original PAN and MS and
    without product metadata: ``KSDIFF_SENSOR`` of ``fused`` (``provenance``: the sensor ksdiff:pansharpen fused
    with), else the ``KSDIFF_WALD`` sensor of ``fused`` or ``others`` (the Wald case it was made from), else Landsat
    8/9 OLI band codes in ``descriptions`` (as ``detect_sensor``, the ratio unchecked:
    no PAN and MS tell it). The Detection keeps the ratio for ERGAS: ``fused``'s ``KSDIFF_RATIO``, else the Wald
    case's. None when none of these names a sensor KSDiff has."""
    wald = next((w for w in (wald_tag(p) for p in [fused, *others]) if w), {})
    # the ratio FUSED was fused at, else the Wald case's: ERGAS divides by it (QA: generic fusions had ERGAS n/a)
    ratio = tagged_ratio(fused) or (int(wald["ratio"]) if wald.get("ratio", "").isdigit() else None)
    tagged = _plugin_tag(fused, "KSDIFF_SENSOR")
    if tagged in SENSORS:
        why = [f"FUSED's tag KSDIFF_SENSOR={tagged} (the sensor ksdiff:pansharpen fused it with)"
               + (f", fused at ratio {ratio} (its tag KSDIFF_RATIO)" if ratio and tagged_ratio(fused) else "")]
        if wald.get("sensor") not in (None, tagged):
            why.append(f"the Wald case's KSDIFF_WALD says sensor={wald['sensor']}: FUSED's tag decides")
        return Detection(tagged, why, "metadata", ratio=ratio)
    if wald.get("sensor") in SENSORS:
        return Detection(wald["sensor"], [f"the Wald case's tag KSDIFF_WALD=sensor={wald['sensor']}"
                                          + (f" ratio={ratio}" if ratio else "") + " (model_core.wald)"],
                         "metadata", ratio=ratio)
    key = _codes(bands, descriptions)
    if key:
        shown = ", ".join(map(shown_name, descriptions))
        return Detection(key, [f"band descriptions {shown} ({_short(SENSORS[key].name)} band "
                               "codes; the ratio is not checked without the original PAN and MS)",
                               f"set {param('SENSOR')} to be sure"], "descriptions", ratio=ratio)
    return None


def _generic_as(key: str) -> str:
    """Why a sensor without a SENSOR key (``METADATA_ONLY``) runs as generic, and what of it applies."""
    spec = METADATA_ONLY[key]
    return (f"{_short(spec.name)} has no network or SENSOR entry of its own: fused as generic, with its band codes "
            f"({', '.join(spec.band_names)}), ratio {spec.ratio} and MTF gains")


def pixel_size_m(info: RasterInfo) -> float | None:
    """PAN pixel size in metres (geographic CRS converted at the raster's latitude), or None."""
    if not info.wkt:
        return None
    srs = osr.SpatialReference()
    if srs.ImportFromWkt(info.wkt) != 0:
        return None
    sides = pixel_sides_m(info, srs)
    return math.sqrt(sides[0] * sides[1])


def pixel_sides_m(info: RasterInfo, srs: osr.SpatialReference) -> tuple[float, float]:
    """The pixel's (east-west, north-south) sides in metres; a geographic CRS's at the raster's mid latitude."""
    w, h = abs(info.gt[1]), abs(info.gt[5])
    if srs.IsGeographic():
        lat = math.radians(info.gt[3] + info.gt[5] * info.height / 2)
        return w * 111_320.0 * max(math.cos(lat), 1e-6), h * 111_320.0
    unit = srs.GetLinearUnits() or 1.0
    return w * unit, h * unit


def _non_square(info: RasterInfo) -> str | None:
    """A note when the PAN pixel is far from square on the ground (square degrees at a high latitude): its size says
    little about the sensor then."""
    srs = osr.SpatialReference()
    if not info.wkt or srs.ImportFromWkt(info.wkt) != 0:
        return None
    ew, ns = pixel_sides_m(info, srs)
    if max(ew, ns) < 1.5 * min(ew, ns):
        return None
    return (f"the PAN pixel is {ew:.2f} x {ns:.2f} m on the ground (east-west x north-south), far from square: its "
            "size is a weak clue, set SENSOR")


# a PAN pixel within this factor (either way) of a sensor's nominal size can be its product's ...
PIXEL_FACTOR = 1.5
# ... and sensors finer than half a metre are commonly delivered resampled to 0.5 m (Maxar's and Airbus's 50 cm
# products, Pléiades 1A/1B's 0.7 m at 0.5 m), so their products reach up to this size times the factor
RESAMPLED_M = 0.5


def fits_pan_pixel(spec: Sensor, gsd: float) -> bool:
    """Whether a PAN pixel of ``gsd`` metres can be sensor ``spec``'s product (True for a sensor without a nominal
    size: generic)."""
    if not spec.pan_gsd:
        return True
    return spec.pan_gsd / PIXEL_FACTOR < gsd < max(spec.pan_gsd, RESAMPLED_M) * PIXEL_FACTOR


def pan_pixel_m(pan: RasterInfo) -> float | None:
    """The PAN pixel size in metres when it is known in metres: a projected CRS, or a geographic one whose pixel is
    about square on the ground; None without a CRS, in a local (engineering) CRS or for square degrees far north."""
    srs = osr.SpatialReference()
    if not pan.wkt or srs.ImportFromWkt(pan.wkt) != 0 or not (srs.IsProjected() or srs.IsGeographic()):
        return None
    if srs.IsGeographic() and _non_square(pan):
        return None
    return pixel_size_m(pan)


def native_ratio(sensor: str, pan: RasterInfo, n_bands: int) -> tuple[int, str] | None:
    """(ratio, whose) an MS resampled onto the PAN grid most likely had before: the SENSOR's (not auto, not
    generic), else the one ratio of every sensor whose products have ``n_bands`` MS bands and a PAN pixel that fits
    the PAN's; None when neither tells (for the refusal's command, ``grid.too_close_ratio``)."""
    spec = SENSORS.get(sensor) or METADATA_ONLY.get(sensor)
    if spec is not None and spec.ratio:
        return spec.ratio, f"{_short(spec.name)}'s ratio"
    gsd = pan_pixel_m(pan)
    fit = [s for s in SENSORS.values() if not s.generic and s.n_bands == n_bands and s.pan_gsd
           and fits_pan_pixel(s, gsd)] if gsd else []
    ratios = {s.ratio for s in fit}
    if len(ratios) != 1:
        return None
    names = ", ".join(_short(s.name) for s in fit[:3]) + (" ..." if len(fit) > 3 else "")
    return ratios.pop(), f"the ratio of {n_bands}-band products with a {gsd:.2g} m PAN pixel: {names}"


def _order(spec: Sensor) -> tuple[str | None, ...]:
    return tuple(band_kind(n, spec.landsat or False) for n in spec.band_names)


def _fitting(n_bands: int, ratio: int, gsd: float) -> list[Sensor]:
    """The sensors (with a SENSOR key) whose products have ``n_bands`` MS bands, ``ratio`` and a PAN pixel that
    fits ``gsd``."""
    return [s for s in SENSORS.values() if not s.generic and s.n_bands == n_bands and s.ratio == ratio and
            s.pan_gsd and fits_pan_pixel(s, gsd)]


def band_order_doubt(found: Detection, pan: RasterInfo, ms: RasterInfo, ratio: int,
                     tagged: set[int] | None = None) -> str | None:
    """A warning when SENSOR=auto took the sensor from the geometry alone (no metadata, no band names) and sensors
    that fit the data's PAN pixel size, band count and ratio deliver their MS bands in different orders (WorldView-2,
    GeoEye-1, QuickBird B, G, R, NIR; Pléiades, SPOT 6/7 R, G, B, NIR): the unnamed bands are taken in the guessed
    sensor's order, which swaps Red and Blue of the others' products. None when the bands where the orders differ
    are all named or carry a colour interpretation (``tagged``: 0-based bands; ``bands.colour_statement``)."""
    gsd = pixel_size_m(pan)
    if found.source != "geometry" or found.key not in SENSORS or SENSORS[found.key].generic or gsd is None:
        return None
    spec = SENSORS[found.key]
    mine = _order(spec)
    others: dict[tuple[str | None, ...], list[Sensor]] = {}
    alike: list[Sensor] = []
    for s in _fitting(ms.bands, ratio, gsd):
        (alike if _order(s) == mine else others.setdefault(_order(s), [])).append(s)
    differ = [i for i in range(ms.bands) if any(o[i] != mine[i] for o in others)]
    if not others or all(ms.descriptions[i] or i in (tagged or set()) for i in differ):
        return None
    names = ", ".join(f"{_short(s.name)} [{s.key}]" for s in alike)
    theirs = "; ".join(", ".join(f"{_short(s.name)} [{s.key}]" for s in group) + " products come as "
                       + ", ".join(group[0].band_names) + " (MS_BANDS " + ",".join(str(order.index(k) + 1)
                                                                             for k in mine) + ")"
                       for order, group in others.items())
    kinds = [spec.band_names[i] for i in differ]
    mixed = f"{' and '.join(kinds)} would be swapped" if len(kinds) == 2 else f"{', '.join(kinds)} would be mixed up"
    return (f"SENSOR=auto took {_short(spec.name)} from the PAN pixel size alone ({gsd:.2f} m) and the MS bands have "
            f"no names, so they are taken in its order ({', '.join(spec.band_names)}, as {names} deliver them), but "
            f"{theirs}: if the product is one of these, set SENSOR to its sensor (or MS bands to fuse, MS_BANDS, as "
            f"given), else its {mixed}")


def ambiguous_codes(found: Detection | None, descriptions: list[str]) -> tuple[list[int], str] | None:
    """The 0-based bands named only by a bare Landsat band code ('B4'), and the warning, when SENSOR=auto took
    Landsat 8/9 from the geometry alone (``found``): such a code means another colour on Landsat 4-7 (B4: NIR, Red on
    Landsat 8/9; a 16-bit Level-2 ETM+ product has the same geometry), so no colour is claimed from it. None else."""
    if found is None or found.source != "geometry" or found.key != "landsat8":
        return None
    bare = [i for i, d in enumerate(descriptions) if d and bandcodes.parse(d) and bandcodes.parse(d).landsat]
    if not bare:
        return None
    codes = ", ".join(shown_name(descriptions[i].strip()) for i in bare)
    return bare, (f"The MS bands are named only {codes} and SENSOR=auto took Landsat 8/9 from the geometry alone: "
                  "Landsat 8/9 OLI numbers B1 Coastal, B2 Blue, B3 Green, B4 Red, B5 NIR, Landsat 4-7 TM/ETM+ B1 "
                  "Blue, B2 Green, B3 Red, B4 NIR, so the output keeps the bare codes and gets no natural colour from "
                  f"them (no colour tags, no QGIS style); for Landsat 8/9 set {param('SENSOR', 'landsat8')}, else "
                  "name the bands (e.g. B4 NIR).")


PIXEL_NOTE = "The PAN pixel is "   # the start of pixel_size_note's warning, which also says a ratio that differs


def pixel_size_note(spec: Sensor, pan: RasterInfo, n_bands: int, ratio: int) -> str | None:
    """A warning when an explicit SENSOR's nominal PAN pixel size is far from the data's (beyond ``PIXEL_FACTOR``
    either way, allowing the 0.5 m products of finer sensors): a SPOT 6/7 product run as Pléiades, a WorldView-2
    one as IKONOS. Only when the data's size is known in metres (``pan_pixel_m``); names the sensors that fit."""
    gsd = pan_pixel_m(pan)
    if gsd is None or fits_pan_pixel(spec, gsd):
        return None
    fit = _fitting(n_bands, ratio, gsd)
    hint = (f"; sensors whose products fit it ({n_bands} MS bands, ratio {ratio}): "
            + ", ".join(f"{_short(s.name)} [{s.key}]" for s in fit) if fit else "")
    sizes = f"{spec.pan_gsd:g} m" + (f", products down to {RESAMPLED_M:g} m" if spec.pan_gsd < RESAMPLED_M else "")
    name = _short(spec.name)
    # one warning for one cause: a ratio that differs too is said here, with what the fusion then uses (QA: two
    # warnings, neither saying the sensor's MTF gains still applied)
    other_ratio = bool(spec.ratio) and ratio != spec.ratio
    ratio_part = f" and its PAN/MS ratio is {ratio}, not {spec.ratio}" if other_ratio else ""
    gains = ", ".join(f"{g:g}" for g in dict.fromkeys(spec.mtf_ms))
    used = (f"the fusion uses ratio {ratio} with {name}'s MTF gains ({gains} for MS, {spec.mtf_pan:g} for PAN)"
            if other_ratio else f"the fusion uses {name}'s MTF gains ({gains} for MS, {spec.mtf_pan:g} for PAN)")
    return (f"{PIXEL_NOTE}{gsd:.2f} m, far from {name}'s ({sizes}){ratio_part}: {used}. Check "
            f"{param('SENSOR')}, or set it to auto{hint}.")


def _from_descriptions(ms: RasterInfo) -> str | None:
    return _codes(ms.bands, ms.descriptions)


def _codes(bands: int, descriptions: list[str]) -> str | None:
    """The sensor whose band codes ``descriptions`` (of ``bands`` bands) carry, or None."""
    names = " ".join((d or "").lower() for d in descriptions)
    if bands == 4 and all(re.search(rf"\bb{n}\b", names) for n in (2, 3, 4, 5)):
        return "landsat8"     # OLI band numbers (B2 Blue ... B5 NIR)
    return None


LANDSAT_PAN_M = (13.0, 17.0)
# a product's PAN pixel may be resampled (0.5 m Pléiades from 0.7 m): metadata is contradicted only by another ratio
# together with a PAN pixel outside this factor of the sensor's nominal size (a Landsat MTL beside a 0.5 m pair)
PAN_SIZE_FACTOR = (0.5, 2.0)


def _contradiction(key: str, ratio: int, gsd: float | None) -> str | None:
    """Why the data cannot be sensor ``key``'s product (another ratio and a PAN pixel far from its size), or None."""
    spec = known_sensor(key)
    if not spec.ratio or ratio == spec.ratio or gsd is None or not spec.pan_gsd:
        return None
    if PAN_SIZE_FACTOR[0] <= gsd / spec.pan_gsd <= PAN_SIZE_FACTOR[1]:
        return None
    return (f"{_short(spec.name)} has ratio {spec.ratio} and a {spec.pan_gsd:g} m PAN pixel, the data ratio {ratio} "
            f"and a {gsd:.2f} m PAN pixel")


def _short(name: str) -> str:
    return name.split(" (")[0]


def detect_sensor(pan: RasterInfo, ms: RasterInfo, ratio: int, selection: list[int] | None = None,
                  scan: MetadataScan | None = None) -> Detection:
    """Best guess of the sensor key for a PAN/MS pair with the given ratio. ``selection``: MS_BANDS, whose bands
    need not be as many as the sensor's (the band plan checks them); without it, a product whose metadata names a
    sensor with another band count (a 3-band composite) is generic, with that sensor's gains where they apply.
    ``scan``: the run's metadata files, found and read once (``metascan``). The Detection's warnings say when the
    metadata names different satellites, or one KSDiff has no entry for, and what is used instead."""
    found, unknown, notes = _candidates([ms.path, pan.path], scan or MetadataScan())
    # the MS's metadata before the PAN's: the sensor's band layout and MS gains describe the MS's bands
    found.sort(key=lambda c: c.input)
    gsd = pixel_size_m(pan)
    guess = _detect(pan, ms, ratio, selection, gsd, found, notes, bool(unknown))
    used = next((c for c in found if c.why == guess.reasons[0]), None)
    if used:
        guess.warnings += _conflict(used, [c for c in found if not _contradiction(c.key, ratio, gsd)], guess)
    sats = {sat: [f for f, s in unknown if s == sat] for _, sat in unknown}
    guess.warnings += [_unknown_warning(files, sat, used, guess) for sat, files in sats.items()]
    return guess


ROLES = ("MS", "PAN")   # the inputs ``detect_sensor`` searches, in that order


def _conflict(used: Candidate, found: list[Candidate], guess: Detection) -> list[str]:
    """The warning when the product metadata ``found`` (the data contradicts none) names satellites other than the
    one ``used``; else nothing."""
    others = [c for c in found if c.key != used.key]
    if not others:
        return []
    said: dict[tuple[int, str], str] = {}
    for c in found:
        # per input and satellite, the metadata file over GDAL's IMAGERY domain of the image (which GDAL read from it)
        if (c.input, c.key) not in said or said[c.input, c.key].startswith("GDAL"):
            said[c.input, c.key] = c.why
    listed = "; ".join(f"the {ROLES[i]}'s: {why}" for (i, _), why in said.items())
    why_used = ("the MS's metadata decides, as the sensor's band layout and MS gains describe the MS's bands"
                if used.input == 0 and any(c.input == 1 for c in others) else "the first found decides")
    return [f"SENSOR=auto: the product metadata names different satellites ({listed}). {_short(guess.sensor().name)} "
            f"[{guess.key}] is used, as {said[used.input, used.key]}: {why_used}. A PAN and an MS of different "
            f"satellites do not fuse well: check that they belong together, or set {param('SENSOR')}."]


def _unknown_warning(files: list[str], sat: str, used: Candidate | None, guess: Detection) -> str:
    """The warning for the metadata ``files`` that name the satellite ``sat``, which KSDiff has no entry for, with
    what the run uses instead (``used``: the metadata that named a known sensor, if any)."""
    name = f"{_short(guess.sensor().name)} [{guess.key}]"
    instead = (f"{name} is used, from {used.why}" if used else
               f"{name} is guessed from the data ({guess.reasons[0]}); its band order, MTF gains and value scale "
               f"need not be the satellite's: set {param('SENSOR')} to the sensor yours resembles, or to generic")
    says = f"{' and '.join(files)} {'say' if len(files) > 1 else 'says'} {sat}"
    return f"SENSOR=auto: {says}, a satellite KSDiff has no entry for: ignored, and {instead}."


def _bits(spec: Sensor) -> int:
    return int(round(math.log2(spec.scale + 1)))


def _named(spec: Sensor) -> str:
    return f"{_short(spec.name)} [{spec.key}]"


def data_top(info: RasterInfo) -> float | None:
    """The highest valid value of ``info``'s bands on one read decimated to ``TOP_SAMPLE`` pixels a side (nearest
    neighbour: values the raster holds; its nodata value left out); None when unreadable or no value is valid."""
    try:   # a raster GDAL cannot open says nothing of its bit depth
        ds = open_dataset(info.path, "MS")
    except InputError:
        return None
    bands = list(range(1, min(info.bands, ds.RasterCount) + 1))
    arr, _ = read_nearest(ds, TOP_SAMPLE, TOP_SAMPLE, bands)   # not an averaged overview's lowered top
    if arr is None:
        return None
    values = np.asarray(arr, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if info.nodata is not None:
        values = values[values != info.nodata]
    return float(values.max()) if values.size else None


def _listed(words: list[str]) -> str:
    """'A and B', 'A, B and C'."""
    return " and ".join(words) if len(words) < 3 else f"{', '.join(words[:-1])} and {words[-1]}"


def _by_bit_depth(keys: list[str], ms: RasterInfo, gsd: float) -> tuple[str | None, str, str | None]:
    """The sensor among ``keys`` (PIXEL_TWINS: the PAN pixel fits them alike; the first is the default) whose bit depth
    the MS's values have: the NBITS the MS declares, else its highest value (above 1023: no 10-bit product). Returns
    (key, the reason said with the guess, a warning naming those that hold the values with their SENSOR values when
    the data do not tell them apart); the key is None when the values exceed every one's range: no known sensor fits
    (QA: a 14-bit product at 0.70 m was fused as IKONOS, its values beyond IKONOS's 11 bits)."""
    specs = [SENSORS[k] for k in keys]
    sizes = _listed([f"{_named(s)} ({s.pan_gsd:g} m, {_bits(s)}-bit)" for s in specs])
    fits = f"the PAN pixel ({gsd:.2f} m) fits {sizes} alike"
    if ms.nbits and ms.dtype.kind in "iu":
        declared = [s for s in specs if _bits(s) == ms.nbits]
        if len(declared) == 1:
            return declared[0].key, f"{fits}: the MS declares NBITS={ms.nbits}, {_short(declared[0].name)}'s", None
    top = data_top(ms) if ms.dtype.kind in "iu" else None
    if top is None:
        held, seen = specs, "the MS's bit depth is unknown"
    else:
        held = [s for s in specs if top <= s.scale]
        seen = f"the MS's values reach {top:g}"
    beyond = [f"{_short(s.name)}'s {_bits(s)}-bit range (0-{s.scale:g})" for s in specs if s not in held]
    if not held:   # a 12-bit or 14-bit product of another sensor: none of their gains, bit depths or networks applies
        return None, f"{fits}, but {seen}, beyond each one's range: no known sensor fits", None
    if len(held) == 1:
        return held[0].key, (f"{fits}: {seen}, beyond {' and '.join(beyond)}, within {_short(held[0].name)}'s "
                             f"{_bits(held[0])}-bit"), None
    chosen = held[0]
    within = ("within each one's range" if len(held) == len(specs) else
              f"within {_listed([_short(s.name) + chr(39) + 's' for s in held])} ranges, beyond {' and '.join(beyond)}")
    others = "; ".join(f"{_short(s.name)}'s products, set {param('SENSOR', s.key)}" for s in held if s is not chosen)
    gains = "; ".join(f"{_short(s.name)} MS {', '.join(f'{g:g}' for g in s.mtf_ms)}, PAN {s.mtf_pan:g}" for s in held)
    warning = (f"SENSOR=auto: {fits}, and {seen}, {within}: {_named(chosen)} is used. For {others}: the sensors "
               f"differ in MTF gains ({gains}), value range and network.")
    return chosen.key, f"{fits}: {seen}, {within}", warning


def _detect(pan: RasterInfo, ms: RasterInfo, ratio: int, selection: list[int] | None, gsd: float | None,
            candidates: list[Candidate], notes: list[str], unknown: bool) -> Detection:
    """``detect_sensor``'s guess from the candidates (strongest first), the band descriptions, then the geometry;
    ``unknown``: metadata named a satellite KSDiff has no entry for (the guess is then not without metadata)."""
    gsd_txt = f"PAN pixel {gsd:.2f} m" if gsd is not None else "PAN pixel size unknown (no CRS)"
    bare = ("no product metadata names a sensor KSDiff has" if unknown else "no product metadata") + BE_SURE
    for cand in candidates:
        key, why = cand.key, cand.why
        wrong = _contradiction(key, ratio, gsd)
        if wrong:
            notes.append(f"{why}, but {wrong}: ignored")
            continue
        if key in METADATA_ONLY:
            return Detection("generic", [why, _generic_as(key), f"{ms.bands} MS bands", f"ratio {ratio}", *notes],
                             "metadata", like=key)
        key = BAND_VARIANTS.get((key, ms.bands), key)
        spec = SENSORS[key]
        if selection or ms.bands == spec.n_bands:
            return Detection(key, [why, f"{ms.bands} MS bands", f"ratio {ratio}", *notes], "metadata")
        if holds_sensor_bands(ms, spec):   # all bands, as MS_BANDS listing every one (``bands.effective_selection``)
            return Detection(key, [why, f"{ms.bands} MS bands, {spec.n_bands} of them {_short(spec.name)}'s by name",
                                   f"ratio {ratio}", *notes], "metadata")
        return Detection("generic", [why, f"{ms.bands} MS bands, where {_short(spec.name)} has {spec.n_bands} "
                                          f"({', '.join(spec.band_names)}): fused as generic, with its ratio and MTF "
                                          "gains where they apply (bands found by name)", f"ratio {ratio}", *notes,
                                     "set SENSOR with MS bands to fuse (MS_BANDS) to choose otherwise"],
                         "fallback", like=key)
    key = _from_descriptions(ms)
    if key and ratio == SENSORS[key].ratio:
        shown = ", ".join(map(shown_name, ms.descriptions))
        return Detection(key, [f"MS band descriptions {shown}", f"ratio {ratio}", gsd_txt,
                               *notes], "descriptions")
    # Landsat 8/9's 15 m, with room for a reprojection; a 10 m PAN at ratio 2 is Sentinel-2-like: generic
    if ratio == 2 and gsd is not None and LANDSAT_PAN_M[0] <= gsd <= LANDSAT_PAN_M[1] and ms.bands == 4:
        if ms.dtype == np.uint8:
            # Landsat 8/9 products are 16-bit; an 8-bit MS at 15/30 m is Landsat 7 ETM+ Level-1 (TM-like): fused as
            # its product ID would have it (QA: bare B1..B4 read with OLI numbers, NIR named and drawn as Red)
            return Detection("generic", [f"ratio 2, {gsd_txt}, {ms.bands} MS bands of 8 bits (Landsat 8/9 products "
                                         "are 16-bit: Landsat 7 ETM+)", _generic_as("landsat_tm"), bare, *notes],
                             like="landsat_tm")
        return Detection("landsat8", [f"ratio 2, {gsd_txt} (Landsat 8/9: 15 m), {ms.bands} MS bands",
                                      bare, *notes])
    if ratio == 4 and gsd is not None:
        for key, lo, hi in BY_PIXEL_SIZE.get(ms.bands, []):
            if lo <= gsd < hi:
                shared = PIXEL_TWINS.get(ms.bands, {}).get(key, ())
                twins = [key, *(k for k, t_lo, t_hi in shared if t_lo <= gsd < t_hi)]
                key, depth, doubt = _by_bit_depth(twins, ms, gsd) if len(twins) > 1 else (key, None, None)
                if key is None:   # the values are beyond every sensor the pixel size fits: a product of none of them
                    return Detection("generic", [f"ratio 4, {ms.bands} MS bands: {depth}", *notes],
                                     "fallback", unrecognised=True)
                spec = SENSORS[key]
                found = Detection(key, [f"ratio 4, {ms.bands} MS bands, {gsd_txt} (nominal {spec.pan_gsd:g} m)",
                                        *([depth] if depth else []), _non_square(pan) or bare, *notes])
                found.warnings += [doubt] if doubt else []
                return found
    return Detection("generic", [f"{ms.bands} MS bands, ratio {ratio}, {gsd_txt}", *notes], "fallback",
                     unrecognised=True)
