"""Processing algorithm ``ksdiff:install_runtime``: install ONNX Runtime into a plugin-private folder.

Runs as a background task with progress and pip's log in the dialog; the menu action and
`make deploy` use this same algorithm.
"""
from __future__ import annotations

import os

from qgis.core import (
    QgsApplication,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
)
from qgis.PyQt.QtCore import QCoreApplication

from ..engine import deps
from ..engine.errors import Cancelled, InputError
from .common import ProcessingFeedback

PACKAGES = ["auto", "onnxruntime", "onnxruntime-gpu"]


def tr(text: str) -> str:
    return QCoreApplication.translate("KsdiffInstallRuntime", text)


def runtime_base() -> str:
    """Where this QGIS profile keeps the plugin's private ONNX Runtime."""
    return os.path.join(QgsApplication.qgisSettingsDirPath(), "python", "ksdiff_runtime")


class InstallRuntimeAlgorithm(QgsProcessingAlgorithm):
    PACKAGE, RESULT = "PACKAGE", "RESULT"

    def name(self) -> str:
        return "install_runtime"

    def displayName(self) -> str:  # noqa: N802
        return tr("Install ONNX Runtime (for KSDiff)")

    def group(self) -> str:
        return tr("Setup")

    def groupId(self) -> str:  # noqa: N802
        return "setup"

    def shortHelpString(self) -> str:  # noqa: N802
        return tr(
            "Downloads ONNX Runtime with pip into a folder private to this plugin and QGIS profile "
            "({}), for the Python version QGIS runs. QGIS's own packages (numpy) are not "
            "touched.\nPackage: auto takes onnxruntime-gpu when an NVIDIA GPU is found "
            "(nvidia-smi), else onnxruntime. Needs access to the Python package index. Takes effect at once."
        ).format(runtime_base())

    def createInstance(self):  # noqa: N802
        return InstallRuntimeAlgorithm()

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterEnum(self.PACKAGE, tr("Package"), options=PACKAGES,
                                                     defaultValue="auto", usesStaticStrings=True))
        self.addOutput(QgsProcessingOutputString(self.RESULT, tr("What was installed")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        choice = self.parameterAsEnumString(parameters, self.PACKAGE, context)
        package = None if choice == "auto" else choice
        try:
            result = deps.install(runtime_base(), ProcessingFeedback(feedback), package)
        except Cancelled:
            raise QgsProcessingException(tr("Cancelled: nothing was installed")) from None
        except InputError as e:
            raise QgsProcessingException(str(e)) from e
        deps.activate(runtime_base())
        feedback.pushInfo(result)
        return {self.RESULT: result}
