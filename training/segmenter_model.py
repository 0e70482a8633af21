"""The mark segmenter: a small U-Net that gives, per pixel, the odds of belonging to a watermark.

It runs at reduced resolution (the service resizes the image's longer side to
`runners.detection.segmenter.INPUT_LONG_SIDE`), so it is shallow and narrow: four stride-2
stages down to 1/16 with a dilated block for context, three skip-connected stages back up to
1/2, and a bilinear upsample to the input size. Input: RGB in [0, 1] minus 0.5, sides a multiple
of 16. Output: one logit per pixel.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional


def _block(inputs: int, outputs: int, *, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(
            inputs, outputs, 3, stride=stride, padding=dilation, dilation=dilation, bias=False
        ),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    )


class MarkSegmenter(nn.Module):
    def __init__(self, widths: tuple[int, int, int, int] = (8, 16, 32, 64)) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        self.widths = widths
        self.down1 = nn.Sequential(_block(3, w1, stride=2), _block(w1, w1))  # 1/2
        self.down2 = nn.Sequential(_block(w1, w2, stride=2), _block(w2, w2))  # 1/4
        self.down3 = nn.Sequential(_block(w2, w3, stride=2), _block(w3, w3))  # 1/8
        self.down4 = nn.Sequential(  # 1/16, with a wider view for tiled and large marks
            _block(w3, w4, stride=2), _block(w4, w4, dilation=2), _block(w4, w4, dilation=4)
        )
        self.up3 = _block(w4 + w3, w3)
        self.up2 = _block(w3 + w2, w2)
        self.up1 = _block(w2 + w1, w1)
        self.head = nn.Conv2d(w1, 1, 1)

    def forward(self, image: Tensor) -> Tensor:
        x1 = self.down1(image)
        x2 = self.down2(x1)
        x3 = self.down3(x2)
        x4 = self.down4(x3)
        y = self.up3(torch.cat([_upsample2(x4), x3], dim=1))
        y = self.up2(torch.cat([_upsample2(y), x2], dim=1))
        y = self.up1(torch.cat([_upsample2(y), x1], dim=1))
        return functional.interpolate(
            self.head(y), scale_factor=2.0, mode="bilinear", align_corners=False
        )


def _upsample2(x: Tensor) -> Tensor:
    return functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
