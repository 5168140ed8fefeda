"""The Processing provider "snca": its algorithms appear in the toolbox under SNCA."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms import (
    AdaptModelAlgorithm,
    BuildIndexAlgorithm,
    ClassifyRasterAlgorithm,
    SearchSimilarAlgorithm,
)

ICON_PATH = Path(__file__).resolve().parent / "icon.png"


class SncaProvider(QgsProcessingProvider):
    """Provider ``snca``: algorithms ``classifyraster``, ``buildindex``, ``searchsimilar``,
    ``adaptmodel``."""

    def id(self) -> str:
        return "snca"

    def name(self) -> str:
        return "SNCA"

    def longName(self) -> str:
        return "SNCA scene embeddings: classify tiles, search similar tiles, adapt to your classes"

    def icon(self) -> QIcon:
        return QIcon(str(ICON_PATH))

    def loadAlgorithms(self) -> None:
        for algorithm in (
            ClassifyRasterAlgorithm,
            BuildIndexAlgorithm,
            SearchSimilarAlgorithm,
            AdaptModelAlgorithm,
        ):
            self.addAlgorithm(algorithm())
