"""Pansharpening engine: numpy + GDAL (+ ONNX Runtime for learned models), no QGIS imports.

Used by the QGIS Processing algorithms, by the command-line scripts and by ``model_core``
(one implementation of degradation and quality indices for the whole project).
"""
