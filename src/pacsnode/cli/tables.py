"""Plain-text tables for the CLI's list commands."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click


def echo_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> None:
    """Print ``rows`` as aligned columns: ``columns`` is (key, title) pairs; None and
    missing values print empty."""
    table = [[title for _, title in columns]]
    table += [["" if row.get(key) is None else str(row[key]) for key, _ in columns]
              for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    for r in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True))
                   .rstrip())
