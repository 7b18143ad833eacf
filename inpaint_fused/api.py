"""Public API: validation, defaults and dispatch in front of the registered ops."""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from . import ops
from .check import VAE_DTYPES, check_bool, check_image, check_int, mask_batch
from .ops.launch import core_morphology, was_morphology


def _prepare_core(pixels, mask, grow, ratio, vae_dtype):
    return ops.prepare(pixels, mask, core_morphology(grow), ratio, vae_dtype)


def _prepare_was(pixels, mask, offset, ratio, vae_dtype):
    return ops.prepare(pixels, mask, was_morphology(offset), ratio, vae_dtype)


def _grow(mask, grow):
    return ops.modify(mask, core_morphology(grow))


def _modify_was(mask, offset):
    return ops.modify(mask, was_morphology(offset))


class InpaintInputs(NamedTuple):
    """What the inpaint encoders hand on.

    ``pixels``: the gray-filled, centre-cropped image ``(N, x, y, C)`` in the input dtype, or, when
    a ``vae_dtype`` was given, the VAE's input ``(N, 3, x, y)``: NCHW, ``2p - 1``, that dtype.
    ``noise_mask``: ``(Bm, 1, x, y)`` float32 of exact 0/1 (batch of the mask, as the seed).
    """

    pixels: torch.Tensor
    noise_mask: torch.Tensor


def _call(op, implementation, *args):
    """Run an op: eagerly its implementation, traced (torch.compile, export, fake tensors) the registered op.

    A Python custom op's round trip through the dispatcher costs tens of microseconds of host
    time, more than the kernels take for one image; eager calls on plain tensors skip it.
    """
    for a in args:
        if isinstance(a, torch.Tensor) and type(a) is not torch.Tensor:
            return op(*args)
    return op(*args) if torch.compiler.is_compiling() else implementation(*args)


def _check_inputs(
    pixels: object, mask: object, downscale_ratio: object, vae_dtype: object
) -> tuple[torch.Tensor, torch.Tensor]:
    pixels = check_image(pixels)
    batch, height, width, _ = pixels.shape
    ratio = check_int(downscale_ratio, "downscale_ratio", 1)
    if height < ratio or width < ratio:
        raise ValueError(
            f"pixels of {height}x{width} are smaller than downscale_ratio={ratio}: nothing is left after the crop"
        )
    if vae_dtype is not None and vae_dtype not in VAE_DTYPES:
        raise TypeError(f"vae_dtype must be None, torch.float16, torch.bfloat16 or torch.float32, got {vae_dtype}")
    mask = mask_batch(mask, pixels.device)
    if mask.shape[0] not in (1, batch) and batch != 1:
        raise ValueError(
            f"mask batch {mask.shape[0]} does not fit pixels batch {batch}: it must be 1, {batch}, or pixels batch 1"
        )
    return pixels, mask


