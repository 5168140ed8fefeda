"""The Processing provider "snca": its algorithms appear in the toolbox under SNCA.

It is registered whether or not the snca runtime works: without it the algorithms are listed
as usual and each one says how to install the runtime instead of running.
"""

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
    ``adaptmodel``.

    ``unavailable`` is empty when the runtime works, else the line its algorithms answer with;
    :meth:`set_unavailable` changes it (the runtime was installed) and reloads them.
    """

    def __init__(self, unavailable: str = "") -> None:
        super().__init__()
        self.unavailable = unavailable

    def id(self) -> str:
        return "snca"

    def name(self) -> str:
        return "SNCA"

    def longName(self) -> str:
        return "SNCA scene embeddings: classify tiles, search similar tiles, adapt to your classes"

    def icon(self) -> QIcon:
        return QIcon(str(ICON_PATH))

    def set_unavailable(self, unavailable: str) -> None:
        """Say whether the runtime works now (see the class) and reload the algorithms."""
        if unavailable != self.unavailable:
            self.unavailable = unavailable
            self.refreshAlgorithms()

    def loadAlgorithms(self) -> None:
        for algorithm in (
            ClassifyRasterAlgorithm,
            BuildIndexAlgorithm,
            SearchSimilarAlgorithm,
            AdaptModelAlgorithm,
        ):
            self.addAlgorithm(algorithm(self.unavailable))
