"""LaMa weights in the BentoML model store, as model `lama`.

`iopaint-api models import FILE` copies a weights file into the store with its md5, format
and architecture in the model's metadata; the runner then finds it as ``lama:latest``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import bentoml
from bentoml.exceptions import NotFound

from runners.lama.weights import WeightsFormat, md5_of

MODEL_NAME = "lama"


@dataclass(frozen=True)
class StoredWeights:
    tag: str
    path: Path
    md5: str
    format: WeightsFormat
    config: str


def import_weights(source: Path, *, fmt: WeightsFormat, config: str) -> StoredWeights:
    """Copy `source` into the store as a new version of `lama`; the caller has validated it."""
    metadata = {
        "md5": md5_of(source),
        "format": str(fmt),
        "config": config,
        "filename": source.name,
    }
    with bentoml.models.create(MODEL_NAME, metadata=metadata) as model:
        shutil.copyfile(source, model.path_of(source.name))
    # Read back from the store: during `create` the model lives in a temporary directory.
    return _stored_weights(bentoml.models.get(model.tag))


def latest_weights() -> StoredWeights | None:
    """The newest imported `lama`, or None when nothing was imported."""
    try:
        model = bentoml.models.get(f"{MODEL_NAME}:latest")
    except NotFound:
        return None
    return _stored_weights(model)


def _stored_weights(model: bentoml.Model) -> StoredWeights:
    metadata = model.info.metadata
    return StoredWeights(
        tag=str(model.tag),
        path=Path(model.path_of(str(metadata["filename"]))),
        md5=str(metadata["md5"]),
        format=WeightsFormat(str(metadata["format"])),
        config=str(metadata["config"]),
    )
