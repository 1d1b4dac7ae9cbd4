"""KSDiff pansharpening for QGIS."""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    """QGIS plugin entry point."""
    from .plugin import KsdiffPlugin

    return KsdiffPlugin(iface)
