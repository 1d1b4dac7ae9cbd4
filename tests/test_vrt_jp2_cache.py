"""GDAL's block cache for a VRT mosaic of JPEG2000 tiles (``engine/blockcache.py``): budgeted in the tiles' blocks.

QA48b: a VRT of a Pléiades delivery's 1024-block JP2 tiles ran about 3 x slower than its DIM_*.XML (3200² PAN,
MTF-GLP-HPM: 7-9 s against 2.5-3.2 s): its own 128-pixel blocks were budgeted (8 MB), the cache was flushed past it,
and flushing the VRT drops its tiles' decoded blocks too (each decoded about four times: 153 JP2 tile decodes
against 20). No timing here: the budget is checked.
"""
from __future__ import annotations

from osgeo import gdal

from ksdiff_qgis.engine import blockcache


def test_a_vrt_of_jp2_tiles_is_budgeted_in_its_tiles_blocks(data_dir, tmp_path):
    """GDAL decodes a VRT mosaic's JP2 tiles in their blocks, and flushing the VRT drops them: the cache budget
    counted the VRT's own 128-pixel blocks (8 MB: flushed after nearly every tile, each JP2 block decoded about four
    times). It now counts the tiles' (here one 256² block each) with the VRT's own."""
    tile = str(tmp_path / "t.jp2")
    gdal.Translate(tile, str(data_dir / "wv2_pan.tif"), format="JP2OpenJPEG", noData="none",
                   creationOptions=["REVERSIBLE=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256"])
    n = 64   # a row of 64 tiles: a 16384-pixel wide mosaic, one tile high
    sources = "".join(f"<SimpleSource><SourceFilename relativeToVRT='1'>t.jp2</SourceFilename><SourceBand>1"
                      f"</SourceBand><SrcRect xOff='0' yOff='0' xSize='256' ySize='256'/><DstRect xOff='{256 * i}' "
                      "yOff='0' xSize='256' ySize='256'/></SimpleSource>" for i in range(n))
    (tmp_path / "m.vrt").write_text(f"<VRTDataset rasterXSize='{256 * n}' rasterYSize='256'><VRTRasterBand "
                                    f"dataType='UInt16' band='1'>{sources}</VRTRasterBand></VRTDataset>")
    vrt = gdal.Open(str(tmp_path / "m.vrt"))
    assert tuple(vrt.GetRasterBand(1).GetBlockSize()) == (128, 128)
    assert blockcache.decoded_block(vrt) == (256, 256)
    view = gdal.Translate("", vrt, format="VRT", noData=0)   # the run's own views (nodata, bands) are VRTs too
    assert blockcache.decoded_block(view) == (256, 256)
    # a window of 200 pixels: the tiles' 256-pixel blocks are shared between windows, and kept for the row
    assert blockcache.row_budget_mb([(vrt, 200)], None) > 2 * blockcache.INPUT_CACHE_MB
