"""What a satellite delivery's files say about an input raster: the files behind it, the metadata files that name
it, and the band names its file names or an Airbus DIMAP give.

A VRT (QGIS's Build Virtual Raster, ``gdalbuildvrt``) is often saved outside the delivery, as a temporary file: its
source files are looked at too, and their folders searched for metadata. A metadata file in one of those folders
counts only when it names the input — one of its files by name (a Landsat MTL's ``FILE_NAME_BAND_x``, a DIMAP's
``DATA_FILE_PATH``, a Maxar ``.TIL``/``.XML``'s tile names), or a stem the input's file names start with (the MTL's
product ID, the ``.IMD`` of a Maxar image or its tiles): a Landsat MTL lying beside a WorldView-2 pair says nothing
about it.

Every function that looks at metadata files takes the run's ``MetadataScan`` (``metascan``): a run finds and reads
each of them once. Without one, a call makes its own.
"""
from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET

from osgeo import gdal

from . import bandcodes
from .gdalutil import gdal_call, gdal_text, vsi_folder
from .metascan import MetadataScan
from .raster_io.vrtxml import band_sources, read_vrt

TILE_MARK = re.compile(r"_R\d+C\d+", re.IGNORECASE)   # Maxar's and Airbus's tile suffix (..._R1C1...)
PRODUCT_IDS = re.compile(r'(?:LANDSAT_PRODUCT_ID|LANDSAT_SCENE_ID)\s*=\s*"([^"]+)"')
# a Landsat product ID at the start of a file name: Collection 1/2 'LE07_L1TP_...' (sensor letter, two-digit mission),
# the older scene ID 'LE70200392015216EDC00'; C: OLI/TIRS, O: OLI, E: ETM+, T: TM (TIRS-only on 8/9), M: MSS
LANDSAT_ID = re.compile(r"^L([COTEM])(?:0([4-9])_|([4-9])\d{13}[A-Z]{3}\d{2})", re.IGNORECASE)
# which band numbering a Landsat mission's products use (bands.band_kind), by (sensor letter, mission): MSS and
# TIRS-only products carry no bands of these kinds
LANDSAT_CODES = {("T", 4): "tm", ("T", 5): "tm", ("E", 7): "tm", ("C", 8): "oli", ("O", 8): "oli", ("C", 9): "oli",
                 ("O", 9): "oli"}
# an MTL's spacecraft and sensor, as MTL.txt (SPACECRAFT_ID = "LANDSAT_9"), MTL.json ("SPACECRAFT_ID": "LANDSAT_9")
# and MTL.xml (<SPACECRAFT_ID>LANDSAT_9</SPACECRAFT_ID>: Collection 2 ships it beside the other two, and a user may
# keep only it) write them
MTL_SPACECRAFT = re.compile(r'(?:"?SPACECRAFT_ID"?\s*[=:]\s*"?|<SPACECRAFT_ID>\s*)(LANDSAT_?([4-9]))\b',
                            re.IGNORECASE)
MTL_SENSOR = re.compile(r'(?:"?SENSOR_ID"?\s*[=:]\s*"?|<SENSOR_ID>\s*)([A-Z_+]+)', re.IGNORECASE)
MAX_SOURCES = 64   # a mosaic of many tiles: its first files are enough to say what it is


def vrt_sources(path: str) -> list[list[tuple[str, int]]] | None:
    """Per band of a VRT file, its sources as (file, band of that file); None when ``path`` is not a readable VRT."""
    if not path.lower().endswith(".vrt"):
        return None
    found = read_vrt(path)   # through GDAL's VSI layer: a VRT inside a zip or /vsimem/ is read as GDAL reads it
    if found is None:
        return None
    root, folder = found
    return [[(file, b) for _, file, b in sources] for _, sources in band_sources(root, folder)]


