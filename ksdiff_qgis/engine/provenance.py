"""What an output GeoTIFF records about how it was made: the software, the method that ran, the model (and its
SHA-256), the sensor, every setting that changes pixels (``settings``) and, for METHOD auto, the self-check's decision
and figures.

Plain default-domain items named ``KSDIFF_...``, not a ``KSDIFF`` domain of their own: the default domain is the one
every copy keeps. ``gdal_translate`` copies only it (GDAL < 3.8 has no COPY_SRC_MDD), and GDAL's COG copy drops other
domains (it left IMAGERY out, ``outputs.CogWriter``), while the default domain stays inside the file (GDAL_METADATA
tag), with no .aux.xml needed. ``TIFFTAG_SOFTWARE`` is the TIFF's own Software tag, which any TIFF reader shows.
"""
from __future__ import annotations

import configparser
import functools
import os
import subprocess
from pathlib import Path

from osgeo import gdal, osr

from . import containers, delivery
from .gdalutil import gdal_call
from .nodatacmd import exact

PREFIX = "KSDIFF_"
SOFTWARE = "KSDiff for QGIS"
PLUGIN_DIR = Path(__file__).resolve().parent.parent
BUILD_FILE = "build.txt"   # written into the plugin zip by scripts/package.py, never into the repository


def plugin_version() -> str:
    """The plugin version from metadata.txt ("unknown" when it cannot be read)."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(Path(__file__).resolve().parent.parent / "metadata.txt", encoding="utf-8")
    return cfg.get("general", "version", fallback="unknown")


def _git(root: Path, *args: str) -> str | None:
    """``git -C root args`` output, or None (no git, no repository, or ``root`` is not the repository's top: a QGIS
    profile that happens to lie inside another repository says nothing of this code)."""
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)   # Windows: no console flashing up inside QGIS
    try:
        top = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=10, creationflags=flags)
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root.resolve():
            return None
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                             creationflags=flags)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def build_fields(plugin_dir: Path = PLUGIN_DIR) -> dict[str, str]:
    """What code this is: ``{"commit": "1a2b3c4" (+ "-dirty"), "date": "2026-12-07"}`` from the packaged
    ``build.txt``; in a source checkout the git commit (no date: it is not a build); ``{"commit": "source"}`` when
    neither tells. The version in metadata.txt alone named an old zip and newer code alike."""
    path = plugin_dir / BUILD_FILE
    if path.is_file():
        found = dict(line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines() if "=" in line)
        if found.get("commit"):
            return {k.strip(): v.strip() for k, v in found.items()}
    commit = _git(plugin_dir.parent, "rev-parse", "--short", "HEAD")
    if not commit:
        return {"commit": "source"}
    dirty = _git(plugin_dir.parent, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit + ("-dirty" if dirty else "")}


@functools.lru_cache(maxsize=1)
def _this_build() -> dict[str, str]:
    """``build_fields()`` once per session (git runs once)."""
    return build_fields()


def build() -> str:
    """KSDIFF_BUILD: '1a2b3c4, built 2026-12-07' (a packaged plugin), '1a2b3c4-dirty, source checkout' or
    'source' (a copy of the code without git)."""
    fields = _this_build()
    if fields.get("date"):
        return f"{fields['commit']}, built {fields['date']}"
    return fields["commit"] + (", source checkout" if fields["commit"] != "source" else "")


def software() -> str:
    """TIFFTAG_SOFTWARE and the reports' signature: 'KSDiff for QGIS 0.5.2 (build 1a2b3c4)'."""
    return f"{SOFTWARE} {plugin_version()} (build {_this_build()['commit']})"


SOURCES_NAMED = 4   # a VRT's source files named in KSDIFF_PAN_FILE / KSDIFF_MS_FILE; the others are counted


