"""LaMa generator architectures, as data.

`big-lama` is the configuration of the published checkpoints (`configs/training/big-lama.yaml`
in advimman/lama): every file users have — the original `best.ckpt`, IOPaint's
`big-lama.pt`, the anime/manga fine-tune — has this shape. `tiny` keeps the same topology
with a handful of channels so tests run in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LamaConfig:
    """Shape of an FFC-ResNet generator.

    Channel counts double at each downsampling, starting from `base_channels`, capped at
    `max_channels`. The residual blocks at the bottleneck split their channels into a local
    (spatial convolution) part and a global (Fourier) part; `global_ratio` is the global
    share. The stem and all but the last downsampling are purely local, as in the paper.
    """

    name: str
    input_channels: int = 4  # RGB with the masked pixels zeroed, plus the mask
    output_channels: int = 3
    base_channels: int = 64
    downsamplings: int = 3
    residual_blocks: int = 18
    global_ratio: float = 0.75
    max_channels: int = 1024

    def channels_at(self, level: int) -> int:
        """Feature channels after `level` downsamplings."""
        return min(self.max_channels, self.base_channels * 2**level)


BIG_LAMA = LamaConfig(name="big-lama")
TINY = LamaConfig(name="tiny", base_channels=4, residual_blocks=2)

CONFIGS: dict[str, LamaConfig] = {config.name: config for config in (BIG_LAMA, TINY)}


def get_config(name: str) -> LamaConfig:
    """The configuration called `name`; the error lists the known ones."""
    try:
        return CONFIGS[name]
    except KeyError:
        known = ", ".join(sorted(CONFIGS))
        raise ValueError(f"Unknown LaMa config {name!r}; known: {known}") from None
