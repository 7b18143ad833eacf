"""Triton device code of inpaint-fused, installed as ``inpaint_fused._kernels``.

Imports ``triton`` and nothing from the package; launchers live in ``inpaint_fused.ops``. One module
per op family, named as its launcher module in ``inpaint_fused/ops/``; shared device helpers in ``common``.
"""

from .prepare_diffusers_inpaint import _diffusers_grow_rows_kernel, _diffusers_inpaint_kernel
from .prepare_inpaint import _box_rows_kernel, _inpaint_fill_kernel

__all__ = [
    "_box_rows_kernel",
    "_diffusers_grow_rows_kernel",
    "_diffusers_inpaint_kernel",
    "_inpaint_fill_kernel",
]
