"""Fixtures that create LaMa weights (tiny architecture, random init) in every file format."""

from __future__ import annotations

import copy
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from runners.lama.configs import TINY
from runners.lama.inpainter import LamaInpainter
from runners.lama.network import InpaintingNetwork
from runners.lama.weights import export_torchscript, random_network


@pytest.fixture(scope="session")
def tiny_network() -> InpaintingNetwork:
    return random_network(TINY, seed=7)


@pytest.fixture(scope="session")
def tiny_torchscript(
    tmp_path_factory: pytest.TempPathFactory, tiny_network: InpaintingNetwork
) -> Path:
    path = tmp_path_factory.mktemp("weights") / "tiny-lama.pt"
    export_torchscript(tiny_network, path, metadata={"random_seed": 7})
    return path


class _ForeignConfig:
    """Stands for OmegaConf's DictConfig in a Lightning checkpoint: a class we don't have."""

    def __init__(self, values: dict[str, object]) -> None:
        self.values = values


def write_lightning_checkpoint(path: Path, generator_state: dict[str, Tensor]) -> None:
    """A checkpoint shaped like LaMa's best.ckpt: generator, discriminator, loss, hparams.

    The hyper-parameters are an instance of a class from a module that exists only while
    the file is written, as OmegaConf's classes do not exist where our service runs.
    """
    fake_parent = types.ModuleType("omegaconf")
    fake_module = types.ModuleType("omegaconf.dictconfig")
    foreign = type("DictConfig", (_ForeignConfig,), {"__module__": "omegaconf.dictconfig"})
    fake_module.DictConfig = foreign  # type: ignore[attr-defined]
    fake_parent.dictconfig = fake_module  # type: ignore[attr-defined]
    state = {f"generator.{key}": value for key, value in generator_state.items()}
    state["discriminator.model0.0.ffc.convl2l.weight"] = torch.randn(8, 3, 3, 3)
    state["loss_resnet_pl.impl.conv1.weight"] = torch.randn(4, 3, 3, 3)
    checkpoint = {
        "epoch": 40,
        "global_step": 1000,
        "pytorch-lightning_version": "1.2.9",
        "state_dict": state,
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.001}]}],
        "hyper_parameters": {"config": foreign({"generator": {"kind": "ffc_resnet"}})},
    }
    saved = {name: sys.modules.get(name) for name in ("omegaconf", "omegaconf.dictconfig")}
    sys.modules["omegaconf"] = fake_parent
    sys.modules["omegaconf.dictconfig"] = fake_module
    try:
        torch.save(checkpoint, path)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


@pytest.fixture(scope="session")
def tiny_checkpoint(
    tmp_path_factory: pytest.TempPathFactory, tiny_network: InpaintingNetwork
) -> Path:
    path = tmp_path_factory.mktemp("weights") / "best.ckpt"
    generator_state = {
        key.removeprefix("generator."): value for key, value in tiny_network.state_dict().items()
    }
    write_lightning_checkpoint(path, generator_state)
    return path


class CountingNetwork(nn.Module):
    """Wraps a network and counts its forwards (and the batch size of each)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.batch_sizes: list[int] = []

    @property
    def forwards(self) -> int:
        return len(self.batch_sizes)

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        self.batch_sizes.append(image.shape[0])
        return self.inner(image, mask)


@pytest.fixture
def model_store(tmp_path: Path) -> Iterator[Path]:
    """A fresh BentoML model store for this test.

    BentoML resolves its store once per process (from BENTOML_HOME), so the store is
    swapped through BentoML's own dependency container instead of the environment.
    """
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.models import ModelStore

    models = tmp_path / "bentoml" / "models"
    models.mkdir(parents=True)
    with BentoMLContainer.model_store.patch(ModelStore(str(models))):
        yield models


def inpainter_on(network: nn.Module, **options: Any) -> LamaInpainter:
    """A `LamaInpainter` on a copy of `network`.

    The inpainter converts its network in place (memory format, device), and the session
    fixtures must stay as they were for the tests that compare against them.
    """
    return LamaInpainter(copy.deepcopy(network), **options)
