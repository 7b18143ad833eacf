"""Pure-torch reference of the systems inpaint-fused replaces.

Each function repeats the original node's tensor operations one for one (see docs/contract.md), so that it
can serve as the test oracle, the benchmark baseline and the no-GPU fallback. Differences from the
original code are limited to what makes it run anywhere: the convolution kernel is created on the
mask's device and in its dtype (the original makes a CPU float32 one), the downscale ratio is an int
argument instead of a VAE attribute, and the VAE is any ``encode`` callable. This module is never
edited to agree with a kernel.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "vae_encode_for_inpaint",
    "was_vae_encode_for_inpaint",
    "was_modify_mask",
    "grow_mask",
    "vae_encode_crop_pixels",
    "vae_input",
    "vae_encode",
    "vae_encode_batched",
    "grow_mask_node",
]


def _resize_mask(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return F.interpolate(mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1])), size=(height, width), mode="bilinear")


def _crop(pixels: torch.Tensor, mask: torch.Tensor, ratio: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    x = pixels.shape[1] // ratio * ratio
    y = pixels.shape[2] // ratio * ratio
    if pixels.shape[1] != x or pixels.shape[2] != y:
        x_offset = pixels.shape[1] % ratio // 2
        y_offset = pixels.shape[2] % ratio // 2
        pixels = pixels[:, x_offset : x + x_offset, y_offset : y + y_offset, :]
        mask = mask[:, :, x_offset : x + x_offset, y_offset : y + y_offset]
    return pixels, mask, x, y


def _gray_fill_(pixels: torch.Tensor, fill_mask: torch.Tensor) -> None:
    m = (1.0 - fill_mask.round()).squeeze(1)
    for i in range(3):
        pixels[:, :, :, i] -= 0.5
        pixels[:, :, :, i] *= m
        pixels[:, :, :, i] += 0.5


def grow_mask(mask: torch.Tensor, grow_mask_by: int) -> torch.Tensor:
    """ComfyUI's growth step on a ``(B, 1, x, y)`` mask: round, ``g x g`` box conv, clamp.

    ``grow_mask_by == 0`` returns the mask unchanged (unrounded), as the original does. The result is
    not yet cut to ``[:x, :y]``; for even ``g`` it is one row and column larger.
    """
    if grow_mask_by == 0:
        return mask
    kernel_tensor = torch.ones((1, 1, grow_mask_by, grow_mask_by), device=mask.device, dtype=mask.dtype)
    padding = math.ceil((grow_mask_by - 1) / 2)
    return torch.clamp(F.conv2d(mask.round(), kernel_tensor, padding=padding), 0, 1)


def vae_encode_for_inpaint(
    pixels: torch.Tensor, mask: torch.Tensor, grow_mask_by: int = 6, downscale_ratio: int = 8
) -> tuple[torch.Tensor, torch.Tensor]:
    """ComfyUI core ``VAEEncodeForInpaint.encode`` up to (not including) ``vae.encode``.

    Shape:
        pixels ``(B, H, W, C)``, mask ``(Bm, h, w)`` / ``(h, w)`` / ``(Bm, 1, h, w)``.
        Returns the gray-filled, cropped pixels ``(B, x, y, C)`` that the original hands to
        ``vae.encode`` and the noise mask ``(Bm, 1, x, y)``.
    """
    ratio = downscale_ratio
    mask = _resize_mask(mask, pixels.shape[1], pixels.shape[2])
    pixels = pixels.clone()
    pixels, mask, x, y = _crop(pixels, mask, ratio)
    mask_erosion = grow_mask(mask, grow_mask_by)
    _gray_fill_(pixels, mask)
    return pixels, mask_erosion[:, :, :x, :y].round()


def was_modify_mask(mask: torch.Tensor, modify_by: int) -> torch.Tensor:
    """WAS ``modify_mask``: symmetric box dilation (``> 0``) or erosion (``< 0``) of the rounded mask."""
    if modify_by == 0:
        return mask
    kernel_size = 2 * abs(modify_by) + 1
    kernel_tensor = torch.ones((1, 1, kernel_size, kernel_size), device=mask.device, dtype=mask.dtype)
    padding = abs(modify_by)
    if modify_by > 0:
        return torch.clamp(F.conv2d(mask.round(), kernel_tensor, padding=padding), 0, 1)
    eroded_mask = F.conv2d(1 - mask.round(), kernel_tensor, padding=padding)
    return torch.clamp(1 - eroded_mask, 0, 1)


def was_vae_encode_for_inpaint(
    pixels: torch.Tensor, mask: torch.Tensor, mask_offset: int = 6, downscale_ratio: int = 8
) -> tuple[torch.Tensor, torch.Tensor]:
    """WAS ``VAEEncodeForInpaint (WAS).encode`` up to ``vae.encode``.

    The original hard-codes ``downscale_ratio = 8``; passing the VAE's ratio is the allowed extension.
    Unlike the core node, the gray fill uses the modified mask.
    """
    ratio = downscale_ratio
    mask = _resize_mask(mask, pixels.shape[1], pixels.shape[2])
    pixels = pixels.clone()
    pixels, mask, x, y = _crop(pixels, mask, ratio)
    mask_erosion = was_modify_mask(mask, mask_offset)
    _gray_fill_(pixels, mask_erosion)
    return pixels, mask_erosion[:, :, :x, :y].round()


def vae_encode_crop_pixels(pixels: torch.Tensor, downscale_ratio: int = 8) -> torch.Tensor:
    """ComfyUI ``VAE.vae_encode_crop_pixels``: centred crop of every spatial dim to a multiple of the ratio."""
    dims = pixels.shape[1:-1]
    for d in range(len(dims)):
        x = (dims[d] // downscale_ratio) * downscale_ratio
        x_offset = (dims[d] % downscale_ratio) // 2
        if x != dims[d]:
            pixels = pixels.narrow(d + 1, x_offset, x)
    return pixels


def vae_input(pixels: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """What a VAE's first layer receives: NHWC ``[0, 1]`` -> NCHW ``2p - 1`` in ``dtype``.

    ComfyUI's ``VAE.encode`` computes ``p * 2.0 - 1.0`` in the pixels' dtype and then casts.
    """
    out = pixels[..., :3].movedim(-1, 1) * 2.0 - 1.0
    return out if dtype is None else out.to(dtype)


def vae_encode(
    encode: Callable[[torch.Tensor], torch.Tensor], pixels: torch.Tensor, downscale_ratio: int = 8
) -> torch.Tensor:
    """ComfyUI ``VAEEncode.encode``: ``vae.encode(pixels[:, :, :, :3])``, which crops first."""
    return encode(vae_encode_crop_pixels(pixels[:, :, :, :3], downscale_ratio))


def vae_encode_batched(
    encode: Callable[[torch.Tensor], torch.Tensor],
    pixels: torch.Tensor,
    per_batch: int = 16,
    downscale_ratio: int = 8,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """VideoHelperSuite ``VAEEncodeBatched.encode``: slices of ``per_batch`` frames, concatenated.

    ``progress(n)`` is called after each slice with ``per_batch``, as the original's ``pbar.update``.
    """
    t = []
    for start_idx in range(0, pixels.shape[0], per_batch):
        sub_pixels = vae_encode_crop_pixels(pixels[start_idx : start_idx + per_batch], downscale_ratio)
        t.append(encode(sub_pixels[:, :, :, :3]))
        if progress is not None:
            progress(per_batch)
    return torch.cat(t, dim=0)


# --- ComfyUI v0.3.64: the rest of the inpainting chain (docs/contract.md) ------------------------------
# comfy_extras/nodes_mask.py (FeatherMask, ThresholdMask, ImageCompositeMasked and its ``composite``
# helper), node_helpers.py (image_alpha_fix, conditioning_set_values), comfy/utils.py
# (repeat_to_batch_size) and nodes.py (InpaintModelConditioning), op for op.


def feather_mask_node(mask: torch.Tensor, left: int, top: int, right: int, bottom: int) -> torch.Tensor:
    """``FeatherMask.feather``: linear ramps in place on a clone, in the order left, right, top, bottom.

    The right/bottom ramps index ``-x`` from ``x = 0``: column/row 0 gets ``1 / right`` and the last
    one ``2 / right`` (the stock node's quirk, kept).
    """
    output = mask.reshape((-1, mask.shape[-2], mask.shape[-1])).clone()

    left = min(left, output.shape[-1])
    right = min(right, output.shape[-1])
    top = min(top, output.shape[-2])
    bottom = min(bottom, output.shape[-2])

    for x in range(left):
        feather_rate = (x + 1.0) / left
        output[:, :, x] *= feather_rate

    for x in range(right):
        feather_rate = (x + 1) / right
        output[:, :, -x] *= feather_rate

    for y in range(top):
        feather_rate = (y + 1) / top
        output[:, y, :] *= feather_rate

    for y in range(bottom):
        feather_rate = (y + 1) / bottom
        output[:, -y, :] *= feather_rate

    return output


def threshold_mask_node(mask: torch.Tensor, value: float) -> torch.Tensor:
    """``ThresholdMask.image_to_mask``: ``(mask > value).float()``."""
    return (mask > value).float()


def repeat_to_batch_size(tensor: torch.Tensor, batch_size: int, dim: int = 0) -> torch.Tensor:
    """``comfy.utils.repeat_to_batch_size``: cut, or repeat then cut, to ``batch_size`` along ``dim``."""
    if tensor.shape[dim] > batch_size:
        return tensor.narrow(dim, 0, batch_size)
    elif tensor.shape[dim] < batch_size:
        return tensor.repeat(
            dim * [1] + [math.ceil(batch_size / tensor.shape[dim])] + [1] * (len(tensor.shape) - 1 - dim)
        ).narrow(dim, 0, batch_size)
    return tensor


def image_alpha_fix(destination: torch.Tensor, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``node_helpers.image_alpha_fix``: the source cut to the destination's channels, or the
    destination padded with one channel of 1.0 when it has more (then only a 1-channel source fits)."""
    if destination.shape[-1] < source.shape[-1]:
        source = source[..., : destination.shape[-1]]
    elif destination.shape[-1] > source.shape[-1]:
        destination = F.pad(destination, (0, 1))
        destination[..., -1] = 1.0
    return destination, source


def composite(
    destination: torch.Tensor,
    source: torch.Tensor,
    x: int,
    y: int,
    mask: torch.Tensor | None = None,
    multiplier: int = 8,
    resize_source: bool = False,
) -> torch.Tensor:
    """``nodes_mask.composite``: blend ``source`` into ``destination`` (NCHW) in place at ``(x, y)``."""
    source = source.to(destination.device)
    if resize_source:
        source = F.interpolate(source, size=(destination.shape[-2], destination.shape[-1]), mode="bilinear")

    source = repeat_to_batch_size(source, destination.shape[0])

    x = max(-source.shape[-1] * multiplier, min(x, destination.shape[-1] * multiplier))
    y = max(-source.shape[-2] * multiplier, min(y, destination.shape[-2] * multiplier))

    left, top = (x // multiplier, y // multiplier)
    right, bottom = (
        left + source.shape[-1],
        top + source.shape[-2],
    )

    if mask is None:
        mask = torch.ones_like(source)
    else:
        mask = mask.to(destination.device, copy=True)
        mask = F.interpolate(
            mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1])),
            size=(source.shape[-2], source.shape[-1]),
            mode="bilinear",
        )
        mask = repeat_to_batch_size(mask, source.shape[0])

    visible_width, visible_height = (
        destination.shape[-1] - left + min(0, x),
        destination.shape[-2] - top + min(0, y),
    )

    mask = mask[:, :, :visible_height, :visible_width]
    if mask.ndim < source.ndim:
        mask = mask.unsqueeze(1)

    inverse_mask = torch.ones_like(mask) - mask

    source_portion = mask * source[..., :visible_height, :visible_width]
    destination_portion = inverse_mask * destination[..., top:bottom, left:right]

    destination[..., top:bottom, left:right] = source_portion + destination_portion
    return destination


