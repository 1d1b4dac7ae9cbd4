"""Processing algorithm ``ksdiff:install_runtime``: install ONNX Runtime into a plugin-private folder.

Runs as a background task with progress and pip's log in the dialog; the menu action and
`make deploy` use this same algorithm.
"""
from __future__ import annotations

import os

from qgis.core import (
    QgsApplication,
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsSettings,
)

from ..engine import deps
from ..engine.errors import Cancelled, InputError
from .base import KsdiffAlgorithm, releases_on_failure, translator
from .common import ProcessingFeedback
from .compat import KeyedEnum, advanced, set_help

PACKAGES = ["auto", "onnxruntime", "onnxruntime-gpu", deps.GPU_WITH_CUDA]


tr = translator("KsdiffInstallRuntime")


def runtime_base() -> str:
    """Where this QGIS profile keeps the plugin's private ONNX Runtime (normalised: Qt gives forward slashes, and
    messages on Windows showed C:/Users/…/default/python\\ksdiff_runtime)."""
    return os.path.normpath(os.path.join(QgsApplication.qgisSettingsDirPath(), "python", "ksdiff_runtime"))


class InstallRuntimeAlgorithm(KsdiffAlgorithm):
    ICON_FILE = "install.svg"
    PACKAGE, WHEEL, REINSTALL, RESULT = "PACKAGE", "WHEEL", "REINSTALL", "RESULT"
    GROUP_ID = "setup"
    HELP_ANCHOR = "onnx-runtime-for-the-ksdiff-method"   # README.md's section, as GitHub slugs its heading

    def name(self) -> str:
        return "install_runtime"

    def displayName(self) -> str:  # noqa: N802
        return tr("Install ONNX Runtime (for KSDiff)")

    def shortDescription(self) -> str:  # noqa: N802
        return tr("Installs ONNX Runtime, which the KSDiff method needs, for this QGIS profile.")

    def shortHelpString(self) -> str:  # noqa: N802
        return tr(
            "Downloads ONNX Runtime with pip into a folder private to this plugin and QGIS profile "
            "({}), for the Python version QGIS runs. QGIS's own packages (numpy) are not "
            "touched, and nothing but onnxruntime is installed (tested versions {}).\nPackage: auto takes "
            "onnxruntime-gpu when an NVIDIA GPU is found (nvidia-smi), else onnxruntime; the GPU build with the "
            "CUDA/cuDNN runtime wheels (several GB) is an explicit choice for machines without CUDA 13 and cuDNN 9. "
            "Needs access to the Python package index (QGIS's proxy settings are passed to pip), or a local "
            "onnxruntime wheel (offline install). The import is checked in QGIS's own Python. A tested build "
            "already installed is kept (nothing downloaded) unless 'Reinstall even if already installed' is "
            "ticked. A first install takes effect at once; replacing a runtime this QGIS session has already "
            "loaded (e.g. switching from the CPU to the GPU build) takes effect after restarting QGIS.\nRemoving "
            "the plugin does not remove this folder (about 80 MB, more with the CUDA wheels): delete {} by hand to "
            "remove ONNX Runtime."
        ).format(runtime_base(), deps.TESTED_TEXT, runtime_base())

    def initAlgorithm(self, config=None):  # noqa: N802
        # short, as the dialog's drop-down is as wide as its longest option (QA: 646 px in a 390 px panel); the detail
        # is in the parameter's help (tooltip). engine/runtime.py's GPU_INSTALL names the third as shown here
        labels = [tr("Automatic") + " [auto]", tr("CPU build") + " [onnxruntime]",
                  tr("NVIDIA GPU build") + " [onnxruntime-gpu]",
                  tr("GPU build with CUDA wheels") + " [{}]".format(deps.GPU_WITH_CUDA)]
        self.addParameter(set_help(KeyedEnum(self.PACKAGE, tr("Package"), PACKAGES, labels, "auto"), tr(
            "Which ONNX Runtime build to install. Default: auto, the NVIDIA GPU build when nvidia-smi finds an NVIDIA "
            "GPU, else the CPU build. onnxruntime-gpu: the NVIDIA GPU build, using the CUDA 13 and cuDNN 9 installed "
            "on the system. {}: the GPU build with the CUDA/cuDNN runtime wheels (several GB to download), for a "
            "machine without them.").format(deps.GPU_WITH_CUDA)))
        self.addParameter(advanced(set_help(
            QgsProcessingParameterFile(self.WHEEL, tr("Local onnxruntime wheel"), extension="whl",
                                       optional=True),
            tr("Offline install: an onnxruntime or onnxruntime-gpu .whl for this Python, installed without the package "
               "index."))))
        self.addParameter(advanced(set_help(
            QgsProcessingParameterBoolean(self.REINSTALL, tr("Reinstall even if already installed"),
                                          defaultValue=False),
            tr("Off: a tested build of the chosen package that is already installed and imports is kept, and "
               "nothing is downloaded. On: download and replace it (e.g. to repair a damaged folder)."))))
        self.addOutput(QgsProcessingOutputString(self.RESULT, tr("What was installed")))

    def refusal(self, parameters, context) -> str | None:
        """A WHEEL that is no .whl file, as the install refuses it (QGIS checks only the name's ending)."""
        wheel = self.parameterAsFile(parameters, self.WHEEL, context)
        return self.refusal_of(lambda: deps.check_wheel(wheel)) if wheel else None

    @releases_on_failure
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        choice = self.parameterDefinition(self.PACKAGE).resolve(parameters, context)
        package = None if choice == "auto" else choice
        wheel = self.parameterAsFile(parameters, self.WHEEL, context) or None
        reinstall = self.parameterAsBoolean(parameters, self.REINSTALL, context)
        try:
            result = deps.install(runtime_base(), ProcessingFeedback(feedback), package, wheel=wheel,
                                  proxy=qgis_proxy(), reinstall=reinstall)
        except Cancelled:
            raise QgsProcessingException(tr("Cancelled: nothing was installed")) from None
        except InputError as e:
            raise QgsProcessingException(str(e)) from e
        deps.activate(runtime_base())
        feedback.pushInfo(result)
        return {self.RESULT: result}


def qgis_proxy() -> str | None:
    """The proxy configured in QGIS's options (Network tab), as pip's ``--proxy`` value."""
    st = QgsSettings()
    return deps.proxy_url(st.value("proxy/proxyEnabled", False, type=bool), st.value("proxy/proxyType", "", type=str),
                          st.value("proxy/proxyHost", "", type=str), st.value("proxy/proxyPort", "", type=str),
                          st.value("proxy/proxyUser", "", type=str), st.value("proxy/proxyPassword", "", type=str))