def input_file(path: str, _depth: int = 0) -> str:
    """KSDIFF_PAN_FILE / KSDIFF_MS_FILE: the input's file name and size, 'pair2_pan.tif, 1440662 bytes' (the name,
    not the folders: an output shared outside leaks no user's paths). A raster inside a file names the file and its
    part: 'scene.nc, 12345 bytes, variable pan', 'both.gpkg, 618496 bytes, table pan', 'delivery.zip, 8456 bytes,
    member pan.tif' (``containers``; the member's name alone said not which archive). A VRT names its source files
    instead of its own size, 'ms.vrt (VRT), sources: ms.tif, 119888 bytes': QGIS writes statistics and histograms
    into a VRT loaded as a layer, so its size changed from run to run (2795 then 90988 bytes) for the same pixels."""
    address = containers.parse(path) if _depth < 4 else None
    if address is not None:
        return f"{input_file(address.file, _depth + 1)}, {address.kind} {address.part}"
    name = os.path.basename(path.rstrip("/\\")) or path
    bands = delivery.vrt_sources(path) if _depth < 4 else None
    if bands is not None:
        files = list(dict.fromkeys(file for band in bands for file, _ in band))
        named = "; ".join(input_file(file, _depth + 1) for file in files[:SOURCES_NAMED])
        more = f"; and {len(files) - SOURCES_NAMED} more" if len(files) > SOURCES_NAMED else ""
        return f"{name} (VRT), sources: {named}{more}" if files else f"{name} (VRT)"
    stat = gdal.VSIStatL(path)
    return f"{name}, {stat.size} bytes" if stat is not None and not stat.IsDirectory() else name


def _exact(value: float) -> str:
    """A coordinate to full precision, the shortest text that reads back as the same double."""
    return repr(float(value))


def extent_text(box, wkt: str | None) -> str:
    """KSDIFF_EXTENT: ``box`` (xmin, ymin, xmax, ymax in the PAN CRS) in EXTENT's own syntax, 'xmin,xmax,ymin,ymax
    [EPSG:32631]', exact, so that the text given back as EXTENT fuses the same window. The CRS is its authority code,
    or its WKT when it has none; no brackets for a PAN without a CRS."""
    x0, y0, x1, y1 = box
    coords = ",".join(_exact(v) for v in (x0, x1, y0, y1))
    if not wkt:
        return coords
    srs = osr.SpatialReference()
    if srs.ImportFromWkt(wkt) != 0:
        return f"{coords} [{wkt}]"
    name, code = srs.GetAuthorityName(None), srs.GetAuthorityCode(None)
    if not (name and code) and srs.AutoIdentifyEPSG() == 0:
        name, code = srs.GetAuthorityName(None), srs.GetAuthorityCode(None)
    return f"{coords} [{name}:{code}]" if name and code else f"{coords} [{wkt}]"


def _text(value) -> str:
    """A figure as metadata text: floats to 6 significant digits (enough to compare runs, no binary noise)."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def items(method: str, sensor: str | None, model: str | None, checked: dict | None,
          settings: dict | None = None) -> dict[str, str]:
    """The provenance items of one run: ``method`` that ran, ``sensor`` used, ``model`` file name (learned methods),
    ``checked``: the self-check's figures (``SelfCheck.outputs()``, METHOD auto), each as ``KSDIFF_SELFCHECK_...``;
    ``settings``: what else changed the pixels (``PRECISION``, ``TILE_SIZE``, ``PAN_NODATA``, ...: ``run_settings``),
    each as ``KSDIFF_<key>``. Values that are None are left out."""
    found = {"TIFFTAG_SOFTWARE": software(), f"{PREFIX}BUILD": build(), f"{PREFIX}METHOD": method}
    if sensor:
        found[f"{PREFIX}SENSOR"] = sensor
    if model:
        found[f"{PREFIX}MODEL"] = model
    for key, value in {**(settings or {}), **(checked or {})}.items():
        if value is not None:
            found[PREFIX + key] = _text(value)
    return found


def numbers(values) -> str:
    """'0.3,0.28' / '4,3,2': a list as one comma-separated item (floats to 6 significant digits)."""
    return ",".join(_text(float(v)) if isinstance(v, float) else str(v) for v in values)


def nodata_items(role: str, value: float | None, source: str) -> dict[str, str]:
    """``<role>_NODATA`` (the value used, or 'none') and ``<role>_NODATA_SOURCE``: 'file', 'layer' (a QGIS layer's
    value, not in the file: the result depends on that layer setting), 'dimap' (the NODATA special value of the
    Airbus DIMAP that describes the input, which the raster itself does not declare), 'fill' (an undeclared fill
    code such as -9999 that ``codefill`` recognised) or 'none'."""
    return {f"{role}_NODATA": "none" if value is None else exact(value), f"{role}_NODATA_SOURCE": source}


def record(ds: gdal.Dataset, found: dict[str, str]) -> None:
    """Write ``found`` (``items``) into the default metadata domain of ``ds``, over what the inputs' metadata put
    there (an MS written by another program carries its own TIFFTAG_SOFTWARE)."""
    gdal_call(ds.SetMetadata, {**(ds.GetMetadata() or {}), **found})