def composite_masked_node(
    destination: torch.Tensor,
    source: torch.Tensor,
    x: int,
    y: int,
    resize_source: bool,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``ImageCompositeMasked.composite``: IMAGEs ``(B, H, W, C)``, pixel offsets (``multiplier=1``)."""
    destination, source = image_alpha_fix(destination, source)
    destination = destination.clone().movedim(-1, 1)
    output = composite(destination, source.movedim(-1, 1), x, y, mask, 1, resize_source).movedim(1, -1)
    return output


def inpaint_model_conditioning_prepare(pixels: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``InpaintModelConditioning.encode`` up to its two ``vae.encode`` calls.

    Returns the gray-filled pixels cropped to a multiple of 8 (``(B, x, y, C)``, what the node
    encodes into ``concat_latent_image``) and the resized, cropped, unrounded mask ``(Bm, 1, x, y)``
    (its ``concat_mask`` and ``noise_mask``). The node's second encode takes the original pixels.
    """
    x = (pixels.shape[1] // 8) * 8
    y = (pixels.shape[2] // 8) * 8
    mask = F.interpolate(
        mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1])), size=(pixels.shape[1], pixels.shape[2]), mode="bilinear"
    )

    orig_pixels = pixels
    pixels = orig_pixels.clone()
    if pixels.shape[1] != x or pixels.shape[2] != y:
        x_offset = (pixels.shape[1] % 8) // 2
        y_offset = (pixels.shape[2] % 8) // 2
        pixels = pixels[:, x_offset : x + x_offset, y_offset : y + y_offset, :]
        mask = mask[:, :, x_offset : x + x_offset, y_offset : y + y_offset]

    m = (1.0 - mask.round()).squeeze(1)
    for i in range(3):
        pixels[:, :, :, i] -= 0.5
        pixels[:, :, :, i] *= m
        pixels[:, :, :, i] += 0.5
    return pixels, mask


