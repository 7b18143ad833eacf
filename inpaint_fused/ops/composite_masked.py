"""``inpaint_fused::composite_masked``: ComfyUI's ``ImageCompositeMasked``, Triton kernel or pure torch.

The op takes validated IMAGEs (``destination (B, H, W, C)``, ``source (Bs, Hs, Ws, Cs)``, offsets
``x, y >= 0``, a mask or ``None``; :func:`inpaint_fused.masks.composite_masked` owns validation).
Both paths repeat the stock node's steps: alpha fix, source to the destination's device, bilinear
source resize (``resize_source``), source and mask repeated/cut to the destination batch, mask
resized to the source size, window clipped to the destination, ``m * s + (1 - m) * d`` there.

The bilinear resizes run through ``F.interpolate`` on the very tensors (and strides) the stock node
hands it: PyTorch's bilinear arithmetic differs between devices and memory layouts (the CPU kernel
contracts into fused multiply-adds), so only the same call gives the same values. A mask already
at the source's size skips it (PyTorch's resize is an exact copy then). The kernel fuses the rest:
the destination copy, the alpha channel, both batch repeats, the window and the blend, writing the
output once; the torch path does the same steps with fewer temporaries than the stock node.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .. import _backend, reference
from .launch import cdiv, check_index_range

TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
# (BLOCK_ROWS, BLOCK, num_warps): see the kernel. GPU default: rows of 512 elements, one row per program,
# 2 warps, the best of bench/sweep_composite.py on the H200 (16 x 1024^2: 97 % of a copy of the same bytes
# with a same-size mask, 102 % without one). Interpreter: small enough that the tests cross seams.
GPU_TILE = (1, 512, 2)
INTERPRETER_TILE = (8, 32, 1)


def output_channels(destination: torch.Tensor, source: torch.Tensor) -> int:
    """Channels after the stock alpha fix: the destination's, one more when the source has fewer."""
    channels = destination.shape[-1]
    return channels + 1 if channels > source.shape[-1] else channels


def _source_nchw(destination: torch.Tensor, source: torch.Tensor, resize_source: bool) -> torch.Tensor:
    """The source as the stock ``composite`` sees it before the batch repeat: alpha cut, NCHW view, moved, resized."""
    if destination.shape[-1] < source.shape[-1]:
        source = source[..., : destination.shape[-1]]
    source = source.movedim(-1, 1).to(destination.device)
    if resize_source:
        source = F.interpolate(source, size=(destination.shape[1], destination.shape[2]), mode="bilinear")
    return source


