"""Untrusted text read from inputs (QA116): band names and metadata that are not valid UTF-8, control characters
and very long names reach messages, output files and reports safely."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

BAD_NAME = b"Bl\xff\xfeue\xc3("   # 8 bytes, as many as the placeholder: the TIFF's offsets stay right
BAD_SOURCE = b"\xff" * 8


def _bad_utf8_ms(src: Path, dst: Path) -> str:
    """A copy of ``src`` whose band 1 description and SOURCE metadata hold bytes that are not UTF-8."""
    from osgeo import gdal

    gdal.Translate(str(dst), str(src))
    ds = gdal.Open(str(dst), gdal.GA_Update)
    ds.GetRasterBand(1).SetDescription("QQBADQQ1")
    ds.SetMetadata({**ds.GetMetadata(), "SOURCE": "QQBADQQ3"})
    ds = None
    raw = dst.read_bytes().replace(b"QQBADQQ1", BAD_NAME).replace(b"QQBADQQ3", BAD_SOURCE)
    dst.write_bytes(raw)
    for aux in dst.parent.glob(dst.name + ".aux.xml"):
        aux.unlink()
    return str(dst)


def test_band_name_not_utf8_is_fused_with_a_valid_name(qgis_app, pair, tmp_path):
    """GDAL gives such a name as a str with lone surrogates: SetDescription refused it ("Internal error")."""
    import processing
    from osgeo import gdal

    ms = _bad_utf8_ms(Path(pair["MS"]), tmp_path / "bad_ms.tif")
    out = processing.run("ksdiff:pansharpen", {**pair, "MS": ms, "OUTPUT": str(tmp_path / "o.tif")})["OUTPUT"]
    ds = gdal.Open(out)
    name = ds.GetRasterBand(1).GetDescription()
    assert name.startswith("Bl") and "\ufffd" in name and name.encode("utf-8")
    assert all(isinstance(v, str) for v in ds.GetMetadata().values())


def test_metadata_not_utf8_reads_as_text(tmp_path, data_dir):
    """Metadata values GDAL returns as bytes are decoded with replacement where KSDiff reads metadata."""
    from osgeo import gdal

    from ksdiff_qgis.engine.gdalutil import quiet_metadata, text_metadata
    from ksdiff_qgis.engine.metaoffsets import s2_offsets
    from ksdiff_qgis.engine.raster_io.outputs import copy_metadata

    src = gdal.Open(_bad_utf8_ms(data_dir / "wv2_ms.tif", tmp_path / "bad_ms.tif"))
    assert isinstance(src.GetMetadata()["SOURCE"], bytes)   # what the bindings give
    assert text_metadata(src)["SOURCE"] == "\ufffd" * 8 == quiet_metadata(src)["SOURCE"]
    assert s2_offsets(src) == {}
    dst = gdal.GetDriverByName("MEM").Create("", 4, 4, 1)
    copy_metadata(dst, src, [1])
    assert dst.GetMetadataItem("SOURCE") == "\ufffd" * 8


def test_assess_of_fused_name_not_utf8_writes_the_report(qgis_app, pair, tmp_path):
    """write_report hit UnicodeEncodeError on the surrogates and left its .tmp file behind."""
    import processing

    fused = processing.run("ksdiff:pansharpen", {**pair, "OUTPUT": str(tmp_path / "f.tif")})["OUTPUT"]
    bad = _bad_utf8_ms(Path(fused), tmp_path / "fused_bad.tif")
    html = tmp_path / "r.html"
    processing.run("ksdiff:assess", {"FUSED": bad, "PAN": pair["PAN"], "MS": pair["MS"], "OUTPUT_HTML": str(html)})
    assert "Bl\ufffd" in html.read_text(encoding="utf-8")
    assert not list(tmp_path.glob("r.html.*.tmp"))


def test_write_report_leaves_no_temporary_file_on_any_error(tmp_path):
    from ksdiff_qgis.engine.report import write_report

    path = tmp_path / "r.html"
    with pytest.raises(UnicodeEncodeError):
        write_report(str(path), "bad \udcff text")
    assert os.listdir(tmp_path) == []
