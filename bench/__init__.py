"""`make bench` (``python -m bench``): quality and speed of every pansharpening method on the held-apart real scenes.

Methods: the classical ones through the engine pipeline (``exp``, ``brovey``, ``gsa``, ``mtf_glp_hpm``),
each learned ONNX model in ``ksdiff_qgis/resources/models/*.onnx`` and the comparison backbones in
``bench/models/`` (method ``ksdiff`` with that model; skipped when there is none or it fails), and the peer
tools, each run exactly as a user runs it from the command line (``bench/external.py``): GDAL's own
pansharpening as QGIS's ``gdal:pansharp`` runs it (``gdal_pansharpen.py PAN MS OUT -r cubic -of GTiff``:
weighted Brovey, GDAL's default weights) and, when Orfeo ToolBox is installed (``apt-get install otb-bin``;
neither `make setup` nor CI installs it: without it the bench says so in one line and its rows are absent),
``otbcli_BundleToPerfectSensor -inp PAN -inxs MS -method rcs|bayes -out OUT uint16`` (the MS superimposed onto
the PAN grid, then fused).

Scenes (held-apart areas from ``model_core.datacache``; data from `make data` in ``$KSDIFF_DATA``):
* WorldView-2 pair 3, valid window only (PAN rows 240-599, MS rows 60-149): reduced resolution (Wald's
  protocol, ratio 4) and full resolution.
* Landsat 8 held-apart crop: reduced resolution (ratio 2) and full resolution.
* Sentinel-2 held-apart 10 m crop, reduced resolution with a *simulated* PAN: S2 bands matched to the
  WorldView-2 statistics (per band 1st percentile and mean of WV2 pairs 1-2), PAN = 0.177 B + 0.194 G +
  0.416 R + 0.182 NIR - 4.8 DN, Gaussian blur sigma 0.8 px (DATA.md), MS degraded with the WV2 gains.

Speed: PAN megapixels per second of the whole pipeline (read, fuse, write a GeoTIFF) on a 4096x4096
PAN scene made by mirroring real WorldView-2 pair 1 imagery, each method in its own subprocess (peak RSS
= the subprocess's VmHWM; its ``ru_maxrss`` is recorded too), GDAL and Orfeo ToolBox in the same run (OTB's
peak = its own process's ru_maxrss, started by the stdlib-only ``python -m bench.external``); peak RSS of the best
classical method at 2048^2 and 8192^2.

Writes bench/results.json, docs/BENCHMARKS.md and docs/img/*.png only: the shipped models, their cards
and ``ksdiff_qgis/resources/models/README.md`` are never touched (a model card is written once, by
``python -m model_core export``). Not part of `make test`.

Modules: ``common`` (paths, method lists, raster helpers, one fusion run), ``external`` (the peer tools' exact
command lines and their runner), ``scenes`` (the test cases),
``quality`` (scoring), ``speed`` (timed subprocess runs: speed, memory, learned networks), ``learned``
(the ONNX models under test and their measured scores), ``report`` (environment, plots, Markdown),
``__main__`` (the command line).
"""
