"""The LaMa model contract, as one module: image and mask in, blended image out.

This is the calling convention of LaMa's own training module and of the TorchScript files
IOPaint and lama-cleaner ship (`big-lama.pt`), so a network built here, exported, can be
swapped with theirs:

- `image`: ``(N, 3, H, W)`` float RGB in [0, 1];
- `mask`: ``(N, 1, H, W)``, 1 where pixels are to be filled, 0 elsewhere (IOPaint passes
  int64, hence the cast);
- result: ``(N, 3, H, W)`` in [0, 1], the generator's prediction inside the mask and the
  input image outside it.

H and W must be multiples of 8; padding is the caller's job (`runners.lama.inpainter`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from runners.lama.architecture import LamaGenerator
from runners.lama.configs import LamaConfig


class InpaintingNetwork(nn.Module):
    """`LamaGenerator` behind the contract above.

    The generator sits under the attribute `generator`, so this module's state dict keys
    are those of the `generator.` part of LaMa's Lightning checkpoints.
    """

    def __init__(self, config: LamaConfig) -> None:
        super().__init__()
        self.config = config
        self.generator = LamaGenerator(config)

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        mask = mask.to(image.dtype)
        keep = 1 - mask
        predicted = self.generator(torch.cat((image * keep, mask), dim=1))
        return mask * predicted + keep * image