def input_files(path: str) -> list[str]:
    """The input and, for a VRT, its source files (at most ``MAX_SOURCES``)."""
    files = [os.path.abspath(path) if os.path.exists(path) else path]
    for band in vrt_sources(path) or []:
        for file, _ in band:
            if file not in files and len(files) <= MAX_SOURCES:
                files.append(file)
    return files


def band_code(file: str) -> str | None:
    """The band code a file name ends with ('..._B4.TIF' -> 'B4', Sentinel-2's '..._B04_10m.jp2' -> 'B04'), or None
    (``bandcodes``)."""
    return bandcodes.of_file(file)


def source_band_codes(path: str) -> list[str | None] | None:
    """Per band of a VRT, the band code of its source files when they are single-band files (their band 1) whose
    names all carry the same code; None when ``path`` is not a VRT."""
    bands = vrt_sources(path)
    if bands is None:
        return None
    codes: list[str | None] = []
    for band in bands:
        found = {band_code(file) if src_band == 1 else None for file, src_band in band}
        codes.append(found.pop() if len(found) == 1 else None)
    return codes


def source_band_statements(path: str) -> list[tuple[str, int]] | None:
    """Per band of a VRT, the (description, GDAL colour interpretation) its source bands state, each one only when
    every source band states the same ('' and ``gdal.GCI_Undefined`` otherwise); None when ``path`` is not a VRT.
    ``gdalbuildvrt`` (QGIS's Build Virtual Raster) copies no band description, nor, with -separate, the colour
    interpretation: a stack of a file whose bands are named Red, Green, Blue, NIR had unnamed bands. A source that is
    a VRT itself is read so too (a few levels deep); at most ``MAX_SOURCES`` sources of a band are opened (a mosaic's
    tiles name their bands alike)."""
    return _source_statements(path, {}, 0)


_MAX_DEPTH = 4   # a VRT of a VRT of a VRT ... and no further (a VRT naming itself is no loop then)


def _source_statements(path: str, seen: dict, depth: int) -> list[tuple[str, int]] | None:
    bands = vrt_sources(path)
    if bands is None:
        return None
    out = []
    for band in bands:
        said = {_band_statement(file, b, seen, depth) for file, b in band[:MAX_SOURCES] if b > 0}
        descriptions, colours = {d for d, _ in said}, {c for _, c in said}
        out.append((descriptions.pop() if len(descriptions) == 1 else "",
                    colours.pop() if len(colours) == 1 else gdal.GCI_Undefined))
    return out


def _band_statement(file: str, band: int, seen: dict, depth: int) -> tuple[str, int]:
    """(description, colour interpretation) of band ``band`` of ``file``; ('', GCI_Undefined) when it cannot be
    read. ``seen``: files opened so far in this call."""
    if file not in seen:
        ds, _ = gdal_call(gdal.OpenEx, file, gdal.OF_RASTER | gdal.OF_READONLY)
        inner = _source_statements(file, seen, depth + 1) if depth < _MAX_DEPTH else None
        found = []
        for b in range(1, (ds.RasterCount if ds is not None else 0) + 1):
            rb = ds.GetRasterBand(b)
            said = (gdal_text(rb.GetDescription()).strip(), rb.GetColorInterpretation())
            if inner and b <= len(inner):   # a VRT source's own unnamed band: what its sources say
                said = (said[0] or inner[b - 1][0], said[1] or inner[b - 1][1])
            found.append(said)
        seen[file] = found
    found = seen[file]
    return found[band - 1] if band <= len(found) else ("", gdal.GCI_Undefined)


def landsat_id(file: str) -> tuple[str, int] | None:
    """(band numbering, mission) of a Landsat product ID a file name starts with ('LE07_..._B4.TIF' -> ('tm', 7)),
    or None."""
    m = LANDSAT_ID.match(os.path.basename(file))
    if not m:
        return None
    mission = int(m.group(2) or m.group(3))
    codes = LANDSAT_CODES.get((m.group(1).upper(), mission))
    return (codes, mission) if codes else None


