"""``python -m pacsnode``."""

from pacsnode.cli.main import main

main()
