"""A read that fails through one of the run's in-memory views of an input names the input's file (QA132 S5: the view
of an alpha-flagged NIR, ``masks.without_alpha_flag``, has no description, and the message said "the input ''")."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine.masks import masked_view, without_alpha_flag
from ksdiff_qgis.engine.raster_io import describe
from ksdiff_qgis.engine.raster_io.read import read_decimated, read_padded


def _damaged_rgba(data_dir: Path, path: Path) -> str:
    """The MS fixture as 8 bits, R, G, B and band 4 flagged alpha, in 16-pixel DEFLATE tiles; the tiles of band 1
    from (16, 16) on overwritten, so only a read that reaches them fails."""
    src = gdal.Open(str(data_dir / "wv2_ms.tif"))
    mem = gdal.GetDriverByName("MEM").Create("", src.RasterXSize, src.RasterYSize, 4, gdal.GDT_Byte)
    mem.SetGeoTransform(src.GetGeoTransform())
    mem.SetProjection(src.GetProjection())
    mem.WriteRaster(0, 0, src.RasterXSize, src.RasterYSize,
                    np.clip(src.ReadAsArray() / 8, 1, 255).astype(np.uint8).tobytes())
    gdal.Translate(str(path), mem, creationOptions=["TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16", "COMPRESS=DEFLATE",
                                                    "PHOTOMETRIC=RGB", "ALPHA=YES"])
    ds = gdal.Open(str(path))
    assert ds.GetRasterBand(4).GetColorInterpretation() == gdal.GCI_AlphaBand
    band = ds.GetRasterBand(1)
    offsets = [int(band.GetMetadataItem(f"BLOCK_OFFSET_{x}_{y}", "TIFF")) for x in (1, 2) for y in (1, 2)]
    band = ds = None
    with open(path, "r+b") as f:
        for offset in offsets:
            f.seek(offset)
            f.write(b"\xff" * 64)
    return str(path)


@pytest.mark.parametrize("read", ["padded", "decimated"])
def test_a_failed_read_through_the_alpha_flag_view_names_the_file(data_dir, tmp_path, read):
    """The view reads the damaged tiles of the file for real: the message names that file, not ''."""
    path = _damaged_rgba(data_dir, tmp_path / "ms_damaged.tif")
    ds = gdal.Open(path)
    view = without_alpha_flag(ds, describe(ds, path), [4])
    assert view is not ds and view.GetDescription() == ""   # an in-memory VRT: GDAL itself knows no name for it
    with pytest.raises(OSError) as e:
        if read == "padded":
            read_padded(view, 16, 16, 32, 32, "symmetric")
        else:
            read_decimated(view, 16, 16, 32, 32, 16, 16)
    assert f'of the input "{path}" failed' in str(e.value), e.value


def test_a_view_of_a_view_names_the_file_and_leaves_it_unwritten(data_dir, tmp_path):
    """A masked view of the alpha-flag view (the warper's, made of another in-memory view) is named after the file
    too; the file stays the GeoTIFF it was (a VRT made in memory writes itself to its description when it closes)."""
    path = _damaged_rgba(data_dir, tmp_path / "ms_damaged.tif")
    ds = gdal.Open(path)
    info = describe(ds, path)
    view, _ = masked_view(without_alpha_flag(ds, info, [4]), info, "mask band")
    with pytest.raises(OSError, match='of the input ".*ms_damaged.tif" failed'):
        read_padded(view, 16, 16, 32, 32, "symmetric")
    view = ds = None
    assert Path(path).read_bytes()[:2] in (b"II", b"MM")