def _mtl_mission(text: str) -> tuple[str, int, str] | None:
    """(band numbering, mission, the spacecraft as written) an MTL's SPACECRAFT_ID says; an MSS product's, None."""
    m = MTL_SPACECRAFT.search(text)
    if not m:
        return None
    mission, sensor = int(m.group(2)), MTL_SENSOR.search(text)
    if sensor and sensor.group(1).upper() == "MSS":
        return None
    codes = "oli" if mission >= 8 else "tm" if mission in (4, 5, 7) else None
    return (codes, mission, m.group(1)) if codes else None


def landsat_mission(path: str, scan: MetadataScan | None = None) -> tuple[str, int, str] | None:
    """(band numbering 'tm' or 'oli', mission, why) of the Landsat product ``path`` (or a VRT's sources) belongs to:
    what the MTL that names it says (SPACECRAFT_ID), else the product ID its file names start with; None when
    neither says. Landsat 4-7 and 8/9 give the same band code different colours (B4: NIR or red)."""
    scan = scan or MetadataScan()
    naming, _ = metadata_files(path, scan)
    for side in naming:
        if "MTL" in os.path.basename(side).upper():
            found = _mtl_mission(scan.text(side))
            if found:
                return found[0], found[1], f"{os.path.basename(side)} says {found[2]}"
    for file in input_files(path):
        found = landsat_id(file)
        if found:
            return found[0], found[1], f"the file name {os.path.basename(file)} carries a Landsat {found[1]} product ID"
    return None


def _product_stem(side: str) -> str:
    """A metadata file's name without its extension and the affixes that mark it as metadata (DIM_, _MTL)."""
    stem = os.path.splitext(os.path.basename(side))[0]
    stem = re.sub(r"[_.]MTL$", "", stem, flags=re.IGNORECASE)
    return re.sub(r"^DIM_", "", stem, flags=re.IGNORECASE)


def _image_stem(file: str) -> str:
    """An image file's name without its extension, IMG_ prefix and tile marks (a tile names its product)."""
    stem = os.path.splitext(os.path.basename(file))[0]
    return TILE_MARK.sub("", re.sub(r"^IMG_", "", stem, flags=re.IGNORECASE))


def _starts(stem: str, prefix: str) -> bool:
    stem, prefix = stem.upper(), prefix.upper()
    return bool(prefix) and (stem == prefix or stem.startswith(prefix) and stem[len(prefix)] in "_-.")


def names_input(side: str, text: str, files: list[str]) -> bool:
    """Whether the metadata file ``side`` (its content ``text``) names one of the input's ``files``: it is one of
    them, lists one by file name, or carries a product stem or ID one's name starts with."""
    upper = text.upper()
    ids = [_product_stem(side), *PRODUCT_IDS.findall(text)]
    for file in files:
        if os.path.abspath(file) == os.path.abspath(side):
            return True
        if re.search(rf"(?<![\w.\-]){re.escape(os.path.basename(file).upper())}(?![\w.\-])", upper):
            return True
        if any(_starts(_image_stem(file), i) or _starts(os.path.splitext(os.path.basename(file))[0], i)
               for i in ids):
            return True
    return False


def metadata_files(path: str, scan: MetadataScan | None = None) -> tuple[list[str], list[str]]:
    """(metadata files that name ``path``, metadata files beside it or its sources that do not), each list in
    search order: the input's own folder first, then its sources' folders. Searched once per ``scan``."""
    scan = scan or MetadataScan()
    key = os.path.abspath(path)
    if key not in scan.found:
        scan.found[key] = _search(path, scan)
    naming, other = scan.found[key]
    return list(naming), list(other)


