"""`LamaInpainter`: the `Inpainter` protocol on top of a LaMa network.

Per request: binarize the mask (non-zero = fill), pad image and mask at the bottom and
right to a multiple of 8 by mirroring (numpy's ``symmetric``, as IOPaint does), run the
network, crop back, round to uint8.

Batches: requests whose padded sizes agree run as one forward (by default on GPU only;
on CPU it is slower than one at a time). Requests of other sizes always run as separate
forwards: padding them to a common size would change their outputs, since the Fourier
branch of every residual block sees the whole (padded) image.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from runners.devices import ComputeReport, Precision
from runners.lama.network import InpaintingNetwork

SIZE_MULTIPLE = 8
"""Three stride-2 downsamplings: each side must divide by 2**3 for the decoder to line up."""
MIN_SIDE = 16
"""The bottleneck's 3x3 convolutions mirror-pad by one pixel, which needs at least two
pixels there: 16 at the input. Smaller images are mirror-padded up to it."""


class LamaInpainter:
    """Runs `network` (native `InpaintingNetwork` or a loaded TorchScript file) on numpy images.

    The inpainter owns `network`: it moves and converts it in place (device, memory
    format). A reduced `precision` is an autocast around the forward: the weights stay
    float32, convolutions run in bf16 or fp16, the Fourier units in float32.
    """

    name = "lama"

    def __init__(
        self,
        network: nn.Module,
        *,
        device: str = "cpu",
        precision: Precision = Precision.FP32,
        channels_last: bool | None = None,
        stack_same_size: bool | None = None,
        compute: ComputeReport | None = None,
    ) -> None:
        if precision.reduced and not isinstance(network, InpaintingNetwork):
            # Autocast reaches a traced graph only through TorchScript's prototype pass,
            # which caches its graph without the dtype (docs/models.md, "Precision").
            raise ValueError(f"{precision} needs the native network; TorchScript runs in fp32")
        self.device = device
        self.precision = precision
        self.compute = compute
        """What health reports about this model's computation (set by the loader)."""
        self._torch_device = torch.device(device)
        network = network.to(self._torch_device).eval()
        if channels_last is None:
            # Faster on CPU with outputs equal to 1e-6 (docs/testing.md, "Measured choices").
            # Not measured on a GPU, so not assumed there.
            channels_last = device == "cpu"
        self._memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            network = network.to(memory_format=torch.channels_last)
        self.network = network
        if stack_same_size is None:
            # On CPU a stacked forward is slower per image than one at a time (docs/testing.md,
            # "Measured choices"); stacking pays where one kernel launch serves the whole
            # batch: the GPU.
            stack_same_size = device != "cpu"
        self._stack_same_size = stack_same_size
        self._compiled = False

    def compile(self, warm_up_sizes: Sequence[tuple[int, int]]) -> None:
        """Replace the network by its `torch.compile` graph for every size (dynamic shapes),
        compiled now by running it at `warm_up_sizes` ((height, width)).

        Afterwards no request compiles: a size the compiled graphs do not cover (a guard
        they specialised on fails) runs the eager network instead.
        """
        eager = self.network
        self.network = torch.compile(eager, dynamic=True)
        self._compiled = True
        try:
            for height, width in warm_up_sizes:
                image = np.zeros((height, width, 3), np.uint8)
                mask = np.zeros((height, width), np.uint8)
                mask[height // 4 : height // 2, width // 4 : width // 2] = 255
                self._forward([image], [mask], compiling=True)
        except BaseException:
            self.network, self._compiled = eager, False
            raise

    def inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.inpaint_batch([image], [mask])[0]

    def inpaint_batch(
        self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        if len(images) != len(masks):
            raise ValueError(f"{len(images)} images but {len(masks)} masks")
        for image, mask in zip(images, masks, strict=True):
            _check_pair(image, mask)
        groups: dict[object, list[int]] = defaultdict(list)
        for index, image in enumerate(images):
            size = padded_size(image.shape[0], image.shape[1])
            groups[size if self._stack_same_size else index].append(index)
        results: dict[int, np.ndarray] = {}
        for indices in groups.values():
            outputs = self._forward([images[i] for i in indices], [masks[i] for i in indices])
            results.update(zip(indices, outputs, strict=True))
        return [results[index] for index in range(len(images))]

    def _forward(
        self, images: list[np.ndarray], masks: list[np.ndarray], *, compiling: bool = False
    ) -> list[np.ndarray]:
        """One network call for same-padded-size requests (`compiling`: the warm-up's)."""
        image_batch = np.stack([pad_to_multiple(image) for image in images])
        mask_batch = np.stack([pad_to_multiple(mask > 0) for mask in masks])
        with torch.inference_mode():
            image_tensor = (
                torch.from_numpy(image_batch)
                .to(self._torch_device)
                .permute(0, 3, 1, 2)
                .float()
                .div_(255)
            )
            mask_tensor = torch.from_numpy(mask_batch).to(self._torch_device)[:, None].float()
            if self._memory_format is torch.channels_last:
                image_tensor = image_tensor.contiguous(memory_format=torch.channels_last)
                mask_tensor = mask_tensor.contiguous(memory_format=torch.channels_last)
            with self._autocast(), self._compile_stance(compiling):
                output = self.network(image_tensor, mask_tensor)
            pixels = output.float().mul_(255).round_().clamp_(0, 255).to(torch.uint8)
            pixels = pixels.permute(0, 2, 3, 1).cpu().numpy()
        return [
            np.ascontiguousarray(pixels[i, : image.shape[0], : image.shape[1]])
            for i, image in enumerate(images)
        ]

    def _compile_stance(self, compiling: bool) -> contextlib.AbstractContextManager[object]:
        if not self._compiled:
            return contextlib.nullcontext()
        return torch.compiler.set_stance("default" if compiling else "eager_on_recompile")

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if not self.precision.reduced:
            return contextlib.nullcontext()
        return torch.autocast(self._torch_device.type, dtype=self.precision.torch_dtype())


def padded_size(height: int, width: int) -> tuple[int, int]:
    """The size the network runs at: the next multiple of 8, and at least 16."""

    def side(length: int) -> int:
        return max(MIN_SIDE, -(-length // SIZE_MULTIPLE) * SIZE_MULTIPLE)

    return side(height), side(width)


def pad_to_multiple(array: np.ndarray) -> np.ndarray:
    """Mirror-pad the bottom and right edges up to `padded_size` (first two axes)."""
    height, width = array.shape[:2]
    target_height, target_width = padded_size(height, width)
    if (target_height, target_width) == (height, width):
        return array
    widths = [(0, target_height - height), (0, target_width - width)]
    widths += [(0, 0)] * (array.ndim - 2)
    return np.pad(array, widths, mode="symmetric")


def _check_pair(image: np.ndarray, mask: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if mask.shape != image.shape[:2] or mask.dtype != np.uint8:
        raise ValueError(f"mask must be (H, W) uint8 matching {image.shape[:2]}, got {mask.shape}")
