"""``python -m regrow.cli``: the `regrow` command."""

from regrow.cli import main

main()