def _search(path: str, scan: MetadataScan) -> tuple[list[str], list[str]]:
    """``metadata_files``: the folders of the input and its sources searched, each file found read (``scan``)."""
    files = input_files(path)
    folders = []
    for file in files:
        folder = vsi_folder(file)   # a /vsizip/ folder too (metascan lists archives and memory, not the network)
        if folder and folder not in folders:
            folders.append(folder)
    found: list[str] = []
    for folder in folders:
        found += [p for p in scan.beside(folder) if p not in found]
    naming, other = [], []
    for side in found:
        (naming if names_input(side, scan.text(side), files) else other).append(side)
    return naming, other


# Airbus band IDs: Pléiades 1A/1B and SPOT 6/7 (B0 ... B3), Pléiades Neo (R, G, B, NIR, RE, DB)
DIMAP_BANDS = {"B0": "Blue", "B1": "Green", "B2": "Red", "B3": "NIR", "P": "PAN", "PAN": "PAN",
               "R": "Red", "G": "Green", "B": "Blue", "NIR": "NIR", "RE": "Red Edge", "DB": "Deep Blue"}
_CHANNELS = ("RED_CHANNEL", "GREEN_CHANNEL", "BLUE_CHANNEL", "ALPHA_CHANNEL")
_COLOUR_OF_CHANNEL = {"RED_CHANNEL": "Red", "GREEN_CHANNEL": "Green", "BLUE_CHANNEL": "Blue"}


def xml_local(tag: str) -> str:
    """An XML tag without its namespace (DIMAP files come with and without one)."""
    return tag.rsplit("}", 1)[-1]


def xml_all(root: ET.Element, name: str) -> list[ET.Element]:
    """``root`` and its descendants whose local tag is ``name``."""
    return [e for e in root.iter() if xml_local(e.tag) == name]


def xml_text(node: ET.Element, name: str) -> str:
    """The first non-empty text of ``node`` or a descendant whose local tag is ``name`` ('' when none)."""
    for e in node.iter():
        if xml_local(e.tag) == name and e.text and e.text.strip():
            return e.text.strip()
    return ""


def dimap_band_names(xml_path: str, n_bands: int,
                     scan: MetadataScan | None = None) -> tuple[list[str], str, str | None] | None:
    """Names of the ``n_bands`` raster bands of the Airbus DIMAP product ``xml_path``, what says so, and a note when
    that order is assumed against what the DIMAP lists elsewhere; or None.

    Read from, first to last: its ``Raster_Index`` list (Pléiades Neo: each band ID's ``BAND_INDEX``); a
    ``Band_Display_Order`` of band numbers (DIMAP v1: RED_CHANNEL 3 is band 3); a ``Band_Display_Order`` of band IDs
    (DIMAP v2, Pléiades 1A/1B and SPOT 6/7: the bands are delivered in display order, R, G, B, NIR — B2, B1, B0, B3
    — so RED_CHANNEL's band is band 1, GREEN_CHANNEL's band 2, BLUE_CHANNEL's band 3, ALPHA_CHANNEL's band 4). Only
    the last says no band number: when the product's ``Band_Measurement_List`` (its calibration) lists the band IDs
    in another order, the note says the display order is assumed. Airbus documents no raster order for that list:
    real products list B0, B1, B2, B3 while their rasters hold R, G, B, NIR (the Orfeo Toolbox reads Pléiades's
    first band as red for that reason; GDAL's own DIMAP v2 sample lists them so too).
    """
    root = (scan or MetadataScan()).root(xml_path)
    if root is None or "DIMAP" not in xml_local(root.tag).upper():
        return None
    names: list[str | None] = [None] * n_bands
    index = xml_all(root, "Raster_Index")
    if len(index) == n_bands:
        for node in index:
            i, band_id = xml_text(node, "BAND_INDEX"), xml_text(node, "BAND_ID").upper()
            if i.isdigit() and 1 <= int(i) <= n_bands and band_id in DIMAP_BANDS:
                names[int(i) - 1] = DIMAP_BANDS[band_id]
        if None not in names and len(set(names)) == n_bands:
            return [str(n) for n in names], "its Raster_Index list", None
        names = [None] * n_bands
    order = xml_all(root, "Band_Display_Order")
    channels = {c: xml_text(order[0], c).upper() for c in _CHANNELS} if order else {}
    channels = {c: v for c, v in channels.items() if v}
    how = ""
    # the product's band IDs (its calibration lists them), in the order listed: what names a band no channel shows
    listed_ids = _measurement_ids(root)
    kinds = {DIMAP_BANDS[i] for i in listed_ids if i in DIMAP_BANDS} - {"PAN"}
    by_id = False
    if channels and all(v.isdigit() for v in channels.values()):   # band numbers
        for c, v in channels.items():
            if c in _COLOUR_OF_CHANNEL and 1 <= int(v) <= n_bands:
                names[int(v) - 1] = _COLOUR_OF_CHANNEL[c]
        how = "its Band_Display_Order (band numbers)"
    elif channels and all(v in DIMAP_BANDS for v in channels.values()):   # band IDs, in delivery order
        listed = [channels[c] for c in _CHANNELS if c in channels][:n_bands]
        names[:len(listed)] = [DIMAP_BANDS[i] for i in listed]
        how, by_id = f"its Band_Display_Order ({', '.join(listed)})", True
    rest = sorted(kinds - set(names))
    if names.count(None) == 1 and len(rest) == 1:   # a 4-band product whose display order names three
        names[names.index(None)] = rest[0]
    if None in names or len(set(names)) != n_bands:
        return None
    final = [str(n) for n in names]
    return final, how, _order_note(xml_path, final, listed_ids) if by_id else None


