"""``python -m legato`` is the ``legato`` command."""

from .cli import main

main()
