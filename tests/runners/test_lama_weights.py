"""Weights formats: our TorchScript export, LaMa's Lightning checkpoint, format detection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from runners.lama.configs import BIG_LAMA, TINY
from runners.lama.inpainter import LamaInpainter
from runners.lama.network import InpaintingNetwork
from runners.lama.weights import (
    WeightsError,
    WeightsFormat,
    detect_format,
    export_torchscript,
    generator_state_from_checkpoint,
    load_network,
    read_checkpoint,
    read_export_metadata,
)
from tests.runners.conftest import inpainter_on, write_lightning_checkpoint
from tests.runners.images import rectangle_mask, textured_image

CPU = torch.device("cpu")


def _inputs(height: int, width: int, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(height * width)
    image = torch.rand((batch, 3, height, width), generator=generator)
    mask = torch.zeros((batch, 1, height, width))
    mask[..., height // 4 : height // 2, width // 3 : width // 2] = 1
    return image, mask


def test_formats_are_told_apart(tiny_torchscript: Path, tiny_checkpoint: Path) -> None:
    assert detect_format(tiny_torchscript) is WeightsFormat.TORCHSCRIPT
    assert detect_format(tiny_checkpoint) is WeightsFormat.LIGHTNING_CHECKPOINT


def test_export_then_load_gives_the_same_output_at_other_sizes(
    tiny_network: InpaintingNetwork, tiny_torchscript: Path
) -> None:
    loaded = load_network(tiny_torchscript, TINY, CPU)
    assert isinstance(loaded, torch.jit.ScriptModule)
    # Traced at one size; must hold at others, batched, and at the smallest (16).
    for height, width, batch in [(64, 64, 1), (120, 200, 2), (16, 24, 1)]:
        image, mask = _inputs(height, width, batch)
        with torch.inference_mode():
            assert torch.allclose(loaded(image, mask), tiny_network(image, mask), atol=1e-6)
    assert read_export_metadata(tiny_torchscript) == {"config": "tiny", "random_seed": 7}


def test_export_follows_iopaints_calling_convention(
    tiny_network: InpaintingNetwork, tiny_torchscript: Path
) -> None:
    # IOPaint's lama.py: torch.jit.load, then model(image, mask) with a float32 image and
    # the int64 mask `(mask > 0) * 1` gives; the blend is inside the scripted module.
    model = torch.jit.load(str(tiny_torchscript), map_location="cpu").eval()
    image, mask = _inputs(48, 72)
    with torch.no_grad():
        out = model(image, mask.long())
    assert out.shape == image.shape and out.dtype == torch.float32
    keep = (mask == 0).expand_as(image)
    assert torch.equal(out[keep], image[keep])
    with torch.inference_mode():
        assert torch.allclose(out, tiny_network(image, mask), atol=1e-6)


def test_inpainter_on_export_matches_inpainter_on_native(
    tiny_network: InpaintingNetwork, tiny_torchscript: Path
) -> None:
    image = textured_image(301, 513, seed=5)
    mask = rectangle_mask(301, 513, 40, 60, 200, 300)
    native = inpainter_on(tiny_network).inpaint(image, mask)
    scripted = LamaInpainter(load_network(tiny_torchscript, TINY, CPU)).inpaint(image, mask)
    assert np.abs(native.astype(int) - scripted).max() <= 1


def test_lightning_checkpoint_loads_strictly_into_the_native_network(
    tiny_network: InpaintingNetwork, tiny_checkpoint: Path
) -> None:
    # The fixture also holds discriminator and loss weights, optimiser state and a
    # hyper-parameter object of a class that does not exist here: all ignored.
    loaded = load_network(tiny_checkpoint, TINY, CPU)
    assert isinstance(loaded, InpaintingNetwork)
    for key, value in tiny_network.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    image, mask = _inputs(40, 56)
    with torch.inference_mode():
        assert torch.equal(loaded(image, mask), tiny_network(image, mask))


def test_checkpoint_objects_of_unknown_classes_are_not_loaded(tiny_checkpoint: Path) -> None:
    with pytest.raises(Exception, match="omegaconf"):  # what torch's own safe loader says
        torch.load(tiny_checkpoint, weights_only=True)
    checkpoint = read_checkpoint(tiny_checkpoint)
    placeholder = checkpoint["hyper_parameters"]["config"]
    assert type(placeholder).__module__ == "runners.lama.weights"


@pytest.mark.parametrize("change", ["missing", "unexpected", "wrong shape"])
def test_a_generator_that_does_not_match_is_refused(
    tmp_path: Path, tiny_network: InpaintingNetwork, change: str
) -> None:
    state = {k.removeprefix("generator."): v for k, v in tiny_network.state_dict().items()}
    if change == "missing":
        del state["model.5.conv1.ffc.convg2g.fu.conv_layer.weight"]
    elif change == "unexpected":
        state["model.5.conv1.ffc.lfu.conv_layer.weight"] = torch.zeros(1)
    else:
        state["model.1.ffc.convl2l.weight"] = torch.zeros(4, 4, 3, 3)
    path = tmp_path / "best.ckpt"
    write_lightning_checkpoint(path, state)
    with pytest.raises(RuntimeError, match="state_dict"):
        load_network(path, TINY, CPU)


def test_tiny_weights_are_refused_by_the_big_lama_architecture(tiny_checkpoint: Path) -> None:
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_network(tiny_checkpoint, BIG_LAMA, CPU)


def test_files_that_are_not_weights_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError, match="not a readable checkpoint"):
        load_network(junk, TINY, CPU)
    no_generator = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(1)}}, no_generator)
    with pytest.raises(WeightsError, match="no `generator"):
        generator_state_from_checkpoint(read_checkpoint(no_generator))


def test_export_writes_atomically(tmp_path: Path, tiny_network: InpaintingNetwork) -> None:
    target = tmp_path / "out" / "lama.pt"
    export_torchscript(tiny_network, target)
    assert [p.name for p in target.parent.iterdir()] == ["lama.pt"]  # no temp file left
    assert read_export_metadata(target) == {"config": "tiny"}
