"""model_core: training, evaluation and ONNX export of KSDiff, its backbones and the SSDiff baseline.

Torch lives here only; the QGIS plugin consumes the exported ONNX files and their model cards.
Command line: ``python -m model_core train|evaluate|export|profile``.
"""
from ksdiff_qgis.engine.ort_telemetry import switch_off

# its profiling and int8 export import onnxruntime: its telemetry off first, as in the plugin (ort_telemetry)
switch_off()

__all__ = ["nets", "data", "diffusion"]
