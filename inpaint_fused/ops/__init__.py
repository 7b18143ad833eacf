"""Registered torch ops (``torch.ops.inpaint_fused.*``) and their launchers, one module per op family.

Each op takes already validated tensors: the public functions (``inpaint_fused.api`` and the
adapters) own validation and defaults. ``launch`` holds the host arithmetic every family shares.
"""

from . import expand_mask, prepare_inpaint
from .prepare_inpaint import modify, prepare, sanitize_mask

__all__ = ["expand_mask", "modify", "prepare", "prepare_inpaint", "sanitize_mask"]
