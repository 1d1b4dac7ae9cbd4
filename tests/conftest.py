"""Shared fixtures: a headless QGIS application with Processing and our provider, and the real fixtures."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """tests/data: small real WorldView-2 and Landsat 8 crops (see ATTRIBUTION.txt)."""
    return DATA


@pytest.fixture(scope="session")
def cached():
    """``cached("wv2/pair1_pan.tif")``: a file of `make data`'s cache of real scenes; the test skips on a machine
    without it (a clean CI clone has only tests/data)."""
    from model_core.datacache import data_dir as cache

    def path(relative: str) -> Path:
        found = cache() / relative
        if not found.exists():
            pytest.skip(f"no {relative} in the data cache (make data)")
        return found

    return path


@pytest.fixture()
def pair(data_dir, tmp_path):
    """Processing parameters for a copy of the WV2 fixture pair in tmp_path (tests may damage the copies)."""
    pan, ms = str(tmp_path / "pan.tif"), str(tmp_path / "ms.tif")
    shutil.copy(data_dir / "wv2_pan.tif", pan)
    shutil.copy(data_dir / "wv2_ms.tif", ms)
    return {"PAN": pan, "MS": ms, "SENSOR": "wv2", "METHOD": "mtf_glp_hpm"}


@pytest.fixture(scope="session")
def qgis_app(session_plugin):
    """A QgsApplication with Processing initialised and the ksdiff provider registered."""
    from qgis.core import QgsApplication

    return QgsApplication.instance()


@pytest.fixture(scope="session")
def session_plugin():
    """The plugin object whose initProcessing() registered the provider for the whole session."""
    from qgis.core import QgsApplication
    from qgis.testing import start_app

    app = start_app()
    sys.path.insert(0, "/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing

    Processing.initialize()
    import ksdiff_qgis

    plugin = ksdiff_qgis.classFactory(None)
    plugin.initProcessing()
    assert QgsApplication.processingRegistry().providerById("ksdiff") is not None
    yield plugin
    plugin.unload()
    del app


@pytest.fixture(scope="session")
def wv2_arrays(data_dir):
    """The real WorldView-2 fixture (a crop of pair 1) as float32 arrays: PAN (256, 256) and MS (4, 64, 64)."""
    import numpy as np
    from osgeo import gdal

    pan = gdal.Open(str(data_dir / "wv2_pan.tif")).ReadAsArray().astype(np.float32)
    ms = gdal.Open(str(data_dir / "wv2_ms.tif")).ReadAsArray().astype(np.float32)
    return pan[: ms.shape[1] * 4, : ms.shape[2] * 4], ms


@pytest.fixture(scope="session")
def load_script():
    """Import one of ``scripts/*.py`` by name as a module (the scripts folder is not a package)."""
    import importlib.util

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod   # dataclasses look their module up while the script runs
        spec.loader.exec_module(mod)
        return mod
    return load


# a KSDiff small enough to train a few steps on the 64-px fixture in seconds
SMALL_KSDIFF = {"width": 16, "blocks": 2, "modulate": "all", "modulate_ends": True, "dim": 16, "tokens": 4,
                "struct_tokens": 4, "sample_steps": 2, "enc_widths": [8, 16, 32], "live": True, "tile_norm": True,
                "prefuse": True}


@pytest.fixture()
def small_cfg(data_dir, tmp_path):
    """A factory of tiny training configs on the real WorldView-2 fixture: ``rr4_ksdiff_adaptive.yaml``'s stages at
    two steps each with ``SMALL_KSDIFF`` (``make(out, method=..., fullres=...)``; a bare backbone gets the options it
    takes); the run goes to ``tmp_path/out``."""
    from model_core.config import load_config
    from model_core.nets import model_keys

    def make(out: str, method: str = "ksdiff", fullres: bool = True) -> dict:
        cfg = load_config("rr4_ksdiff_adaptive.yaml")
        known = model_keys(method, cfg["backbone"])
        cfg["method"], cfg["model"] = method, {k: v for k, v in SMALL_KSDIFF.items() if k in known}
        cfg["data"].update(root=str(data_dir), patch=32, batch=4, val=[],
                           train=[{"kind": "pair", "pan": "wv2_pan.tif", "ms": "wv2_ms.tif", "share": 1.0}],
                           fullres={"patch": 32, "sources": [{"pan": "wv2_pan.tif", "ms": "wv2_ms.tif"}]}
                           if fullres else None)
        for st in cfg["stages"]:
            st.update(steps=2, warmup=1)
        cfg["train"].update(val_every=1000, ckpt_every=1000, device="cpu", out_dir=str(tmp_path / out))
        cfg.pop("config_path", None)
        return cfg

    return make


@pytest.fixture(scope="session")
def pansharpen_model():
    """``make(name, inputs, static)``: a graphical model whose child ``sharpen`` runs ksdiff:pansharpen with each of
    ``inputs`` ({PARAM: (model input name, its parameter class)}) from a model input and ``static`` values, its
    OUTPUT as the model output ``fused`` (run it with ``sharpen:fused``)."""
    from qgis.core import (
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
    )

    def make(name: str, inputs: dict, static: dict) -> QgsProcessingModelAlgorithm:
        model = QgsProcessingModelAlgorithm(name, "tests")
        child = QgsProcessingModelChildAlgorithm("ksdiff:pansharpen")
        child.setChildId("sharpen")
        for param, (src, kind) in inputs.items():
            model.addModelParameter(kind(src, src), QgsProcessingModelParameter(src))
            child.addParameterSources(param, [QgsProcessingModelChildParameterSource.fromModelParameter(src)])
        for param, value in static.items():
            child.addParameterSources(param, [QgsProcessingModelChildParameterSource.fromStaticValue(value)])
        out = QgsProcessingModelOutput("fused", "fused")
        out.setChildOutputName("OUTPUT")
        child.setModelOutputs({"fused": out})
        model.addChildAlgorithm(child)
        return model

    return make


@pytest.fixture()
def no_iface(monkeypatch):
    """The Processing parameters panel without a QGIS main window (it asks iface for the canvas and the active
    layer): what dialog tests open with ``alg.createCustomParametersWidget(None)``."""
    from unittest import mock

    import processing.gui.ParametersPanel as panel_module

    iface = mock.MagicMock()
    iface.mapCanvas.return_value = iface.browserModel.return_value = iface.activeLayer.return_value = None
    monkeypatch.setattr(panel_module, "iface", iface)
