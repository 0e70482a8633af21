"""`iopaint-api models …`: LaMa weights — import into the model store, export, inspect.

iopaint-api models import big-lama.pt          store a weights file as lama:<version>
iopaint-api models export -o ours.pt --weights best.ckpt
                                               write TorchScript in IOPaint's convention
iopaint-api models list                        every place weights are looked for
iopaint-api models where                       the one the runner would load
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from settings import get_settings

models_app = typer.Typer(help="LaMa weights: import, export, where.", no_args_is_help=True)


@models_app.command("import")
def import_command(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="big-lama.pt or best.ckpt")
    ],
    config: Annotated[str, typer.Option(help="Architecture of the weights.")] = "big-lama",
) -> None:
    """Check that FILE loads, then store it in the BentoML model store as `lama`."""
    import torch

    from runners.lama.configs import get_config
    from runners.lama.store import import_weights
    from runners.lama.weights import WeightsError, detect_format, load_network

    fmt = detect_format(file)
    try:
        load_network(file, get_config(config), torch.device("cpu"))
    except (WeightsError, RuntimeError) as exc:
        typer.echo(f"Not imported: {file} does not load as {config} ({exc})", err=True)
        raise typer.Exit(1) from exc
    stored = import_weights(file, fmt=fmt, config=config)
    typer.echo(f"Imported {file} as {stored.tag} ({stored.format}, md5 {stored.md5})")


@models_app.command("export")
def export_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="TorchScript file to write.")],
    config: Annotated[str, typer.Option(help="Architecture to build.")] = "big-lama",
    weights: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="LaMa best.ckpt to take the weights from."),
    ] = None,
    random_seed: Annotated[
        int | None, typer.Option(help="Random weights from this seed instead (tests, benchmarks).")
    ] = None,
    weight_scale: Annotated[
        float,
        typer.Option(help="With --random-seed: weight scale (0.5 keeps big-lama unsaturated)."),
    ] = 1.0,
) -> None:
    """Write a LaMa network as TorchScript that IOPaint's loader (and ours) accepts."""
    from runners.lama.configs import get_config
    from runners.lama.network import InpaintingNetwork
    from runners.lama.weights import (
        export_torchscript,
        generator_state_from_checkpoint,
        md5_of,
        random_network,
        read_checkpoint,
    )

    if (weights is None) == (random_seed is None):
        raise typer.BadParameter("give exactly one of --weights and --random-seed")
    if weights is not None and weight_scale != 1.0:
        raise typer.BadParameter("--weight-scale applies to --random-seed only")
    architecture = get_config(config)
    if weights is not None:
        network = InpaintingNetwork(architecture)
        network.load_state_dict(generator_state_from_checkpoint(read_checkpoint(weights)))
        source = {"source": str(weights)}
    else:
        seed = random_seed if random_seed is not None else 0
        network = random_network(architecture, seed=seed, weight_scale=weight_scale)
        source = {"random_seed": random_seed, "weight_scale": weight_scale}
    export_torchscript(network, output, metadata=source)
    typer.echo(f"Wrote {output} ({config}, md5 {md5_of(output)})")


@models_app.command("list")
def list_command(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every place LaMa weights are looked for, in order, and whether each is there."""
    from runners.loading import list_weights

    rows = [
        {
            "origin": str(location.origin),
            "source": location.label,
            "path": str(location.path),
            "config": location.config,
            "present": location.present,
        }
        for location in list_weights(get_settings())
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        mark = "found  " if row["present"] else "missing"
        typer.echo(f"{mark}  {row['origin']:<22} {row['source']}  [{row['config']}]")


@models_app.command("where")
def where_command(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What the runner would load, and from where (nothing is downloaded)."""
    from runners.loading import NO_WEIGHTS_MESSAGE, ModelUnavailable, find_weights

    settings = get_settings()
    if settings.model == "opencv":
        typer.echo("IOPAINT_MODEL=opencv: no LaMa weights are loaded.")
        return
    try:
        location = find_weights(settings)
    except ModelUnavailable as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    if location is None:
        fallback = "refuses to start" if settings.model == "lama" else "serves OpenCV"
        typer.echo(f"{NO_WEIGHTS_MESSAGE} The runner {fallback}.", err=True)
        raise typer.Exit(1)
    if as_json:
        info = {
            "origin": str(location.origin),
            "source": location.label,
            "path": str(location.path),
            "config": location.config,
            "md5": location.md5,
            "download": location.url is not None and not location.present,
        }
        typer.echo(json.dumps(info, indent=2))
        return
    action = "downloads" if location.url and not location.present else "loads"
    typer.echo(f"The runner {action} {location.label} ({location.origin}, {location.config})")
    if action == "downloads":
        typer.echo(f"  into {location.path}")


if __name__ == "__main__":
    models_app()