def _measurement_ids(root: ET.Element) -> list[str]:
    """The spectral band IDs the ``Band_Measurement_List`` lists (its first kind of entry, e.g. Band_Radiance), in
    the order listed; the PAN's left out."""
    for lst in xml_all(root, "Band_Measurement_List"):
        entries = [m for m in lst if xml_text(m, "BAND_ID")]
        first = [m for m in entries if xml_local(m.tag) == xml_local(entries[0].tag)] if entries else []
        ids = [xml_text(m, "BAND_ID").upper() for m in first]
        return [i for i in ids if DIMAP_BANDS.get(i) != "PAN"]
    return []


def _order_note(xml_path: str, names: list[str], listed_ids: list[str]) -> str | None:
    """The note that the display order is assumed when the Band_Measurement_List lists the same band IDs in another
    order (which would be the raster's if the product were written in the list's order), with how to reorder."""
    id_of = {DIMAP_BANDS[i]: i for i in listed_ids if i in DIMAP_BANDS}
    shown = [id_of.get(n) for n in names]
    if None in shown or len(listed_ids) != len(names) or sorted(shown) != sorted(listed_ids) or shown == listed_ids:
        return None
    bands = ",".join(str(listed_ids.index(i) + 1) for i in shown)
    as_listed = ", ".join(DIMAP_BANDS[i] for i in listed_ids)
    return (f"MS band order assumed: the Band_Display_Order of {os.path.basename(xml_path)} makes the bands "
            f"{', '.join(shown)} ({', '.join(names)}), its Band_Measurement_List lists {', '.join(listed_ids)}, and it "
            "says not which order the raster holds. They are taken in display order, as Airbus delivers Pléiades "
            f"1A/1B and SPOT 6/7; if the raster holds the list's order ({as_listed}), "
            f"reorder its bands to {bands} first (QGIS's Rearrange bands) and fuse that")


def dimap_for(path: str, scan: MetadataScan | None = None) -> str | None:
    """The DIMAP document that describes ``path``: the file itself, or a DIM_*.XML that names it (or, for a VRT,
    its sources)."""
    if os.path.basename(path).upper().startswith("DIM_") and path.upper().endswith(".XML"):
        return path
    naming, _ = metadata_files(path, scan)
    return next((p for p in naming if os.path.basename(p).upper().startswith("DIM_")), None)
