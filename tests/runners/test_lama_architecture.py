"""The generator has LaMa's parameter names and shapes, and the model contract holds."""

from __future__ import annotations

import pytest
import torch

from runners.lama.configs import BIG_LAMA, TINY, get_config
from runners.lama.network import InpaintingNetwork
from runners.lama.weights import random_network

# Shapes of a few tensors of LaMa's big-lama generator, as its FFC-ResNet defines them
# (advimman/lama ffc.py, configs/training/big-lama.yaml): stem, last downsampling (whose
# output is split 128 local / 384 global), a residual block's four paths, the decoder.
BIG_LAMA_SHAPES = {
    "generator.model.1.ffc.convl2l.weight": (64, 4, 7, 7),
    "generator.model.4.ffc.convl2l.weight": (128, 256, 3, 3),
    "generator.model.4.ffc.convl2g.weight": (384, 256, 3, 3),
    "generator.model.4.bn_g.running_var": (384,),
    "generator.model.5.conv1.ffc.convl2l.weight": (128, 128, 3, 3),
    "generator.model.5.conv1.ffc.convg2l.weight": (128, 384, 3, 3),
    "generator.model.5.conv1.ffc.convg2g.conv1.0.weight": (192, 384, 1, 1),
    "generator.model.5.conv1.ffc.convg2g.fu.conv_layer.weight": (384, 384, 1, 1),
    "generator.model.5.conv1.ffc.convg2g.fu.bn.num_batches_tracked": (),
    "generator.model.5.conv1.ffc.convg2g.conv2.weight": (384, 192, 1, 1),
    "generator.model.22.conv2.bn_g.weight": (384,),
    "generator.model.24.weight": (512, 256, 3, 3),
    "generator.model.31.running_mean": (64,),
    "generator.model.34.weight": (3, 64, 7, 7),
    "generator.model.34.bias": (3,),
}


@pytest.fixture(scope="module")
def big_lama_state() -> dict[str, torch.Tensor]:
    return InpaintingNetwork(BIG_LAMA).state_dict()


def test_big_lama_has_the_published_size_and_names(big_lama_state: dict[str, torch.Tensor]) -> None:
    parameters = sum(p.numel() for p in InpaintingNetwork(BIG_LAMA).parameters())
    assert 50_900_000 < parameters < 51_100_000  # "51M" in the paper's big-lama
    for key, shape in BIG_LAMA_SHAPES.items():
        assert tuple(big_lama_state[key].shape) == shape, key
    # 18 residual blocks at 5..22, the merge at 23 (no parameters), the last conv at 34.
    indices = {int(key.split(".")[2]) for key in big_lama_state}
    assert indices == {1, 2, 3, 4, *range(5, 23), 24, 25, 27, 28, 30, 31, 34}
    # Paths that do not exist in LaMa have no parameters here either.
    assert not any(
        ".convg2l." in key or ".convg2g." in key for key in big_lama_state if ".model.4." in key
    )


def test_network_output_is_an_image_and_the_unmasked_input_passes_through() -> None:
    network = random_network(TINY, seed=1)
    image = torch.rand(2, 3, 48, 64)
    mask = torch.zeros(2, 1, 48, 64)
    mask[:, :, 10:30, 20:50] = 1
    with torch.inference_mode():
        out = network(image, mask)
    assert out.shape == image.shape
    assert out.min() >= 0 and out.max() <= 1
    keep = (mask == 0).expand_as(image)
    assert torch.equal(out[keep], image[keep])
    assert not torch.allclose(out[~keep], image[~keep])


def test_masked_pixels_do_not_leak_into_the_prediction() -> None:
    # The network sees the image with the hole zeroed: what is under the mask cannot matter.
    network = random_network(TINY, seed=2)
    image = torch.rand(1, 3, 32, 32)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    other = image.clone()
    other[..., 8:24, 8:24] = torch.rand(1, 3, 16, 16)
    with torch.inference_mode():
        assert torch.allclose(
            network(image, mask), network(other, mask) * mask + image * (1 - mask)
        )


def test_the_global_branch_sees_the_whole_image() -> None:
    # Changing a far-away pixel changes the prediction inside the hole: the reason batches
    # of different sizes are not padded together.
    network = random_network(TINY, seed=3)
    image = torch.rand(1, 3, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 0:8, 0:8] = 1
    far = image.clone()
    far[..., 56:, 56:] = 0
    with torch.inference_mode():
        difference = (network(image, mask) - network(far, mask))[..., 0:8, 0:8].abs().max()
    assert difference > 1e-4


def test_unknown_config_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="big-lama, tiny"):
        get_config("huge-lama")
