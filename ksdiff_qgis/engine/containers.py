"""Files that hold more than one raster: GDAL's subdataset addresses (``NETCDF:"scene.nc":pan``,
``GPKG:both.gpkg:pan``, ``HDF5:"scene.h5"://pan``, ``GTIFF_DIR:2:f.tif``) and archive members
(``/vsizip/delivery.zip/pan.tif``), read as the file and the part of it; and the advice for such a file given whole.

GDAL parses these names itself only from 3.8 on (``gdal.GetSubdatasetInfo``); QGIS 3.22 ships with older GDALs. So the
name is taken apart here as GDAL documents it, ``PREFIX:`` then the file and the part separated by colons, in either
order, the file in double quotes or not: the file is the colon-separated run that exists (a Windows path keeps its
drive colon), the rest is the part.
"""
from __future__ import annotations

import re
from typing import NamedTuple

from osgeo import gdal

from .errors import quoted
from .gdalutil import gdal_call
from .shellcmd import beside, shell_arg

# a driver's subdataset prefix (NETCDF, HDF5, GPKG, NITF_IM, GTIFF_DIR, HDF4_SDS, ZARR, ...): two characters at
# least, so a Windows drive (C:) is none
_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9_]+):")
# what the part after the file is, by driver prefix, for a reader of the provenance tags
_PART_WORDS = {"NETCDF": "variable", "HDF5": "variable", "HDF4_SDS": "variable", "HDF4_EOS": "variable",
               "ZARR": "variable", "GPKG": "table", "NITF_IM": "image", "GTIFF_DIR": "directory", "PDF": "page"}
# GDAL's archive file systems whose paths go on from the archive to a member
_ARCHIVES = ("/vsizip/", "/vsitar/", "/vsi7z/", "/vsirar/")
SHOWN = 4        # subdatasets named in a message; the others are counted
STACKED = 32     # at most this many one-band subdatasets are written into one gdalbuildvrt command


class Address(NamedTuple):
    """A raster inside a file: the ``file`` (as GDAL opens it), what the part is (``kind``: 'variable', 'table',
    'member', ...) and the ``part`` itself ('pan', 'pan.tif')."""
    file: str
    kind: str
    part: str


def _is_file(path: str) -> bool:
    stat = gdal.VSIStatL(path) if path else None
    return stat is not None and not stat.IsDirectory()


def parse(name: str) -> Address | None:
    """The file and part a subdataset name or archive path names; None for a plain file (or a name not read)."""
    return _member(name) if name.startswith("/vsi") else _subdataset(name)


def _member(path: str) -> Address | None:
    """``/vsizip/a.zip/dir/pan.tif`` -> (a.zip, member, dir/pan.tif); ``/vsizip/{a.zip}/pan.tif`` too."""
    prefix = next((p for p in _ARCHIVES if path.startswith(p)), None)
    if prefix is None:
        return None
    rest = path[len(prefix):]
    if rest.startswith("{") and "}" in rest:   # GDAL's braces around an archive name holding the archive extension
        archive, member = rest[1:].split("}", 1)
        return Address(archive, "member", member.lstrip("/")) if member.strip("/") else None
    for i in (m.start() for m in re.finditer("/", rest)):   # the shortest leading run that is a file: the archive
        if i and _is_file(rest[:i]):
            member = rest[i + 1:]
            return Address(rest[:i], "member", member) if member else None
    return None


def _subdataset(name: str) -> Address | None:
    """``NETCDF:"/x/scene.nc":pan`` -> (/x/scene.nc, variable, pan); ``GTIFF_DIR:2:/x/f.tif`` -> (/x/f.tif,
    directory, 2); None when ``name`` is a file itself or has no subdataset prefix."""
    m = _PREFIX.match(name)
    if m is None or _is_file(name):
        return None
    prefix, rest = m.group(1), name[m.end():]
    word = _PART_WORDS.get(prefix.upper(), "subdataset")
    quoted = re.fullmatch(r'(?:(.*?):)?"([^"]+)"(?::(.*))?', rest, re.DOTALL)
    if quoted:   # the file in double quotes: no guessing where it ends
        part = ":".join(p for p in (quoted.group(1), quoted.group(3)) if p)
        return Address(quoted.group(2), word, _part(prefix, part))
    pieces = rest.split(":")
    best = None
    for i in range(len(pieces)):   # the longest colon-separated run that is a file: the rest is the part
        for j in range(len(pieces), i, -1):
            if (best is None or j - i > best[1] - best[0]) and _is_file(":".join(pieces[i:j])):
                best = (i, j)
    if best is None:
        return None
    i, j = best
    return Address(":".join(pieces[i:j]), word, _part(prefix, ":".join(pieces[:i] + pieces[j:])))


def _part(prefix: str, part: str) -> str:
    """HDF5's and Zarr's variable paths are written from their root (``//pan``, ``/grp/pan``): shown without it."""
    return part.lstrip("/") if prefix.upper() in ("HDF5", "ZARR") and part.strip("/") else part


def subdatasets(ds: gdal.Dataset) -> list[str]:
    """The names of the rasters (subdatasets) ``ds`` holds, in GDAL's order; [] for none."""
    md, _ = gdal_call(ds.GetMetadata, "SUBDATASETS")
    md = md or {}
    found, i = [], 1
    while f"SUBDATASET_{i}_NAME" in md:
        found.append(md[f"SUBDATASET_{i}_NAME"])
        i += 1
    return found


def _one_band_alike(names: list[str]) -> bool:
    """Whether every subdataset is one band of the same size (GDAL's netCDF writer puts each band of a raster
    into a variable of its own, Band1 ... BandN): then they stack back into one raster."""
    if not 1 < len(names) <= STACKED:
        return False
    sizes = set()
    for name in names:
        sub, _ = gdal_call(gdal.OpenEx, name, gdal.OF_RASTER | gdal.OF_READONLY)
        if sub is None or sub.RasterCount != 1:
            return False
        sizes.add((sub.RasterXSize, sub.RasterYSize))
    return len(sizes) == 1


def several_rasters_message(path: str, role: str, names: list[str]) -> str:
    """Why a file holding several rasters (``names``, its subdatasets) is no ``role`` raster, and how to give one:
    as a layer of its own in QGIS (processing.run takes that layer), or extracted with gdal_translate (qgis_process
    3.22 loads no subdataset by name, nor does processing.run); for an MS written one variable per band, the
    gdalbuildvrt -separate command that stacks them back into one raster."""
    shown = ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
    first = names[0]
    part = (parse(first) or Address("", "", "")).part or "raster"
    out = beside(path, "_" + re.sub(r"[^\w.-]+", "_", part).strip("_") + ".tif")
    text = (f"the {role} raster {quoted(path)} is a file holding {len(names)} rasters (subdatasets), not one raster: "
            f"{shown}. Give one of them: in QGIS add it as a layer (Layer > Add Raster Layer lists them) and choose "
            f"that layer; from Python pass processing.run the layer, QgsRasterLayer({first!r}); for qgis_process, "
            f"which loads no subdataset, extract it to a file first: gdal_translate {shell_arg(first)} "
            f"{shell_arg(out)}")
    if role == "MS" and _one_band_alike(names):
        vrt = beside(path, "_bands.vrt")
        text += (f". Its {len(names)} rasters are one band each, of one size, as GDAL writes an MS into NetCDF (one "
                 f"variable per band): stack them back into one raster with gdalbuildvrt -separate {shell_arg(vrt)} "
                 + " ".join(map(shell_arg, names)) + f" and give {shell_arg(vrt)} as MS")
    return text
