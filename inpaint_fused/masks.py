"""Public API of the rest of ComfyUI's inpainting chain: feather, threshold, composite, conditioning.

Validation, defaults and dispatch in front of the registered ops (``inpaint_fused.ops``): each
function gives the stock ComfyUI v0.3.64 node's result bit for bit, through Triton kernels on CUDA
tensors (and on CPU tensors under ``TRITON_INTERPRET=1``) and pure torch elsewhere, on the device
of its inputs.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from . import ops
from .api import _call
from .check import VAE_DTYPES, check_image, check_int, check_number, mask_planes

__all__ = [
    "InpaintConditioningInputs",
    "composite_masked",
    "feather_mask",
    "prepare_inpaint_conditioning",
    "threshold_mask",
]


def feather_mask(mask: torch.Tensor, left: int = 0, top: int = 0, right: int = 0, bottom: int = 0) -> torch.Tensor:
    """ComfyUI "FeatherMask": linear ramps towards each edge, as the stock node computes them.

    Columns ``x < left`` are scaled by ``(x + 1) / left``; the right ramp scales column ``-x`` by
    ``(x + 1) / right`` for ``x < right``, where ``-0`` is column 0 (the stock quirk: column 0 gets
    ``1 / right``, the last column ``2 / right``); rows likewise with ``top``/``bottom``. Widths
    larger than the mask are clamped to it. The products round in the stock order (left, right,
    top, bottom), each factor a double quotient rounded to float32 (kept double for float64 masks).

    Shape:
        mask ``(h, w)``, ``(B, h, w)`` or ``(B, 1, h, w)`` -> ``(N, h, w)`` (``N`` the product of the
        leading dims), the mask's dtype and device.

    Raises:
        TypeError: a non-tensor or non-float mask, a non-int width.
        ValueError: a mask of rank < 2 or empty, a negative width.

    Example:
        >>> import torch, inpaint_fused as ifd
        >>> ifd.feather_mask(torch.ones(1, 2, 4), left=2)[0, 0].tolist()
        [0.5, 1.0, 1.0, 1.0]
    """
    mask = mask_planes(mask)
    h, w = mask.shape[-2:]
    widths = [check_int(v, name, 0) for v, name in ((left, "left"), (top, "top"), (right, "right"), (bottom, "bottom"))]
    left, top, right, bottom = min(widths[0], w), min(widths[1], h), min(widths[2], w), min(widths[3], h)
    return _call(torch.ops.inpaint_fused.feather_mask, ops.feather_mask.feather, mask, left, top, right, bottom)


def threshold_mask(mask: torch.Tensor, value: float = 0.5) -> torch.Tensor:
    """ComfyUI "ThresholdMask": ``(mask > value).float()``, ``value`` compared in the mask's dtype.

    Shape:
        mask of rank >= 2 (``(h, w)``, ``(B, h, w)``, ...) -> the same shape, float32 0/1, same device.

    Raises:
        TypeError: a non-tensor or non-float mask, a non-number ``value``.
        ValueError: a mask of rank < 2 or empty, ``value`` outside [0, 1] (the node's range).

    Example:
        >>> import torch, inpaint_fused as ifd
        >>> ifd.threshold_mask(torch.tensor([[0.2, 0.5, 0.7]]), 0.5).tolist()
        [[0.0, 0.0, 1.0]]
    """
    planes = mask_planes(mask)
    value = check_number(value, "value", 0.0, 1.0)
    out = _call(torch.ops.inpaint_fused.threshold_mask, ops.threshold_mask.threshold, planes, value)
    return out if planes is mask else out.reshape(mask.shape)


def composite_masked(
    destination: torch.Tensor,
    source: torch.Tensor,
    x: int,
    y: int,
    resize_source: bool = False,
    mask: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """ComfyUI "ImageCompositeMasked": ``source`` blended into ``destination`` at pixel ``(x, y)``.

    As the stock node: alpha fix (a source with more channels is cut; a destination with more gets
    one more channel of 1.0, which only a 1-channel source fits), source moved to the destination's
    device, bilinear-resized to it when ``resize_source``, repeated/cut to its batch; the mask
    (default all ones) bilinear-resized to the source and repeated to the batch; the window clipped
    to the destination; ``mask * source + (1 - mask) * destination`` there, the rest copied.

    Shape:
        - destination: IMAGE ``(B, H, W, C)``; source: IMAGE ``(Bs, Hs, Ws, Cs)``, any batch.
        - mask: ``(h, w)``, ``(Bm, h, w)`` or ``(Bm, 1, h, w)``, any size and batch, or ``None``.
        - output: ``(B, H, W, C')`` (``C' = C + 1`` when ``C > Cs``), the destination's dtype and device.

    Raises:
        TypeError: non-tensor or non-float inputs, non-int offsets, a non-bool ``resize_source``.
        ValueError: wrong ranks, empty inputs, negative offsets, a source whose channels fit neither
            rule of the alpha fix (``Cs`` not 1 while ``C > Cs``).

    Example:
        >>> import torch, inpaint_fused as ifd
        >>> out = ifd.composite_masked(torch.zeros(1, 4, 4, 3), torch.ones(1, 2, 2, 3), 3, 1)
        >>> out[0, :, :, 0].sum().item()
        2.0
    """
    destination = check_image(destination, "destination", min_channels=1)
    source = check_image(source, "source", min_channels=1)
    x, y = check_int(x, "x", 0), check_int(y, "y", 0)
    if not isinstance(resize_source, bool):
        raise TypeError(f"resize_source must be a bool, got {type(resize_source).__name__}")
    channels, source_channels = destination.shape[-1], source.shape[-1]
    if channels > source_channels != 1:
        raise ValueError(
            f"source has {source_channels} channels and destination {channels}: ComfyUI pads the destination "
            "with an alpha channel of 1.0, which only a 1-channel source can be blended with"
        )
    if mask is not None:
        mask = mask_planes(mask)
    return _call(
        torch.ops.inpaint_fused.composite_masked, ops.composite_masked.composite,
        destination, source, x, y, resize_source, mask,
    )  # fmt: skip


class InpaintConditioningInputs(NamedTuple):
    """What ``InpaintModelConditioning`` encodes and attaches.

    ``pixels``: the gray-filled image cropped to a multiple of 8, ``(B, x, y, C)`` in the pixel
    dtype, or with a ``vae_dtype`` the VAE's input ``(B, 3, x, y)`` (NCHW, ``2p - 1``), on the
    pixels' device. ``mask``: the resized, cropped, unrounded mask ``(Bm, 1, x, y)`` in the mask's
    dtype on the mask's device (``concat_mask`` and the LATENT's ``noise_mask``).
    """

    pixels: torch.Tensor
    mask: torch.Tensor


def prepare_inpaint_conditioning(
    pixels: torch.Tensor, mask: torch.Tensor, vae_dtype: Optional[torch.dtype] = None
) -> InpaintConditioningInputs:
    """ComfyUI "InpaintModelConditioning" up to its two ``vae.encode`` calls, in one fused pass.

    The mask is bilinear-resized to the image (the stock ``F.interpolate`` call, on the mask's
    device), both are centre-cropped to multiples of 8 (hard-coded in the node), and the pixels
    under the rounded mask are filled with 0.5 gray on channels 0..2 exactly as the node's in-place
    ops; with ``vae_dtype`` the fill is written straight into the VAE's input. The node's second
    encode takes the original, uncropped pixels. Pixels and mask may live on different devices:
    the fill runs on the pixels' device, the mask output stays on the mask's.

    Shape:
        - pixels: IMAGE ``(B, H, W, C)``, ``C >= 3``, ``H, W >= 8``.
        - mask: ``(h, w)``, ``(Bm, h, w)`` or ``(Bm, 1, h, w)``, any size, ``Bm`` 1 or ``B``.
        - output: see :class:`InpaintConditioningInputs`; ``x = H // 8 * 8``, ``y = W // 8 * 8``.

    Raises:
        TypeError: non-tensor or non-float inputs, a ``vae_dtype`` other than float16/bfloat16/float32.
        ValueError: wrong ranks, fewer than 3 channels, an image under 8 x 8, a mask batch other
            than 1 or ``B``, mask values outside [0, 1] or NaN (the stock fill would invert pixels
            under a mask of 2; checked with one reduction, a synchronisation on a GPU).

    Example:
        >>> import torch, inpaint_fused as ifd
        >>> out = ifd.prepare_inpaint_conditioning(torch.rand(2, 37, 50, 3), torch.rand(1, 20, 20))
        >>> out.pixels.shape, out.mask.shape
        (torch.Size([2, 32, 48, 3]), torch.Size([1, 1, 32, 48]))
    """
    pixels = check_image(pixels)
    batch, height, width, channels = pixels.shape
    if channels < 3:
        raise ValueError(f"pixels must have at least 3 channels (B, H, W, C), got C={channels}")
    if height < 8 or width < 8:
        raise ValueError(f"pixels of {height}x{width} are smaller than 8x8: nothing is left after the crop")
    if vae_dtype is not None and vae_dtype not in VAE_DTYPES:
        raise TypeError(f"vae_dtype must be None, torch.float16, torch.bfloat16 or torch.float32, got {vae_dtype}")
    mask = mask_planes(mask)  # its values are checked inside the op: data, not metadata (torch.compile)
    if mask.shape[0] not in (1, batch):
        raise ValueError(f"mask batch {mask.shape[0]} does not fit pixels batch {batch}: it must be 1 or {batch}")
    return InpaintConditioningInputs(
        *_call(
            torch.ops.inpaint_fused.inpaint_conditioning, ops.inpaint_conditioning.conditioning, pixels, mask, vae_dtype
        )
    )
