"""``pacsnode synth``: write a synthetic, reproducible corpus to try pacsnode with."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--patients", default=3, show_default=True)
@click.option("--studies", "studies_per_patient", default=2, show_default=True,
              help="Studies per patient.")
@click.option("--series", "series_per_study", default=2, show_default=True,
              help="Series per study.")
@click.option("--instances", "instances_per_series", default=5, show_default=True,
              help="Instances per series.")
@click.option("--size", default=64, show_default=True, help="Rows and columns.")
@click.option("--seed", default=0, show_default=True)
def synth(out_dir: Path, patients: int, studies_per_patient: int, series_per_study: int,
          instances_per_series: int, size: int, seed: int) -> None:
    """Generate synthetic CT/MR studies (same seed, same bytes)."""
    from pacsnode.synthetic import generate_corpus

    files = generate_corpus(out_dir, patients=patients, studies_per_patient=studies_per_patient,
                            series_per_study=series_per_study,
                            instances_per_series=instances_per_series, rows=size,
                            columns=size, seed=seed)
    click.echo(f"wrote {len(files)} files under {out_dir}")
