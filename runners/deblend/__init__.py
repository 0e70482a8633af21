"""Removing semi-transparent marks by inverting their blend ``I = α·W + (1 − α)·J``.

Model side only: arrays in, arrays out; the HTTP edge maps `DeblendError` to a 4xx.
"""

from runners.deblend.estimation import EstimatedTemplate, estimate_template, estimate_template_at
from runners.deblend.removal import Deblended, remove_blended
from runners.deblend.template import DeblendError, WatermarkTemplate

__all__ = [
    "DeblendError",
    "Deblended",
    "EstimatedTemplate",
    "WatermarkTemplate",
    "estimate_template",
    "estimate_template_at",
    "remove_blended",
]
