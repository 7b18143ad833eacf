"""The pure-torch path: every op the kernels run, on any torch device, bit for bit the original code's results.

Where Triton does not run (a CPU-only machine, ComfyUI ``--cpu``, MPS, Intel GPUs) the ops come
here. The original code grows the mask with a ``g x g`` convolution, ``g**2`` multiply-adds per pixel;
this path gives the same 0/1 results at a cost per pixel that does not depend on the radius.

Method. The rounded mask is a 0/1 picture, so a box dilation only asks whether the window holds a
set pixel. The box is separable: a row pass, then a column pass on its result. Each pass takes the
int32 prefix sums ``S`` of the bits along its dimension (``torch.cumsum``, ``S[0] = 0``) and sets
pixel ``j`` when ``S[min(j + after + 1, n)] > S[max(j - before, 0)]``: the window
``[j - before, j + after]`` clipped to the image, outside counting as unset (the convolution's zero
padding). Erosion (WAS, ``k < 0``) is the dilation of the unmasked pixels, inverted, which makes
outside count as masked as in the original. Windows reaching past the image
are clipped to it (as ``launch.clip_window`` does for the kernels), so ``grow_mask_by=10**9`` costs
what 64 does. The comparisons run on three slices per pass (clipped lead, middle, clipped tail): no
index tensors, no padding.

Exactness. ``torch.round`` on a mask in [0, 1] (the mask policy clamps it; bilinear weights keep
it there, to within an ulp) is ``mask > 0.5``: half to even sends 0.5 to 0. The resize is the
seed's own ``F.interpolate`` call on the same tensor; at equal sizes it is skipped, being the
identity there (source index = destination index, weights exactly 1 and 0). The gray fill
``(p - 0.5) * (1 - round(m)) + 0.5`` runs op by op in the pixel dtype, each op rounding as the
seed's in-place ops do (a product with 0 or 1 is exact in any dtype, so the keep-mask may be a
bool); NaN and infinite pixels under the mask give NaN, as in the original. The VAE input continues
with ``* 2 - 1`` in the pixel dtype, then one cast to the VAE dtype, written straight into NCHW.

Memory, for ``Bm`` masks of ``x * y`` after the crop (beyond the outputs and the mask policy's
copy): a growth holds at once the bits (1 byte per pixel), one pass's prefix sums (4 bytes) and
its result (1 byte): 6 bytes per mask pixel at the peak, about 8 with the column pass's transposed
copies. A resize adds the resized mask (mask dtype). The gray fill adds one buffer of one channel
(pixel dtype) for the VAE input when the VAE dtype differs from the pixels'. Nothing else is full
size. Every op is an ordinary torch op that exists on CUDA, CPU and MPS and runs on torch's
intra-op threads (``torch.get_num_threads()``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch
import torch.nn.functional as F

from .launch import crop_geometry

if TYPE_CHECKING:
    from .prepare_inpaint import Morphology

__all__ = ["box_any", "modify_bits", "prepare", "modify", "prepare_diffusers"]


def _window_any_rows(bits: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """Along the last dim of a bool tensor: is any bit set in ``[j - before, j + after]`` (clipped)?"""
    n = bits.shape[-1]
    prefix = bits.new_empty((*bits.shape[:-1], n + 1), dtype=torch.int32)
    prefix[..., 0] = 0
    # A bool cumsum converts element by element; uint8 (same bytes) takes the fast integer path.
    torch.cumsum(bits.view(torch.uint8), -1, dtype=torch.int32, out=prefix[..., 1:])
    out = torch.empty_like(bits)
    lead_end = min(before, n)  # j < before: the window starts at 0, where the prefix is 0
    tail_start = max(n - after - 1, 0)  # j + after + 1 >= n: the window ends at the last pixel
    edges = sorted({0, lead_end, min(tail_start, n), n})
    for start, end in zip(edges[:-1], edges[1:], strict=True):
        hi = prefix[..., n:] if start >= tail_start else prefix[..., start + after + 1 : end + after + 1]
        lo = prefix[..., :1] if start < lead_end else prefix[..., start - before : end - before]
        target = out[..., start:end]
        torch.gt(hi.expand_as(target), lo.expand_as(target), out=target)
    return out


def box_any(bits: torch.Tensor, win: int, before: int) -> torch.Tensor:
    """Box dilation of a bool ``(..., x, y)`` tensor: a window of ``win`` rows and columns starting
    ``before`` above/left of each pixel, outside the image unset.

    A window reaching past the image is clipped to it, so any size costs the same. Row pass on the
    last dim, then the column pass on a transposed copy (a cumsum along a strided dim runs several
    times slower than transposing twice).
    """
    after = win - 1 - before
    rows = _window_any_rows(bits, before, after)
    cols = _window_any_rows(rows.transpose(-1, -2).contiguous(), before, after)
    return cols.transpose(-1, -2).contiguous()


def modify_bits(bits: torch.Tensor, morph: Morphology) -> torch.Tensor:
    """Growth (``morph.invert`` False) or erosion of the rounded mask ``bits`` ``(..., x, y)``.

    A window of one pixel is the identity: ComfyUI's ``g`` of 0 and 1, WAS's 0.
    """
    if morph.win <= 1:
        return bits
    if morph.invert:
        return ~box_any(~bits, morph.win, morph.before)
    return box_any(bits, morph.win, morph.before)


def _gray_fill(pixels: torch.Tensor, keep: torch.Tensor, n_out: int, vae_dtype: Optional[torch.dtype]) -> torch.Tensor:
    """``(p - 0.5) * keep + 0.5`` on channels 0-2, op by op in the pixel dtype, as the original's in-place ops.

    ``pixels`` ``(B, x, y, C)`` cropped, ``keep`` ``(Bm, x, y)`` bool (``1 - round(mask)``). Returns
    ``(n_out, x, y, C)`` in the pixel dtype, or with ``vae_dtype`` the VAE input ``(n_out, 3, x, y)``:
    ``* 2 - 1`` in the pixel dtype, then cast.
    """
    _, x, y, channels = pixels.shape
    pixels = pixels.expand(n_out, -1, -1, -1)
    if vae_dtype is None:
        out = torch.empty((n_out, x, y, channels), dtype=pixels.dtype, device=pixels.device)
        rgb = out[..., :3]
        torch.sub(pixels[..., :3], 0.5, out=rgb)
        rgb.mul_(keep.unsqueeze(-1))
        rgb.add_(0.5)
        if channels > 3:
            out[..., 3:] = pixels[..., 3:]
        return out
    out = torch.empty((n_out, 3, x, y), dtype=vae_dtype, device=pixels.device)
    direct = vae_dtype == pixels.dtype
    buffer = None if direct else torch.empty((n_out, x, y), dtype=pixels.dtype, device=pixels.device)
    for c in range(3):
        channel = out[:, c] if direct else buffer
        torch.sub(pixels[..., c], 0.5, out=channel)
        channel.mul_(keep)
        channel.add_(0.5)
        channel.mul_(2.0)
        channel.sub_(1.0)
        if not direct:
            out[:, c].copy_(channel)
    return out


def prepare(
    pixels: torch.Tensor, mask: torch.Tensor, morph: Morphology, ratio: int, vae_dtype: Optional[torch.dtype]
) -> tuple[torch.Tensor, torch.Tensor]:
    """ComfyUI core (``morph.fill_from_grown`` False) or WAS preprocessing, as the original computes it.

    Shape:
        pixels ``(B, H, W, C)``; mask ``(Bm, h, w)`` with values in [0, 1] (the mask policy applied);
        ``Bm`` is 1, ``B``, or anything when ``B == 1``. Returns the gray-filled pixels
        ``(N, x, y, C)`` (or the VAE input ``(N, 3, x, y)`` in ``vae_dtype``), ``N = max(B, Bm)``,
        and the noise mask ``(Bm, 1, x, y)`` float32 0/1.
    """
    n_pix, height, width, _ = pixels.shape
    x, y, off_h, off_w = crop_geometry(height, width, ratio)
    if tuple(mask.shape[-2:]) != (height, width):
        mask = F.interpolate(mask.reshape((-1, 1, *mask.shape[-2:])), size=(height, width), mode="bilinear")[:, 0]
    bits = mask[:, off_h : off_h + x, off_w : off_w + y] > 0.5
    grown = modify_bits(bits, morph)
    keep = ~(grown if morph.fill_from_grown else bits)
    out = _gray_fill(pixels[:, off_h : off_h + x, off_w : off_w + y], keep, max(n_pix, mask.shape[0]), vae_dtype)
    return out, grown.unsqueeze(1).to(torch.float32)


def modify(mask: torch.Tensor, morph: Morphology) -> torch.Tensor:
    """ComfyUI growth or WAS modification of a ``(Bm, h, w)`` mask in [0, 1] at its own size:
    ``(Bm, 1, h, w)`` float32 0/1."""
    return modify_bits(mask > 0.5, morph).unsqueeze(1).to(torch.float32)


def _binarize(mask: torch.Tensor) -> torch.Tensor:
    """``VaeImageProcessor.binarize``: ``< 0.5 -> 0``, ``>= 0.5 -> 1``, NaN stays NaN, in the mask dtype."""
    return torch.where(mask < 0.5, 0.0, torch.where(mask >= 0.5, 1.0, mask))


def prepare_diffusers(
    image: torch.Tensor,
    mask: torch.Tensor,
    grow_mask_by: int,
    vae_scale_factor: int,
    dtype: torch.dtype,
    one_minus: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The diffusers pipelines' masked image and latent mask (``diffusers._reference``), grown by boxes.

    Shape:
        image ``(B, 3, H, W)``, mask ``(Bm, 1, H, W)``; returns ``(N, 3, H, W)`` and
        ``(Bm, 1, H // f, W // f)`` in ``dtype``. With growth (``grow_mask_by > 1``) the mask is
        ComfyUI's ``g x g`` growth of ``not (mask < 0.5)``; the masked image is the image times
        0 or 1, whichever formula (``(1 - m)``, ``(m < 0.5)``), and the latent mask is a nearest
        resize: a selection, which commutes with the pointwise binarisation.
    """
    height, width = image.shape[-2:]
    size = (height // vae_scale_factor, width // vae_scale_factor)
    if grow_mask_by > 1:
        grown = box_any(~(mask < 0.5), grow_mask_by, grow_mask_by // 2)  # ComfyUI's g x g window
        masked = image * ~grown
        latent = F.interpolate(grown.to(torch.float32), size=size)
    else:
        masked = image * (1 - _binarize(mask)) if one_minus else image * (mask < 0.5)
        latent = _binarize(F.interpolate(mask, size=size))
    return masked.to(dtype), latent.to(dtype)
