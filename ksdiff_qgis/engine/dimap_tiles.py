"""Which band of which data file an Airbus DIMAP names what: the names of a VRT's bands built from a product's tiles,
whatever the VRT takes from which tile.

A Pléiades Neo 6-band MS (SPECTRAL_PROCESSING MS-FS or PMS-FS) comes as two files per tile, ``IMG_..._RGB_R1C1`` (R,
G, B) and ``IMG_..._NED_R1C1`` (NIR, Red Edge, Deep Blue); a user stacks them into a VRT (RGB then NED: R, G, B, NIR,
RE, DB, the order GDAL's DIMAP driver gives). Its band 4 reads band 1 of the NED file: the DIMAP's whole-product band
order (``delivery.dimap_band_names``) says nothing of it, so such a VRT used to be named by the sensor table alone
(QA: with the table in another order, Green, Blue, NIR and Deep Blue went to the network as Blue, Green, Red, NIR).
Each VRT band is now mapped to (data file, band of that file), and that to the name the DIMAP gives the file's band.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET

from osgeo import gdal

from .delivery import DIMAP_BANDS, dimap_band_names, vrt_sources, xml_all, xml_local, xml_text
from .gdalutil import gdal_call
from .metascan import MetadataScan

# the spectral processings whose every tile is two files, and the names GDAL's DIMAP driver gives their bands:
# the first Data_Files group's three bands, then the second's (ReadImageInformation2, bTwoDataFilesPerTile; its
# autotest test_dimap_2_vhr2020_ms_fs expects Red, Green, Blue, NIR, Red Edge, Deep Blue)
TWO_FILES_PER_TILE = ("MS-FS", "PMS-FS")
FS_PARTS = (("Red", "Green", "Blue"), ("NIR", "Red Edge", "Deep Blue"))


def _hrefs(group: ET.Element) -> list[str]:
    """The file names (upper case, no folder) a ``Data_Files`` group lists."""
    return [os.path.basename(e.get("href", "")).upper() for e in xml_all(group, "DATA_FILE_PATH") if e.get("href")]


def _group_names(group: ET.Element) -> list[str] | None:
    """The names a ``Data_Files`` group's own ``Raster_Index_List`` gives its files' bands, in file band order: by
    ``BAND_INDEX`` when those number the bands 1..n, else as listed (GDAL's own sample numbers its NED file's bands
    4, 2, 3; GDAL takes them as listed); None without such a list or with a band ID that names no band."""
    index = xml_all(group, "Raster_Index")
    ids = [xml_text(node, "BAND_ID").upper() for node in index]
    if not ids or any(i not in DIMAP_BANDS for i in ids):
        return None
    numbers = [xml_text(node, "BAND_INDEX") for node in index]
    if sorted(numbers) == [str(n) for n in range(1, len(ids) + 1)]:
        ids = [i for _, i in sorted(zip(map(int, numbers), ids))]
    return [DIMAP_BANDS[i] for i in ids]


def dimap_file_bands(xml_path: str, scan: MetadataScan) -> tuple[dict[str, list[str]], str, str | None] | None:
    """The band names the DIMAP ``xml_path`` gives each data file it lists (file name, upper case, without folder ->
    the names of that file's bands in order), what says so, and the DIMAP's order note (``dimap_band_names``); None
    when it says not which file holds which bands.

    Read from, first to last: each ``Data_Files`` group's own ``Raster_Index_List`` (Pléiades Neo MS-FS: the RGB
    file's R, G, B, the NED file's NIR, RE, DB); a two-files-per-tile product's two groups without one, as GDAL's DIMAP
    driver takes them (``FS_PARTS``); one group (the tiles of one raster), each file holding the product's
    ``NBANDS`` bands in the DIMAP's band order (``dimap_band_names``). The caller checks each file's band count."""
    root = scan.root(xml_path)
    if root is None or "DIMAP" not in xml_local(root.tag).upper():
        return None
    groups = [g for g in xml_all(root, "Data_Files") if _hrefs(g)]
    if not groups:
        return None
    files: dict[str, list[str]] = {}
    own = [_group_names(g) for g in groups]
    if all(own):
        for group, names in zip(groups, own):
            files.update(dict.fromkeys(_hrefs(group), names))
        return files, "the band list of each of its data files", None
    if xml_text(root, "SPECTRAL_PROCESSING").upper() in TWO_FILES_PER_TILE and len(groups) == len(FS_PARTS):
        for group, names in zip(groups, FS_PARTS):
            files.update(dict.fromkeys(_hrefs(group), list(names)))
        return files, "its two data files per tile, R, G, B then NIR, Red Edge, Deep Blue, as GDAL reads them", None
    count = xml_text(root, "NBANDS")
    layout = dimap_band_names(xml_path, int(count), scan) if len(groups) == 1 and count.isdigit() else None
    if layout is None:
        return None
    return dict.fromkeys(_hrefs(groups[0]), layout[0]), layout[1], layout[2]


def _fits(file: str, listed: list[str], seen: dict[int, bool]) -> bool:
    """Whether ``file`` holds as many bands as ``listed`` names (a file of another count is not the one the DIMAP
    describes so: one of two files per tile). Checked on the first file of each group (``seen``: by the group's
    list): the tiles of a group share their layout, and a mosaic of a hundred JPEG 2000 tiles opens one."""
    if id(listed) not in seen:
        ds, _ = gdal_call(gdal.OpenEx, file, gdal.OF_RASTER | gdal.OF_READONLY)
        seen[id(listed)] = ds is not None and ds.RasterCount == len(listed)
    return seen[id(listed)]


def dimap_source_names(path: str, n_bands: int, dimap: str,
                       scan: MetadataScan) -> tuple[list[str | None], str, str | None] | None:
    """Per band of ``path`` (a VRT: its sources; else the file itself, one of the DIMAP's data files), the name the
    DIMAP ``dimap`` gives the data-file band it reads, when every source of the band reads one and they agree (a
    mosaic's tiles); None where not. With what says so and the DIMAP's order note; None when no band gets a name or
    ``path`` is the DIMAP itself (GDAL's DIMAP driver orders its bands)."""
    if os.path.abspath(path) == os.path.abspath(dimap):
        return None
    found = dimap_file_bands(dimap, scan)
    if found is None:
        return None
    files, how, note = found   # the files of one group share one list of names
    bands = vrt_sources(path)
    if bands is None:
        bands = [[(path, b)] for b in range(1, n_bands + 1)]
    checked: dict[int, bool] = {}
    names: list[str | None] = []
    for band in bands[:n_bands]:
        said: set[str | None] = set()
        for file, b in band:
            listed = files.get(os.path.basename(file).upper())
            ok = listed is not None and 1 <= b <= len(listed) and _fits(file, listed, checked)
            said.add(listed[b - 1] if ok else None)
        names.append(said.pop() if len(said) == 1 else None)
    names += [None] * (n_bands - len(names))
    return (names, how, note) if any(names) else None
