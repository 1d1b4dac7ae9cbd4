"""`make package` + `make deploy` into a temporary QGIS profile, then `qgis_process run ksdiff:pansharpen`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))
import deploy  # noqa: E402
import package  # noqa: E402


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    """A temporary QGIS config root with the packaged plugin installed and enabled."""
    root = tmp_path_factory.mktemp("qgis_config")
    zip_path = package.build(root / "ksdiff_qgis.zip")
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
    assert all(n.startswith("ksdiff_qgis/") for n in names)
    assert "ksdiff_qgis/metadata.txt" in names and "ksdiff_qgis/resources/icons/ksdiff.svg" in names
    env = {"QGIS_CUSTOM_CONFIG_PATH": str(root)}
    old = os.environ.get("QGIS_CUSTOM_CONFIG_PATH")
    os.environ.update(env)
    try:
        deploy.install(zip_path, deploy.profile_plugins_dir())
        deploy.enable(env)
        print(deploy.install_runtime(env))
    finally:
        if old is None:
            os.environ.pop("QGIS_CUSTOM_CONFIG_PATH")
        else:
            os.environ["QGIS_CUSTOM_CONFIG_PATH"] = old
    return env


def qgis_process(env, *args):
    return subprocess.run([deploy.QGIS_PROCESS, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen", **env}, cwd=ROOT)


def test_qgis_process_runs_pansharpen(profile, data_dir, tmp_path):
    out = tmp_path / "fused.tif"
    res = qgis_process(profile, "--json", "run", "ksdiff:pansharpen", "--",
                       f"PAN={data_dir / 'wv2_pan.tif'}", f"MS={data_dir / 'wv2_ms.tif'}", "SENSOR=wv2",
                       "METHOD=gsa", "TILE_SIZE=128", f"OUTPUT={out}")
    assert res.returncode == 0, res.stderr + res.stdout
    payload = json.loads(res.stdout[res.stdout.index("{"):])
    assert payload["results"]["OUTPUT"] == str(out)
    ds = gdal.Open(str(out))
    assert ds.RasterCount == 4 and ds.RasterXSize == 256
    # same pixels as the engine gives for the same parameters
    from ksdiff_qgis.engine.pipeline import pansharpen

    ref = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "ref.tif"),
                     "wv2", "gsa", tile_size=128)
    assert np.array_equal(ds.ReadAsArray(), gdal.Open(ref.output_path).ReadAsArray())
    # the deployed plugin names the build its zip recorded (package.build_text), not only metadata.txt's version
    built = dict(line.split("=", 1) for line in package.build_text().splitlines())
    assert ds.GetMetadataItem("TIFFTAG_SOFTWARE").endswith(f" (build {built['commit']})")
    assert ds.GetMetadataItem("KSDIFF_BUILD") == f"{built['commit']}, built {built['date']}"


def test_qgis_process_reports_bad_input(profile, data_dir, tmp_path):
    out = tmp_path / "fused.tif"
    res = qgis_process(profile, "run", "ksdiff:pansharpen", "--", f"PAN={data_dir / 'wv2_pan.tif'}",
                       f"MS={data_dir / 'wv2_ms.tif'}", "SENSOR=wv3", f"OUTPUT={out}")
    assert res.returncode != 0
    assert "expects 8" in res.stdout + res.stderr
    assert not out.exists()


@pytest.mark.parametrize("json_mode", [False, True])
def test_qgis_process_says_a_refusal_once(profile, data_dir, tmp_path, json_mode):
    """QA: a refused run printed its message three times (QGIS 3.22 echoes the message log's Critical lines besides
    its ERROR: line, and logs a failure twice); once now, as the ERROR: line (with --json, which prints no ERROR:
    line, the echo)."""
    gridless = tmp_path / "gridless.tif"
    src = gdal.Open(str(data_dir / "wv2_pan.tif"))
    ds = gdal.GetDriverByName("GTiff").Create(str(gridless), src.RasterXSize, src.RasterYSize, 1, gdal.GDT_UInt16)
    ds.GetRasterBand(1).WriteArray(src.ReadAsArray())
    ds = None
    cases = [(f"PAN={gridless}", f"MS={data_dir / 'wv2_ms.tif'}", "no georeferencing"),
             (f"PAN={data_dir / 'wv2_pan.tif'}", f"MS={data_dir / 'wv2_ms.tif'}", "SENSOR=wv3", "expects 8")]
    for *args, words in cases:
        out = tmp_path / "fused.tif"
        res = qgis_process(profile, *(["--json"] if json_mode else []), "run", "ksdiff:pansharpen", "--", *args,
                           f"OUTPUT={out}")
        said = [line for line in (res.stdout + res.stderr).splitlines() if words in line]
        assert res.returncode != 0 and not out.exists()
        assert len(said) == 1, res.stdout + res.stderr
        assert json_mode or said[0].startswith("ERROR:\t")
        # QGIS loading the gridless PAN printed GDAL's "ERROR 1: Unable to compute a transformation ..." first (QA)
        assert "NO_GEOTRANSFORM" not in res.stdout + res.stderr


def test_an_empty_option_takes_its_default_and_an_unknown_one_is_named(profile, data_dir, tmp_path):
    """``SENSOR=`` reaches the plugin as a NULL value: it was refused as "Incorrect parameter value for SENSOR" where
    processing.run's "" took the default (QA); ksdiff:assess said only that for an unknown SENSOR."""
    out = tmp_path / "fused.tif"
    res = qgis_process(profile, "run", "ksdiff:pansharpen", "--", f"PAN={data_dir / 'wv2_pan.tif'}",
                       f"MS={data_dir / 'wv2_ms.tif'}", "SENSOR=", "METHOD=gsa", "COMPRESSION=", f"OUTPUT={out}")
    assert res.returncode == 0, res.stdout + res.stderr
    assert gdal.Open(str(out)).GetMetadataItem("KSDIFF_METHOD") == "gsa"
    res = qgis_process(profile, "run", "ksdiff:assess", "--", f"FUSED={out}", f"PAN={data_dir / 'wv2_pan.tif'}",
                       f"MS={data_dir / 'wv2_ms.tif'}", "SENSOR=bogus", f"OUTPUT_HTML={tmp_path / 'r.html'}")
    assert res.returncode != 0 and "SENSOR: unknown value 'bogus'; use one of" in res.stdout + res.stderr


