"""inpaint-fused: the preprocessing in front of an inpainting VAE encoder as fused Triton kernels.

>>> import inpaint_fused as ifd
>>> out = ifd.prepare_inpaint(pixels, mask, grow_mask_by=6, vae_dtype=torch.bfloat16)
"""

from . import _version, ops, reference
from ._backend import HAS_TRITON, uses_triton
from .api import InpaintInputs, grow_mask, modify_mask, prepare_inpaint, prepare_inpaint_was
from .vae import (
    EncodedInpaint,
    encode,
    encode_batched,
    encode_for_inpaint,
    encode_for_inpaint_batched,
    encode_for_inpaint_was,
    vae_downscale_ratio,
)

__version__ = _version.version()

__all__ = [
    "EncodedInpaint",
    "HAS_TRITON",
    "InpaintInputs",
    "encode",
    "encode_batched",
    "encode_for_inpaint",
    "encode_for_inpaint_batched",
    "encode_for_inpaint_was",
    "grow_mask",
    "modify_mask",
    "ops",
    "prepare_inpaint",
    "prepare_inpaint_was",
    "reference",
    "uses_triton",
    "vae_downscale_ratio",
]
