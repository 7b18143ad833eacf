"""Triton device code of inpaint-fused, installed as ``inpaint_fused._kernels``.

Imports ``triton`` and nothing from the package; launchers live in ``inpaint_fused.ops``. One file
per op family, named after its op.
"""

from .composite_masked import _composite_masked_kernel
from .expand_mask import _diamond_taps_kernel, _running_max_kernel
from .feather_mask import _feather_mask_kernel
from .prepare_diffusers_inpaint import _diffusers_grow_rows_kernel, _diffusers_inpaint_kernel
from .prepare_inpaint import _box_rows_kernel, _inpaint_fill_kernel
from .random_masks import _mask_params_kernel, _random_masks_kernel
from .threshold_mask import _threshold_mask_kernel

__all__ = [
    "_box_rows_kernel",
    "_composite_masked_kernel",
    "_diamond_taps_kernel",
    "_diffusers_grow_rows_kernel",
    "_diffusers_inpaint_kernel",
    "_feather_mask_kernel",
    "_inpaint_fill_kernel",
    "_mask_params_kernel",
    "_random_masks_kernel",
    "_running_max_kernel",
    "_threshold_mask_kernel",
]
