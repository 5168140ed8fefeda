"""``python -m snca_cli.cli``: the ``snca`` command."""

from snca_cli.cli import main

main()
