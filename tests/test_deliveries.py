"""Satellite deliveries as they arrive (folders of band files, tiles and sidecar metadata), rebuilt in tmp_path from
the real fixture crops: SENSOR=auto must follow what the delivery says about the input, and only that (QA round
8)."""
from __future__ import annotations

import shutil
from pathlib import Path

from osgeo import gdal
from test_sensors_bands import _info

from ksdiff_qgis.engine.sensor_detect import detect_sensor

SCENE = "LC80200392015216LGN00"   # the Landsat fixture's scene: tests/data/l8_mtl holds its real MTL


def test_an_unrelated_mtl_beside_a_worldview2_pair_is_ignored(data_dir, tmp_path):
    """A Landsat MTL in the folder of a WorldView-2 pair made it 'Landsat 8' (0.5 m PAN, ratio 4). It names none of
    the pair's files: ignored, and said so."""
    for role in ("pan", "ms"):
        shutil.copy(data_dir / f"wv2_{role}.tif", tmp_path / f"pair1_{role}.tif")
    shutil.copy(data_dir / "l8_mtl" / f"{SCENE}_MTL.txt", tmp_path)
    found = detect_sensor(_info(tmp_path / "pair1_pan.tif"), _info(tmp_path / "pair1_ms.tif"), 4)
    assert found.key == "wv2" and found.source == "geometry"
    assert f"{SCENE}_MTL.txt (LANDSAT_8) lies beside the input but names none of its files: ignored" in \
        found.message()


def test_metadata_whose_sensor_contradicts_the_ratio_and_pixel_size_is_dropped(data_dir, tmp_path):
    """Files that carry a Landsat scene's ID (renamed), with a 0.5 m PAN at ratio 4: the MTL names them, but Landsat
    8/9's ratio is 2 and its PAN pixel 15 m; the metadata is dropped with the reason, the geometry decides."""
    for role in ("pan", "ms"):
        shutil.copy(data_dir / f"wv2_{role}.tif", tmp_path / f"{SCENE}_{role}.tif")
    shutil.copy(data_dir / "l8_mtl" / f"{SCENE}_MTL.txt", tmp_path)
    found = detect_sensor(_info(tmp_path / f"{SCENE}_pan.tif"), _info(tmp_path / f"{SCENE}_ms.tif"), 4)
    assert found.key == "wv2", found.message()
    assert ("says LANDSAT_8, but Landsat 8/9 OLI has ratio 2 and a 15 m PAN pixel, the data ratio 4 and a 0.50 m PAN "
            "pixel: ignored") in found.message()


def _maxar_tiles(src: Path, folder: Path, code: str) -> None:
    """A Maxar (DigitalGlobe) GeoEye-1 product: 2 x 2 tiles and the .IMD of the image they make."""
    folder.mkdir(parents=True)
    ds = gdal.Open(str(src))
    tw, th = ds.RasterXSize // 2, ds.RasterYSize // 2
    for r in range(2):
        for c in range(2):
            gdal.Translate(str(folder / f"12JUN15103045-{code}_R{r + 1}C{c + 1}-052345678010_01_P001.TIF"), ds,
                           srcWin=[c * tw, r * th, tw, th])
    (folder / f"12JUN15103045-{code}-052345678010_01_P001.IMD").write_text(
        'version = "28.3";\nbandId = "Multi";\nBEGIN_GROUP = IMAGE_1\n\tsatId = "GE01";\nEND_GROUP = IMAGE_1\nEND;\n')


def test_a_vrt_saved_outside_the_delivery_finds_the_metadata_beside_its_sources(data_dir, tmp_path):
    """GeoEye-1 tiles mosaicked by QGIS's Build Virtual Raster into its temporary folder: the .IMD beside the tiles
    names them; it used to be looked for beside the VRT only, and the 0.5 m PAN went to WorldView-2."""
    order = tmp_path / "delivery" / "052345678010_01"
    _maxar_tiles(data_dir / "wv2_pan.tif", order / "052345678010_01_P001_PAN", "P2AS")
    _maxar_tiles(data_dir / "wv2_ms.tif", order / "052345678010_01_P001_MUL", "M2AS")
    (tmp_path / "tmp").mkdir()
    vrts = {}
    for role, sub in (("pan", "PAN"), ("ms", "MUL")):
        vrts[role] = str(tmp_path / "tmp" / f"{role}.vrt")
        gdal.BuildVRT(vrts[role], sorted(str(p) for p in (order / f"052345678010_01_P001_{sub}").glob("*.TIF")))
    found = detect_sensor(_info(vrts["pan"]), _info(vrts["ms"]), 4)
    assert found.key == "ge1" and found.source == "metadata", found.message()
    assert "12JUN15103045-M2AS-052345678010_01_P001.IMD says GE01" in found.message()
