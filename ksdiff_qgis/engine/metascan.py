"""One run's look at its deliveries' metadata files (MTL, .IMD, DIMAP .XML ...): each found and read once.

The sensor guess (``sensor_detect``), the DIMAP band names and the Landsat mission (``delivery``, ``bands``) all ask
which metadata files name an input and what they say; each used to glob the folders and read the files again (a
Landsat MTL six times in one SENSOR=auto run). A ``MetadataScan`` is made per run (``pipeline.pansharpen``) and
dropped with it: a module-wide cache would keep a file's old text when it changes between two runs in one QGIS
session.
"""
from __future__ import annotations

import fnmatch
import glob
import io
import os
import xml.etree.ElementTree as ET

from osgeo import gdal

from .gdalutil import gdal_call, gdal_str, is_vsi, os_path, read_bytes, vsi_join

# what sits beside a product's images and may name its satellite
METADATA_PATTERNS = ("*.IMD", "*.imd", "*_MTL.txt", "*_MTL.json", "*MTL.txt", "*MTL.json", "*.XML", "*.xml")
READ_LIMIT = 1 << 20   # characters of a metadata file looked at: its head says what it names and which satellite
# bytes read: enough for READ_LIMIT characters of any UTF-8 text (at most four bytes each)
RAW_LIMIT = 4 * READ_LIMIT
# GDAL virtual folders listed for metadata files: archives and memory, read locally (a /vsicurl/ or /vsis3/ listing
# would go over the network for each input)
LISTED_VSI = ("/vsizip/", "/vsitar/", "/vsi7z/", "/vsimem/")


class MetadataScan:
    """The metadata files a run found beside its inputs, and their text, read once per file."""

    def __init__(self) -> None:
        # delivery.metadata_files per input path: (files that name it, files beside it that do not)
        self.found: dict[str, tuple[list[str], list[str]]] = {}
        self._folders: dict[str, list[str]] = {}
        self._texts: dict[str, str] = {}
        self._raws: dict[str, bytes] = {}   # a DIMAP's whole file, kept for ``root``
        self._roots: dict[str, ET.Element | None] = {}
        # XML documents read as such that are no well-formed XML (a truncated DIMAP): path -> the parser's complaint
        self.malformed: dict[str, str] = {}

    def beside(self, folder: str) -> list[str]:
        """The metadata files in ``folder`` (``METADATA_PATTERNS``; GDAL's .aux.xml left out), sorted; searched once."""
        if folder not in self._folders:
            if is_vsi(folder):   # a delivery read from inside its zip: its MTL or DIMAP lies in there too
                names = (gdal_call(gdal.ReadDir, folder)[0] or []) if folder.startswith(LISTED_VSI) else []
                found = {vsi_join(folder, n) for n in names
                         if any(fnmatch.fnmatchcase(n, pat) for pat in METADATA_PATTERNS)}
            else:
                # through os_path: under a non-UTF-8 locale a CJK folder name cannot be encoded as a str path
                where = glob.escape(os_path(folder))
                found = {gdal_str(p) for pat in METADATA_PATTERNS for p in glob.glob(os.path.join(where, os_path(pat)))}
            self._folders[folder] = sorted(p for p in found if not p.lower().endswith(".aux.xml"))
        return self._folders[folder]

    def text(self, path: str) -> str:
        """The first ``READ_LIMIT`` characters of the text file ``path`` ('' if unreadable)."""
        key = os.path.abspath(path)
        if key not in self._texts:
            self._read(path, key)
        return self._texts[key]

    def root(self, path: str) -> ET.Element | None:
        """The XML document ``path`` (None if unreadable or no XML); a DIMAP this scan read is not read again."""
        key = os.path.abspath(path)
        if key not in self._roots:
            if _dimap_name(path):
                self.text(path)   # read once, for its text too: the DIMAP given as the input is searched as well
            raw = self._raws.pop(key, None)
            try:
                if raw is None and is_vsi(path):   # a DIMAP inside a zip, larger than RAW_LIMIT
                    raw = read_bytes(path, 1 << 30)
                    if raw is None:
                        raise OSError(path)
                self._roots[key] = ET.fromstring(raw) if raw is not None else ET.parse(path).getroot()
            except ET.ParseError as e:
                self._roots[key] = None
                self.malformed[path] = str(e)
            except OSError:
                self._roots[key] = None
        return self._roots[key]

    def _read(self, path: str, key: str) -> None:
        raw = _read_raw(path, RAW_LIMIT + 1)
        if raw is None:
            self._texts[key] = ""
            return
        # decoded as a text-mode open() reads it: UTF-8, bad bytes replaced, universal newlines
        self._texts[key] = io.TextIOWrapper(io.BytesIO(raw[:RAW_LIMIT]), encoding="utf-8",
                                            errors="replace").read(READ_LIMIT)
        # only a DIMAP is parsed as XML (its band layout): keep its bytes when whole, not every XML's beside the input
        if len(raw) <= RAW_LIMIT and _dimap_name(path):
            self._raws[key] = raw


def _read_raw(path: str, limit: int) -> bytes | None:
    """Up to ``limit`` bytes of ``path``: a file inside a zip (/vsizip/...) through GDAL's VSI layer, a plain file
    with open(); None if unreadable."""
    if is_vsi(path):
        return read_bytes(path, limit)
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError:
        return None


def _dimap_name(path: str) -> bool:
    return os.path.basename(path).upper().startswith("DIM_")