def conditioning_set_values(conditioning: list, values: dict, append: bool = False) -> list:
    """``node_helpers.conditioning_set_values``: each ``[tensor, dict]`` entry with ``values`` set on a
    shallow copy of its dict (added to an existing value when ``append``)."""
    c = []
    for t in conditioning:
        n = [t[0], t[1].copy()]
        for k in values:
            val = values[k]
            if append:
                old_val = n[1].get(k, None)
                if old_val is not None:
                    val = old_val + val

            n[1][k] = val
        c.append(n)

    return c


__all__ += [
    "feather_mask_node",
    "threshold_mask_node",
    "repeat_to_batch_size",
    "image_alpha_fix",
    "composite",
    "composite_masked_node",
    "inpaint_model_conditioning_prepare",
    "conditioning_set_values",
]


def grow_mask_node(mask: torch.Tensor, expand: int, tapered_corners: bool) -> torch.Tensor:
    """ComfyUI ``GrowMask.expand_mask`` (``comfy_extras/nodes_mask.py``): ``|expand|`` scipy steps per mask.

    Each step is ``grey_dilation`` (``expand > 0``) or ``grey_erosion`` (``< 0``) with a 3x3
    footprint, a cross when ``tapered_corners`` else the full square; scipy's default border mode
    (``reflect``) lets no outside value win. Goes through numpy: the mask must be on the CPU in
    float32 or float64; the result is a CPU ``(B, h, w)`` tensor of that dtype.
    """
    import numpy as np
    import scipy.ndimage

    c = 0 if tapered_corners else 1
    kernel = np.array([[c, 1, c], [1, 1, 1], [c, 1, c]])
    mask = mask.reshape((-1, mask.shape[-2], mask.shape[-1]))
    out = []
    for m in mask:
        output = m.numpy()
        for _ in range(abs(expand)):
            if expand < 0:
                output = scipy.ndimage.grey_erosion(output, footprint=kernel)
            else:
                output = scipy.ndimage.grey_dilation(output, footprint=kernel)
        output = torch.from_numpy(output)
        out.append(output)
    return torch.stack(out, dim=0)
