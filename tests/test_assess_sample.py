"""The assessment's decimated sample of a raster (scale check, stored-or-physical level, data peak): read once per
raster, each read a decoding of the whole file (QA121); a failed read said as such."""
from __future__ import annotations

import pytest
from fixture_helpers import tagged_copy

from ksdiff_qgis.engine import assessment
from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.raster_io import MaskedRaster


def _counted(monkeypatch) -> list:
    calls, real = [], assessment.read_nearest

    def counting(ds, *args, **kwargs):
        calls.append(ds.GetDescription())
        return real(ds, *args, **kwargs)

    monkeypatch.setattr(assessment, "read_nearest", counting)
    return calls


def test_each_raster_is_sampled_once(data_dir, tmp_path, monkeypatch):
    """``_at_stored_level`` read the tagged raster twice in one expression, ``scale_warning`` each raster again."""
    ms = str(data_dir / "wv2_ms.tif")
    plain, tagged = MaskedRaster(ms, "FUSED"), MaskedRaster(tagged_copy(ms, tmp_path / "t.tif", 1e-4), "MS")
    calls = _counted(monkeypatch)
    assessment.scale_warning(plain, tagged)
    assert assessment._at_stored_level(plain, tagged)
    assessment.scale_warning(plain, tagged)
    assert len(calls) == 2


def test_a_failed_sample_read_is_said(data_dir, tmp_path, monkeypatch):
    """read_nearest gives (None, GDAL's message): the check hit AttributeError / ValueError ("Internal error")."""
    from osgeo import gdal

    floats = str(tmp_path / "f.tif")   # a float raster: its peak comes from the data
    gdal.Translate(floats, str(data_dir / "wv2_ms.tif"), outputType=gdal.GDT_Float32)
    monkeypatch.setattr(assessment, "read_nearest", lambda *a, **k: (None, "TIFFReadEncodedTile() failed"))
    fu = MaskedRaster(str(data_dir / "wv2_ms.tif"), "FUSED")
    with pytest.raises(InputError, match="cannot read FUSED .*TIFFReadEncodedTile"):
        assessment.scale_warning(fu, MaskedRaster(str(data_dir / "wv2_ms.tif"), "MS"))
    with pytest.raises(InputError, match="TIFFReadEncodedTile"):
        assessment.peak_value(MaskedRaster(floats, "MS"), 0.0)
