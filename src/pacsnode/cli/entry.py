"""The ``pacsnode`` console script's entry point: process set-up, then the command line."""

from __future__ import annotations


def main() -> None:
    """Run the ``pacsnode`` command (:mod:`pacsnode.cli.main`) in a process set up by
    :func:`pacsnode.process_setup.skip_unused_modules` first."""
    from pacsnode.process_setup import skip_unused_modules

    skip_unused_modules()
    from pacsnode.cli.main import main as cli_main

    cli_main()
