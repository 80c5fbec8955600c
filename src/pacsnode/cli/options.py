"""Options shared by every command, and turning them into :class:`Settings`."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pacsnode import logs
from pacsnode.config import ConfigError, Settings, resolve

F = Callable[..., Any]

COMMON = [
    click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False),
                 help="TOML settings file (also PACSNODE_CONFIG)."),
    click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
                 help="Where files and the SQLite index live [pacsnode-data]."),
    click.option("--db", help="Index database URL, e.g. postgresql://user@host/db "
                 "[SQLite in the data dir]."),
    click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"],
                                                  case_sensitive=False)),
    click.option("--log-format", type=click.Choice(["text", "json"])),
]


def common_options(func: F) -> F:
    """Add --config, --data-dir, --db, --log-level and --log-format to a command."""
    for option in reversed(COMMON):
        func = option(func)
    return func


def settings_from(config_file: Path | None, **cli: Any) -> Settings:
    """Resolve settings (flags > PACSNODE_* environment > TOML > defaults) and set up
    logging; a bad setting ends the command with a clear message."""
    try:
        settings = resolve(cli, config_file=config_file)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    logs.setup(settings.log_level, settings.log_format)
    warnings.filterwarnings("ignore", module="pydicom")
    return settings
