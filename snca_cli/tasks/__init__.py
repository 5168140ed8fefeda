"""Tasks: the work a user asks for (classify, index, search, evaluate, demo), with progress and
cancel hooks; the CLI and the QGIS plugin call these and nothing below them for policy."""
