"""``python -m hierro``: the same as the ``hierro`` command."""

from hierro.cli import main

main()
