"""The LaMa generator: a ResNet whose bottleneck convolutions see the whole image.

Fast Fourier convolutions (Chi et al., 2020) split each feature map into a *local* part,
processed by ordinary 3x3 convolutions, and a *global* part, processed in the frequency
domain where one 1x1 convolution mixes information from every pixel. That global
receptive field is what lets LaMa fill large holes with plausible structure.

Attribute names (`model.<i>`, `ffc.convl2l`, `convg2g.fu.conv_layer`, `bn_l`, ...) are those
of the original implementation (advimman/lama, `saicinpainting/training/modules/ffc.py`),
so the published checkpoints load with ``strict=True``. The class names are ours.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from runners.lama.configs import LamaConfig

# A feature map split into its local and global channels; a stage without global channels
# carries None, so no placeholder tensors are allocated.
FeaturePair = tuple[Tensor, Tensor | None]


class FourierUnit(nn.Module):
    """A 1x1 convolution applied to the 2-D spectrum of its input.

    The real and imaginary parts of each channel's spectrum are interleaved as channels
    ``2c`` and ``2c + 1``; the trained weights depend on that order.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_layer = nn.Conv2d(2 * channels, 2 * channels, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(2 * channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        # The unit runs in float32 whatever autocast surrounds it (the runner's reduced
        # precisions are autocasts; the weights stay float32): cuFFT's half precision only
        # takes power-of-two sizes (requests are padded to multiples of 8), and the
        # spectrum, where every pixel adds into the low frequencies, needs a range and a
        # mantissa that bf16 and fp16 lack.
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self._spectral(x.float()).to(x.dtype)

    def _spectral(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        spectrum = torch.fft.rfft2(x, norm="ortho")
        freq_width = spectrum.shape[-1]
        # (B, C, H, W', 2) -> (B, C, 2, H, W') -> (B, 2C, H, W')
        parts = torch.view_as_real(spectrum).permute(0, 1, 4, 2, 3)
        parts = parts.reshape(batch, 2 * channels, height, freq_width)
        parts = self.relu(self.bn(self.conv_layer(parts.to(self.conv_layer.weight.dtype))))
        parts = parts.float().reshape(batch, -1, 2, height, freq_width).permute(0, 1, 3, 4, 2)
        spectrum = torch.complex(parts[..., 0], parts[..., 1])
        return torch.fft.irfft2(spectrum, s=(height, width), norm="ortho")


class SpectralTransform(nn.Module):
    """The global-to-global path: squeeze channels, Fourier unit with a skip, expand."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        hidden = out_channels // 2
        self.downsample = nn.AvgPool2d(kernel_size=2, stride=2) if stride == 2 else nn.Identity()
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, hidden, kernel_size=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
        )
        self.fu = FourierUnit(hidden)
        self.conv2 = nn.Conv2d(hidden, out_channels, kernel_size=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        squeezed = self.conv1(self.downsample(x))
        return self.conv2(squeezed + self.fu(squeezed))


class FourierConv(nn.Module):
    """A convolution over (local, global) feature pairs: four paths between the two parts.

    local->local, local->global and global->local are spatial convolutions with reflect
    padding; global->global is the spectral transform. A path whose input or output part
    has no channels does not exist (its attribute is None, and it has no parameters).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int,
        ratio_in: float,
        ratio_out: float,
        stride: int = 1,
        padding: int = 0,
    ) -> None:
        super().__init__()
        in_global = int(in_channels * ratio_in)
        in_local = in_channels - in_global
        out_global = int(out_channels * ratio_out)
        out_local = out_channels - out_global

        def spatial(source: int, target: int) -> nn.Conv2d | None:
            if source == 0 or target == 0:
                return None
            return nn.Conv2d(
                source,
                target,
                kernel_size,
                stride=stride,
                padding=padding,
                bias=False,
                padding_mode="reflect",
            )

        self.convl2l = spatial(in_local, out_local)
        self.convl2g = spatial(in_local, out_global)
        self.convg2l = spatial(in_global, out_local)
        self.convg2g = (
            SpectralTransform(in_global, out_global, stride) if in_global and out_global else None
        )
        self.has_local_output = out_local > 0
        self.has_global_output = out_global > 0

    def forward(self, x: FeaturePair) -> tuple[Tensor | None, Tensor | None]:
        local, global_ = x
        out_local = _sum_paths(self.convl2l, local, self.convg2l, global_)
        out_global = _sum_paths(self.convl2g, local, self.convg2g, global_)
        return (
            out_local if self.has_local_output else None,
            out_global if self.has_global_output else None,
        )


def _sum_paths(
    from_local: nn.Module | None,
    local: Tensor,
    from_global: nn.Module | None,
    global_: Tensor | None,
) -> Tensor | None:
    """Sum of the paths into one output part; None when no path reaches it."""
    total = from_local(local) if from_local is not None else None
    if from_global is not None and global_ is not None:
        contribution = from_global(global_)
        total = contribution if total is None else total + contribution
    return total


class FourierConvNormAct(nn.Module):
    """`FourierConv` followed by batch norm and activation on each part that exists."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int,
        ratio_in: float,
        ratio_out: float,
        stride: int = 1,
        padding: int = 0,
    ) -> None:
        super().__init__()
        self.ffc = FourierConv(
            in_channels,
            out_channels,
            kernel_size=kernel_size,
            ratio_in=ratio_in,
            ratio_out=ratio_out,
            stride=stride,
            padding=padding,
        )
        out_global = int(out_channels * ratio_out)
        out_local = out_channels - out_global
        self.bn_l = nn.BatchNorm2d(out_local) if out_local else None
        self.bn_g = nn.BatchNorm2d(out_global) if out_global else None
        self.act_l = nn.ReLU(inplace=True)
        self.act_g = nn.ReLU(inplace=True)

    def forward(self, x: FeaturePair) -> FeaturePair:
        local, global_ = self.ffc(x)
        if local is None or self.bn_l is None:
            raise RuntimeError("every LaMa stage has local channels")
        local = self.act_l(self.bn_l(local))
        if global_ is not None and self.bn_g is not None:
            global_ = self.act_g(self.bn_g(global_))
        return local, global_


class FourierResidualBlock(nn.Module):
    """Two 3x3 Fourier convolutions with an identity skip on both parts."""

    def __init__(self, channels: int, global_ratio: float) -> None:
        super().__init__()
        settings = {"kernel_size": 3, "ratio_in": global_ratio, "ratio_out": global_ratio}
        self.conv1 = FourierConvNormAct(channels, channels, padding=1, **settings)
        self.conv2 = FourierConvNormAct(channels, channels, padding=1, **settings)

    def forward(self, x: FeaturePair) -> FeaturePair:
        local, global_ = self.conv2(self.conv1(x))
        skip_local, skip_global = x
        if global_ is None or skip_global is None:
            return skip_local + local, global_
        return skip_local + local, skip_global + global_


class MergeParts(nn.Module):
    """Concatenates the local and global parts back into one feature map."""

    def forward(self, x: FeaturePair) -> Tensor:
        local, global_ = x
        return local if global_ is None else torch.cat((local, global_), dim=1)


class LamaGenerator(nn.Module):
    """FFC-ResNet: 7x7 stem, strided downsamplings, Fourier residual blocks, transposed-conv
    upsamplings, 7x7 head with a sigmoid.

    Input: ``(N, 4, H, W)`` — RGB in [0, 1] with the hole zeroed, then the mask; H and W
    multiples of ``2 ** downsamplings``. Output: ``(N, 3, H, W)`` RGB in [0, 1].
    """

    def __init__(self, config: LamaConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            FourierConvNormAct(
                config.input_channels,
                config.base_channels,
                kernel_size=7,
                ratio_in=0.0,
                ratio_out=0.0,
            ),
        ]
        for level in range(config.downsamplings):
            last = level == config.downsamplings - 1
            # The last downsampling produces the global part the residual blocks start from.
            layers.append(
                FourierConvNormAct(
                    config.channels_at(level),
                    config.channels_at(level + 1),
                    kernel_size=3,
                    stride=2,
                    padding=1,
                    ratio_in=0.0,
                    ratio_out=config.global_ratio if last else 0.0,
                )
            )
        bottleneck = config.channels_at(config.downsamplings)
        layers += [
            FourierResidualBlock(bottleneck, config.global_ratio)
            for _ in range(config.residual_blocks)
        ]
        self._merge_index = len(layers)
        layers.append(MergeParts())
        for level in range(config.downsamplings, 0, -1):
            channels_out = config.channels_at(level - 1)
            layers += [
                nn.ConvTranspose2d(
                    config.channels_at(level),
                    channels_out,
                    kernel_size=3,
                    stride=2,
                    padding=1,
                    output_padding=1,
                ),
                nn.BatchNorm2d(channels_out),
                nn.ReLU(inplace=True),
            ]
        layers += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(config.base_channels, config.output_channels, kernel_size=7),
            nn.Sigmoid(),
        ]
        # One flat Sequential so that parameter names are `model.<index>.…` as in the checkpoints.
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        padded = self.model[0](x)
        pair: FeaturePair = (padded, None)
        for stage in self.model[1 : self._merge_index]:
            pair = stage(pair)
        merged = self.model[self._merge_index](pair)
        for layer in self.model[self._merge_index + 1 :]:
            merged = layer(merged)
        return merged