def _mask_at_source_size(mask: torch.Tensor, size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """``(Bm, 1, Hs, Ws)`` for the source's ``size = (Hs, Ws)``: the stock mask resize (on the stock node's
    copy, so with its strides), skipped where it reproduces the mask: every finite value (an infinite one,
    which the CPU resize turns into NaN, blends to NaN either way with non-negative images)."""
    shape = (-1, 1, mask.shape[-2], mask.shape[-1])
    if mask.shape[-2:] == size:
        return mask.to(device).reshape(shape)
    return F.interpolate(mask.to(device, copy=True).reshape(shape), size=size, mode="bilinear")


def _composite_torch(
    destination: torch.Tensor, source: torch.Tensor, x: int, y: int, resize_source: bool, mask: Optional[torch.Tensor]
) -> torch.Tensor:
    """The stock steps in NHWC: one output allocation, the blend on the window only, no ``ones_like``."""
    src = _source_nchw(destination, source, resize_source)
    fixed, _ = reference.image_alpha_fix(destination, source)
    # The alpha fix's padding is already a fresh tensor: the output itself.
    out = fixed if fixed is not destination else destination.clone(memory_format=torch.contiguous_format)
    batch, height, width, _ = out.shape
    src = reference.repeat_to_batch_size(src, batch)
    left, top = min(x, width), min(y, height)
    window = out[:, top : top + src.shape[-2], left : left + src.shape[-1], :]
    vis_h, vis_w = window.shape[1], window.shape[2]
    s = src[..., :vis_h, :vis_w].movedim(1, -1)
    if mask is None:
        m = torch.ones((1, 1, 1, 1), dtype=src.dtype, device=src.device)
    else:
        m = _mask_at_source_size(mask, (src.shape[-2], src.shape[-1]), out.device)
        m = reference.repeat_to_batch_size(m, batch)[:, :, :vis_h, :vis_w].movedim(1, -1)
    blended = m * s
    blended = blended + (1 - m) * window
    window.copy_(blended)
    return out


def _composite_triton(
    destination: torch.Tensor, source: torch.Tensor, x: int, y: int, resize_source: bool, mask: Optional[torch.Tensor]
) -> torch.Tensor:
    batch, height, width, channels = destination.shape
    device = destination.device
    out_channels = output_channels(destination, source)
    if resize_source or source.device != device:
        src = _source_nchw(destination, source, resize_source)  # the stock tensors, strides included
        s_b, s_c, s_h, s_w = src.stride()
        n_src, src_channels, src_h, src_w = src.shape
    else:  # the NHWC source read in place: the same values as its NCHW view
        src = source
        s_b, s_h, s_w, s_c = src.stride()
        n_src, src_h, src_w, src_channels = src.shape
        src_channels = min(src_channels, channels)
    check_index_range(destination, "destination")
    check_index_range(src, "source")
    left, top = min(x, width), min(y, height)
    win_h, win_w = min(src_h, height - top), min(src_w, width - left)
    if src_channels == 1:
        s_c = 0  # the stock broadcast of a 1-channel source over the channels
    if mask is None:
        mask_arg, mask_strides, n_mask = src, (0, 0, 0), 1
    elif mask.shape[-2:] == (src_h, src_w) and mask.device == device:
        check_index_range(mask, "mask")  # at the source's size: the stock resize is a copy, read the mask itself
        mask_arg, mask_strides, n_mask = mask, mask.stride(), mask.shape[0]
    else:
        m = _mask_at_source_size(mask, (src_h, src_w), device)
        check_index_range(m, "mask")
        mask_arg, mask_strides, n_mask = m, (m.stride(0), m.stride(2), m.stride(3)), m.shape[0]
    out = destination.new_empty((batch, height, width, out_channels))
    gpu = destination.is_cuda
    block_rows, block, warps = GPU_TILE if gpu else INTERPRETER_TILE
    # No fused multiply-adds: the stock node rounds each product before the sum.
    extra = {"num_warps": warps, "enable_fp_fusion": False} if gpu else {}
    grid = (cdiv(width * out_channels, block), cdiv(height, block_rows), batch)
    d_b, d_h, d_w, d_c = destination.stride()
    _backend.load_kernels()._composite_masked_kernel[grid](
        destination, src, mask_arg, out,
        d_b, d_h, d_w, d_c, s_b, s_h, s_w, s_c, *mask_strides,
        n_src, n_mask, height, width, top, left, win_h, win_w,
        DST_CHANNELS=channels, OUT_CHANNELS=out_channels,
        HAS_MASK=mask is not None,
        DST_ROWS_DENSE=out_channels == channels and d_w == channels and d_c == 1,
        SRC_ROWS_DENSE=src_channels == out_channels and s_w == out_channels and s_c == 1,
        BLOCK_ROWS=block_rows, BLOCK=block, **extra,
    )  # fmt: skip
    return out


def composite(
    destination: torch.Tensor, source: torch.Tensor, x: int, y: int, resize_source: bool, mask: Optional[torch.Tensor]
) -> torch.Tensor:
    """The implementation behind the op: the kernel where Triton runs and every dtype fits, else torch."""
    dtypes = {destination.dtype, source.dtype} | ({mask.dtype} if mask is not None else set())
    if _backend.uses_triton(destination.device) and dtypes <= set(TRITON_DTYPES):
        return _composite_triton(destination, source, x, y, resize_source, mask)
    return _composite_torch(destination, source, x, y, resize_source, mask)


@torch.library.custom_op("inpaint_fused::composite_masked", mutates_args=())
def composite_masked_op(
    destination: torch.Tensor,
    source: torch.Tensor,
    x: int,
    y: int,
    resize_source: bool,
    mask: Optional[torch.Tensor],
) -> torch.Tensor:
    """``ImageCompositeMasked``: ``(B, H, W, C')`` in the destination's dtype and on its device."""
    return composite(destination, source, x, y, resize_source, mask)


@composite_masked_op.register_fake
def _(destination, source, x, y, resize_source, mask):
    batch, height, width, _ = destination.shape
    return destination.new_empty((batch, height, width, output_channels(destination, source)))
