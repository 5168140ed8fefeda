"""Training of snca scene-embedding networks (SNCA+CE deep metric learning) with PyTorch.

Installed as ``snca_train`` (the repository folder is ``train/``). Everything here needs the
``[train]`` extra; the core (``snca_cli`` outside ``snca_cli.cli``) never imports it: the
``snca train`` / ``snca export`` commands do, and ``snca evaluate`` reaches checkpoints through
the ``snca.embedders`` entry point (:mod:`snca_train.embedder`).
"""
