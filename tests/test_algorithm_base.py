"""The provider's algorithms share one base: group, icon, fresh instances; GeoTIFF output at provider level."""
from __future__ import annotations

import os


def test_algorithms_share_the_base(qgis_app):
    from qgis.core import QgsApplication

    from ksdiff_qgis.algorithms.base import ICON, KsdiffAlgorithm

    provider = QgsApplication.processingRegistry().providerById("ksdiff")
    assert provider.supportedOutputRasterLayerExtensions()[0] == "tif"
    assert os.path.isfile(ICON) and provider.svgIconPath() == ICON
    groups, icons = {}, set()
    for alg in provider.algorithms():
        assert isinstance(alg, KsdiffAlgorithm), alg.id()
        assert os.path.isfile(alg.svgIconPath()) and not alg.icon().isNull()
        icons.add(alg.svgIconPath())
        fresh = alg.createInstance()
        assert type(fresh) is type(alg) and fresh is not alg
        groups[alg.id()] = (alg.groupId(), alg.group())
    assert groups["ksdiff:pansharpen"] == groups["ksdiff:assess"] == ("pansharpening", "Pansharpening")
    assert groups["ksdiff:install_runtime"] == ("setup", "Setup")
    assert len(icons) == len(groups)   # each algorithm has its own icon in the toolbox
