"""Training of snca scene-embedding networks (SNCA+CE deep metric learning) with PyTorch.

Everything under ``train`` needs the ``[train]`` extra; the runtime package ``snca_cli`` never
imports it except from the ``snca train`` / ``snca export`` / ``snca evaluate`` commands.
"""