def prepare_inpaint(
    pixels: torch.Tensor,
    mask: torch.Tensor,
    grow_mask_by: int = 6,
    *,
    downscale_ratio: int = 8,
    vae_dtype: Optional[torch.dtype] = None,
) -> InpaintInputs:
    """ComfyUI "VAE Encode (for Inpainting)" preprocessing in one fused pass.

    The mask is resized to the image (bilinear, ``align_corners=False``), both are centre-cropped to
    a multiple of ``downscale_ratio``, the rounded mask is grown by a ``grow_mask_by`` box
    (asymmetric for even sizes, as ComfyUI) into the noise mask, and the pixels under the rounded,
    ungrown mask are filled with 0.5 gray. Results equal the original node bit for bit.

    Mask policy: a MASK lives in [0, 1]; NaN counts as 0 and values outside are clamped (the original
    would invert pixels under a mask of 2). Runs the Triton kernels on CUDA tensors, and on CPU
    tensors when ``TRITON_INTERPRET=1``; otherwise the pure-torch reference.

    Shape:
        - pixels: ``(B, H, W, C)``, C >= 3, any float dtype and strides.
        - mask: ``(Bm, h, w)``, ``(h, w)`` or ``(Bm, 1, h, w)``, any float dtype, any size, any
          device (moved to the pixels' device). ``Bm`` is 1, ``B``, or anything when ``B == 1``.
        - output ``pixels``: ``(N, x, y, C)`` in the input dtype, or ``(N, 3, x, y)`` in
          ``vae_dtype`` (values ``2p - 1``), with ``N = max(B, Bm)``, ``x = H // r * r``.
        - output ``noise_mask``: ``(Bm, 1, x, y)`` float32, 0 or 1.

    Raises:
        TypeError: a non-tensor or non-float input, a non-int ``grow_mask_by``/``downscale_ratio``,
            a ``vae_dtype`` other than float16/bfloat16/float32.
        ValueError: a wrong rank, fewer than 3 channels, an empty mask or image, a mask batch that
            fits neither rule, ``grow_mask_by < 0``, ``downscale_ratio < 1``, an image smaller
            than the ratio.

    Example:
        >>> import torch, inpaint_fused as ifd
        >>> image, mask = torch.rand(1, 64, 72, 3), torch.zeros(1, 64, 72)
        >>> out = ifd.prepare_inpaint(image, mask, 6, vae_dtype=torch.bfloat16)
        >>> out.pixels.shape, out.noise_mask.shape
        (torch.Size([1, 3, 64, 72]), torch.Size([1, 1, 64, 72]))
    """
    grow = check_int(grow_mask_by, "grow_mask_by", 0)
    pixels, mask = _check_inputs(pixels, mask, downscale_ratio, vae_dtype)
    return InpaintInputs(
        *_call(torch.ops.inpaint_fused.prepare_inpaint, _prepare_core, pixels, mask, grow, downscale_ratio, vae_dtype)
    )


def prepare_inpaint_was(
    pixels: torch.Tensor,
    mask: torch.Tensor,
    mask_offset: int = 6,
    *,
    downscale_ratio: int = 8,
    vae_dtype: Optional[torch.dtype] = None,
) -> InpaintInputs:
    """WAS "Inpainting VAE Encode (WAS)" preprocessing in one fused pass.

    As :func:`prepare_inpaint`, but the rounded mask is dilated (``mask_offset > 0``) or eroded
    (``< 0``) by a symmetric ``2|k| + 1`` box, erosion treating outside the image as masked, and the
    gray fill uses that modified mask. The original hard-codes ``downscale_ratio=8``.

    Shape, mask policy and dispatch: as :func:`prepare_inpaint`.

    Raises:
        TypeError, ValueError: as :func:`prepare_inpaint`; ``mask_offset`` may be any int.

    Example:
        >>> import torch, inpaint_fused as ifd
        >>> out = ifd.prepare_inpaint_was(torch.rand(2, 64, 64, 3), torch.rand(1, 32, 32), -4)
        >>> out.pixels.shape, out.noise_mask.shape
        (torch.Size([2, 64, 64, 3]), torch.Size([1, 1, 64, 64]))
    """
    offset = check_int(mask_offset, "mask_offset")
    pixels, mask = _check_inputs(pixels, mask, downscale_ratio, vae_dtype)
    return InpaintInputs(
        *_call(
            torch.ops.inpaint_fused.prepare_inpaint_was, _prepare_was, pixels, mask, offset, downscale_ratio, vae_dtype
        )
    )


def grow_mask(mask: torch.Tensor, grow_mask_by: int) -> torch.Tensor:
    """ComfyUI's growth alone: round, ``grow_mask_by`` box dilation (asymmetric for even sizes).

    Shape:
        mask ``(B, h, w)``, ``(h, w)`` or ``(B, 1, h, w)`` -> ``(B, h, w)`` float32 0/1.

    Raises:
        TypeError: non-tensor, non-float mask or non-int ``grow_mask_by``.
        ValueError: a wrong rank, an empty mask, ``grow_mask_by < 0``.

    Example:
        >>> import torch, inpaint_fused as ifd
        >>> m = torch.zeros(1, 9, 9); m[0, 4, 4] = 1
        >>> int(ifd.grow_mask(m, 3).sum())
        9
    """
    grow = check_int(grow_mask_by, "grow_mask_by", 0)
    return _call(torch.ops.inpaint_fused.grow_mask, _grow, mask_batch(mask), grow).squeeze(1)