def test_qgis_process_lists_algorithm_help(profile):
    res = qgis_process(profile, "help", "ksdiff:pansharpen")
    assert res.returncode == 0
    for name in ("PAN", "MS", "SENSOR", "METHOD", "TILE_SIZE", "OVERLAP", "OUTPUT"):
        assert name in res.stdout


def test_qgis_process_runs_a_learned_model(profile, data_dir, tmp_path):
    """ONNX Runtime installed by deploy into the profile's private folder runs a model under qgis_process."""
    from test_runtime import identity_model

    model = identity_model(tmp_path / "m.onnx")
    out = tmp_path / "fused.tif"
    res = qgis_process(profile, "run", "ksdiff:pansharpen", "--", f"PAN={data_dir / 'wv2_pan.tif'}",
                       f"MS={data_dir / 'wv2_ms.tif'}", "SENSOR=wv2", "METHOD=ksdiff", f"MODEL={model}",
                       "DEVICE=auto", f"OUTPUT={out}")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Model m.onnx: running on the CPU" in res.stdout
    assert gdal.Open(str(out)).RasterCount == 4


@pytest.mark.skipif(not (ROOT / "ksdiff_qgis" / "resources" / "models" / "wv2.onnx").exists(),
                    reason="no bundled wv2 model yet")
def test_qgis_process_bundled_ksdiff_matches_engine(profile, data_dir, tmp_path):
    """The bundled model under qgis_process gives the same pixels as inside QGIS's Python (processing.run)."""
    pan, ms = data_dir / "wv2_test_pan.tif", data_dir / "wv2_test_ms.tif"
    out = tmp_path / "qp.tif"
    res = qgis_process(profile, "run", "ksdiff:pansharpen", "--", f"PAN={pan}", f"MS={ms}", "SENSOR=wv2",
                       "METHOD=ksdiff", f"OUTPUT={out}")   # forced: the default (auto) may pick MTF-GLP-HPM
    assert res.returncode == 0, res.stdout + res.stderr
    from ksdiff_qgis.engine.pipeline import pansharpen

    ref = pansharpen(str(pan), str(ms), str(tmp_path / "ref.tif"), "wv2", "ksdiff")
    assert np.array_equal(gdal.Open(str(out)).ReadAsArray(), gdal.Open(ref.output_path).ReadAsArray())


