"""User-facing errors: raised anywhere in snca, shown by the CLI and the QGIS plugin as one line."""


class SncaError(Exception):
    """An error caused by the user's input (a missing file, a bad option, a mismatched model).

    The CLI prints ``error: <message>`` and exits with code 2; it never shows a traceback for it.
    """