def modify_mask(mask: torch.Tensor, mask_offset: int) -> torch.Tensor:
    """WAS's signed mask modification alone: ``2|k| + 1`` box dilation (k > 0) or erosion (k < 0).

    Erosion treats outside the image as masked, so a region touching the border keeps that edge.

    Shape:
        mask ``(B, h, w)``, ``(h, w)`` or ``(B, 1, h, w)`` -> ``(B, h, w)`` float32 0/1.

    Raises:
        TypeError: non-tensor, non-float mask or non-int ``mask_offset``.
        ValueError: a wrong rank or an empty mask.

    Example:
        >>> import torch, inpaint_fused as ifd
        >>> m = torch.ones(1, 9, 9)
        >>> int(ifd.modify_mask(m, -2).sum())
        81
    """
    offset = check_int(mask_offset, "mask_offset")
    return _call(torch.ops.inpaint_fused.modify_mask, _modify_was, mask_batch(mask), offset).squeeze(1)


MAX_EXPAND = 16384  # ComfyUI's MAX_RESOLUTION, the range of GrowMask's ``expand``


def _expand_mask(mask, expand, tapered_corners):
    return ops.expand_mask.expand_mask(mask, expand, tapered_corners)


def check_expand_mask_args(mask: object, expand: object, tapered_corners: object) -> tuple[torch.Tensor, int, bool]:
    """``expand_mask``'s arguments checked, the mask as ``(B, h, w)``; errors name the argument."""
    expand = check_int(expand, "expand", -MAX_EXPAND, MAX_EXPAND)
    tapered_corners = check_bool(tapered_corners, "tapered_corners")
    return mask_batch(mask), expand, tapered_corners


def expand_mask(mask: torch.Tensor, expand: int, tapered_corners: bool = True) -> torch.Tensor:
    """ComfyUI "GrowMask": grey dilation (``expand > 0``) or erosion (``< 0``) by ``|expand|`` pixels.

    Equals ``|expand|`` steps of scipy's ``grey_dilation``/``grey_erosion`` with a 3x3 cross
    (``tapered_corners``) or square footprint: per pixel, the maximum (minimum) over the diamond
    ``|di| + |dj| <= |expand|`` or the ``(2|expand| + 1)**2`` box, clipped to the image. Values are
    selected, never computed, so any float mask gives the stock node's values exactly, in its own
    dtype, at a cost per pixel that does not depend on ``expand``. NaN propagates: a pixel whose
    window holds a NaN is NaN (scipy's result there depends on its scan order). Runs the Triton
    kernels on CUDA tensors (and CPU tensors under ``TRITON_INTERPRET=1``), torch ops elsewhere.

    Shape:
        - mask: ``(B, h, w)``, ``(h, w)`` or ``(B, 1, h, w)``, float16/bfloat16/float32/float64, any strides.
        - output: ``(B, h, w)``, contiguous, the mask's dtype and device (``(1, h, w)`` for a 2D mask,
          as the stock node).

    Raises:
        TypeError: a non-tensor or non-float ``mask``, a non-int ``expand``, a non-bool ``tapered_corners``.
        ValueError: a ``mask`` of another rank or empty, ``expand`` outside ``[-16384, 16384]``.

    Example:
        >>> import torch, inpaint_fused as ifd
        >>> m = torch.zeros(9, 9); m[4, 4] = 1
        >>> int(ifd.expand_mask(m, 2).sum()), int(ifd.expand_mask(m, 2, tapered_corners=False).sum())
        (13, 25)
    """
    mask, expand, tapered_corners = check_expand_mask_args(mask, expand, tapered_corners)
    return _call(torch.ops.inpaint_fused.expand_mask, _expand_mask, mask, expand, tapered_corners)
