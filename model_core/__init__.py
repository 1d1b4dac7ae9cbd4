"""model_core: training, evaluation and ONNX export of KSDiff, its backbones and the SSDiff baseline.

Torch lives here only; the QGIS plugin consumes the exported ONNX files and their model cards.
Command line: ``python -m model_core train|evaluate|export|profile``.
"""
__all__ = ["nets", "data", "diffusion"]
