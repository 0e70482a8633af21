"""`iopaint-api`: the operator's command.

iopaint-api serve              run the service (bentoml serve) on IOPAINT_PORT
iopaint-api keys ...           API keys and plans (auth/cli.py)
iopaint-api models ...         LaMa weights: import, export, where (runners/cli.py)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from auth.cli import keys_app
from runners.cli import models_app
from settings import get_settings

PROJECT_ROOT = Path(__file__).resolve().parent

app = typer.Typer(help="Operate the watermark-removal API.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Operate the watermark-removal API (settings come from IOPAINT_* variables)."""


app.add_typer(keys_app, name="keys", help="API keys and plans.")
app.add_typer(models_app, name="models", help="LaMa weights: import, export, list, where.")


@app.command()
def serve(
    port: int | None = typer.Option(None, help="HTTP port (default: IOPAINT_PORT, 8080)."),
    host: str | None = typer.Option(None, help="Interface (default: IOPAINT_HOST, 0.0.0.0)."),
) -> None:
    """Serve the API with `bentoml serve`, from the project directory."""
    settings = get_settings()
    command = [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "service:WatermarkRemoval",
        "--working-dir",
        str(PROJECT_ROOT),
        "--port",
        str(port or settings.port),
        "--host",
        host or settings.host,
    ]
    os.execv(sys.executable, command)


if __name__ == "__main__":
    app()
