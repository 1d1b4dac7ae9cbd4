"""Natural colour for outputs with several bands of a colour: a hyperspectral product named by wavelength gets the
band nearest each colour's centre (QA126 D3: "more than one band named Red", no style, QGIS drew three blue bands);
bands whose names give no wavelength stay ambiguous, with the message they had."""
from __future__ import annotations

import numpy as np
from osgeo import gdal

WAVES = np.linspace(400, 990, 30)   # 400, 420, 441 ... 990 nm
CENTRES = np.array([480.0, 545.0, 660.0, 830.0])   # of tests/data/wv2_ms.tif's Blue, Green, Red, NIR


def _ms(data_dir, path, names: list[str]) -> str:
    """The WorldView-2 test MS's bands mixed into one band per name, each weighted by its wavelength (a band of
    ``names`` without one takes WorldView-2's band of its position)."""
    src = gdal.Open(str(data_dir / "wv2_ms.tif"))
    bands = src.ReadAsArray().astype(np.float64)
    ds = gdal.GetDriverByName("GTiff").Create(str(path), src.RasterXSize, src.RasterYSize, len(names),
                                              gdal.GDT_UInt16)
    ds.SetGeoTransform(src.GetGeoTransform())
    ds.SetProjection(src.GetProjection())
    for i, name in enumerate(names):
        wave = WAVES[i] if name.endswith(" nm") else CENTRES[i % 4]
        w = np.exp(-0.5 * ((wave - CENTRES) / 60.0) ** 2)
        ds.GetRasterBand(i + 1).WriteArray(np.tensordot(w / w.sum(), bands, 1).round().astype(np.uint16))
        ds.GetRasterBand(i + 1).SetDescription(name)
    ds = None
    return str(path)


def _run(data_dir, ms: str, out: str) -> list[str]:
    """The generic MTF-GLP-HPM run of ``ms`` onto ``out`` in Processing; its info lines."""
    import processing
    from test_issue14_processing import Log

    log = Log()
    processing.run("ksdiff:pansharpen", {"PAN": str(data_dir / "wv2_pan.tif"), "MS": ms, "SENSOR": "generic",
                                         "METHOD": "mtf_glp_hpm", "OUTPUT": out}, feedback=log)
    return log.lines


def test_a_hyperspectral_output_named_by_wavelength_opens_in_natural_colour(qgis_app, data_dir, tmp_path):
    """30 bands named '400 nm' ... '990 nm': Blue, Green and Red are the bands nearest 490, 560 and 665 nm (481, 563,
    664 nm: bands 5, 9, 14), in the .qml, the file's colour interpretation and the log."""
    from qgis.core import QgsRasterLayer

    names = [f"{w:.0f} nm" for w in WAVES]
    out = str(tmp_path / "hs.tif")
    lines = _run(data_dir, _ms(data_dir, tmp_path / "ms.tif", names), out)
    assert (tmp_path / "hs.qml").exists(), [line for line in lines if "style" in line]
    renderer = QgsRasterLayer(out, "opened").renderer()
    assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (14, 9, 5)
    fused = gdal.Open(out)
    assert [fused.GetRasterBand(b).GetColorInterpretation() for b in (14, 9, 5)] == [
        gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand]
    said = [line for line in lines if line.startswith("wrote hs.qml")]
    assert said == ["wrote hs.qml: QGIS opens the output in natural colour however it is added (by wavelength: "
                    "red = band 14, 664 nm; green = band 9, 563 nm; blue = band 5, 481 nm: each its colour's band "
                    "nearest 665, 560, 490 nm (Sentinel-2's centres))"], lines


def test_two_bands_named_red_without_wavelengths_keep_no_style_and_say_why(qgis_app, data_dir, tmp_path):
    """Names alone cannot choose between two 'Red' bands: no style, and the message names both."""
    out = str(tmp_path / "rr.tif")
    lines = _run(data_dir, _ms(data_dir, tmp_path / "ms.tif", ["Red", "Red", "Green", "Blue"]), out)
    assert not (tmp_path / "rr.qml").exists()
    said = [line for line in lines if "no QGIS style written" in line]
    assert said == ["no QGIS style written: natural colour needs one band each named Red, Green and Blue, and the "
                    "output has more than one band named Red (bands 1 and 2) (QGIS draws bands 1, 2, 3)"], lines
