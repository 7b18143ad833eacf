"""Registered torch ops (``torch.ops.inpaint_fused.*``) and their launchers, one module per op family.

Each op takes already validated tensors: the public functions (``inpaint_fused.api``,
``inpaint_fused.masks`` and the adapters) own validation and defaults. ``launch`` holds the host
arithmetic every family shares.
"""

from . import (
    composite_masked,
    expand_mask,
    feather_mask,
    inpaint_conditioning,
    prepare_diffusers_inpaint,
    prepare_inpaint,
    random_masks,
    threshold_mask,
)
from .prepare_inpaint import modify, prepare, sanitize_mask

__all__ = [
    "composite_masked",
    "expand_mask",
    "feather_mask",
    "inpaint_conditioning",
    "modify",
    "prepare",
    "prepare_diffusers_inpaint",
    "prepare_inpaint",
    "random_masks",
    "sanitize_mask",
    "threshold_mask",
]
