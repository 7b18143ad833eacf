"""Registered torch ops (``torch.ops.inpaint_fused.*``) and their launchers, one module per op family.

Each op takes already validated tensors: the public functions (``inpaint_fused.api`` and the
adapters) own validation and defaults. ``launch`` holds the host arithmetic every family shares.
"""

from . import prepare_inpaint
from .prepare_inpaint import modify, prepare, sanitize_mask

__all__ = ["modify", "prepare", "prepare_inpaint", "sanitize_mask"]

from . import composite_masked, feather_mask, inpaint_conditioning, threshold_mask  # noqa: E402

__all__ += ["composite_masked", "feather_mask", "inpaint_conditioning", "threshold_mask"]
