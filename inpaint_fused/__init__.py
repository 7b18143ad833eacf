"""inpaint-fused: the preprocessing in front of an inpainting VAE encoder as fused Triton kernels.

>>> import inpaint_fused as ifd
>>> out = ifd.prepare_inpaint(pixels, mask, grow_mask_by=6, vae_dtype=torch.bfloat16)
"""

from . import ops, reference
from ._backend import HAS_TRITON, uses_triton
from .api import InpaintInputs, grow_mask, modify_mask, prepare_inpaint, prepare_inpaint_was

__version__ = "0.1.0"

__all__ = [
    "HAS_TRITON",
    "InpaintInputs",
    "grow_mask",
    "modify_mask",
    "ops",
    "prepare_inpaint",
    "prepare_inpaint_was",
    "reference",
    "uses_triton",
]