@pytest.mark.parametrize("pair,method,switch,says,gone,engine", [
    ("wv2_test", "ksdiff", "CONSISTENCY=false", "no consistency step", None, {"consistency": False}),
    ("wv2", "mtf_glp_hpm", "COREGISTER=true", "(COREGISTER): the MS moved onto the PAN", "PAN pixels apart",
     {"coregister": True}),
])
def test_qgis_process_switches(profile, data_dir, tmp_path, pair, method, switch, says, gone, engine):
    """CONSISTENCY=false (the network's own output) and COREGISTER=true (the MS moved onto the PAN) under
    qgis_process: the log says so and the pixels are the engine's for the same switch."""
    pan, ms = data_dir / f"{pair}_pan.tif", data_dir / f"{pair}_ms.tif"
    out = tmp_path / "qp.tif"
    res = qgis_process(profile, "run", "ksdiff:pansharpen", "--", f"PAN={pan}", f"MS={ms}", "SENSOR=wv2",
                       f"METHOD={method}", switch, f"OUTPUT={out}")
    assert res.returncode == 0, res.stdout + res.stderr
    assert says in res.stdout and (gone is None or gone not in res.stdout)
    from ksdiff_qgis.engine.pipeline import pansharpen

    ref = pansharpen(str(pan), str(ms), str(tmp_path / "ref.tif"), "wv2", method, **engine)
    assert np.array_equal(gdal.Open(str(out)).ReadAsArray(), gdal.Open(ref.output_path).ReadAsArray())


def test_a_redeploy_onto_the_same_profile_succeeds(profile):
    """`make deploy` run again (an upgrade): qgis_process refuses to enable an enabled plugin with a non-zero status,
    which deploy reported as 'enabling the plugin failed'."""
    deploy.enable(profile)


def test_ms_bands_in_commas_spaces_or_repeats(profile, data_dir, tmp_path):
    """QA: MS_BANDS=4,3,2,1 (as MTF_GAINS is written) and "MS_BANDS=4 3 2 1" failed with "band 0 does not exist";
    now they fuse bands 4, 3, 2, 1 as ';' and a repeated MS_BANDS do, and other text names the accepted forms."""
    base = [f"PAN={data_dir / 'wv2_pan.tif'}", f"MS={data_dir / 'wv2_ms.tif'}", "SENSOR=wv2", "METHOD=brovey"]
    outs = []
    for i, given in enumerate((["MS_BANDS=4,3,2,1"], ["MS_BANDS=4 3 2 1"], ["MS_BANDS=4;3;2;1"],
                               ["MS_BANDS=4", "MS_BANDS=3", "MS_BANDS=2", "MS_BANDS=1"])):
        out = tmp_path / f"o{i}.tif"
        res = qgis_process(profile, "run", "ksdiff:pansharpen", "--", *base, *given, f"OUTPUT={out}")
        assert res.returncode == 0, res.stdout + res.stderr
        ds = gdal.Open(str(out))
        assert ds.GetMetadataItem("KSDIFF_MS_BANDS") == "4,3,2,1", given
        outs.append(ds.ReadAsArray())
    assert all(np.array_equal(outs[0], o) for o in outs[1:])
    res = qgis_process(profile, "run", "ksdiff:pansharpen", "--", *base, "MS_BANDS=red,nir",
                       f"OUTPUT={tmp_path / 'bad.tif'}")
    said = res.stdout + res.stderr
    assert res.returncode != 0 and "is not a list of band numbers" in said and "4,3,2,1 or 4 3 2 1" in said, said
    assert "band 0" not in said and not (tmp_path / "bad.tif").exists()


def test_writing_the_style_prints_no_gdal_error_for_a_constant_band(profile, data_dir, tmp_path):
    """QA: each GSA, MTF-GLP-FS and auto run on an MS band of 500 printed "ERROR 5: <output>, band 3: dfMax should
    be strictly greater than dfMin": the output's band 3 is 500 throughout, and the layer KSDiff opens to write its
    natural-colour style got QGIS's default renderer, whose histogram GDAL refuses there. The same line about the MS
    input comes from QGIS loading the path as a layer before KSDiff runs: it shows this process prints GDAL's errors
    (a fresh qgis_process: in a long pytest process an earlier test's error handler may hide them)."""
    src = gdal.Open(str(data_dir / "wv2_ms.tif"))
    const = gdal.GetDriverByName("GTiff").CreateCopy(str(tmp_path / "const.tif"), src)
    band = const.GetRasterBand(3)
    red = band.ReadAsArray()
    nodata = band.GetNoDataValue()
    red[red != nodata if nodata is not None else np.ones_like(red, bool)] = 500
    band.WriteArray(red)
    const = band = None
    out = tmp_path / "gsa.tif"
    r = qgis_process(profile, "run", "ksdiff:pansharpen", "--", f"PAN={data_dir / 'wv2_pan.tif'}",
                     f"MS={tmp_path / 'const.tif'}", "SENSOR=wv2", "METHOD=gsa", f"OUTPUT={out}")
    printed = r.stdout + r.stderr
    assert r.returncode == 0, printed
    assert (gdal.Open(str(out)).GetRasterBand(3).ReadAsArray() == 500).any() and (tmp_path / "gsa.qml").exists()
    assert "gsa.tif" not in printed.replace(f"OUTPUT:\t{out}", ""), printed
