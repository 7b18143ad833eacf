"""Device helpers shared by the kernels: the rounded, resized, cropped mask and exact dtype rounding."""

import os

import triton
import triton.language as tl

# Triton's interpreter truncates on ``.to(tl.bfloat16)``; the GPU rounds to nearest even, as PyTorch.
_INTERPRETED: tl.constexpr = tl.constexpr(os.environ.get("TRITON_INTERPRET", "0") == "1")


@triton.jit
def _round_f32_to_bf16(x):
    """fp32 -> fp32 value rounded to the nearest bf16, ties to even (NaN stays NaN), with integer ops."""
    bits = x.to(tl.uint32, bitcast=True)
    lsb = (bits >> 16) & 1
    rounded = ((bits + 0x7FFF + lsb) >> 16) << 16
    rounded = tl.where(x != x, bits | 0x00400000, rounded)
    return rounded.to(tl.float32, bitcast=True)


@triton.jit
def _round_to(x, DTYPE: tl.constexpr):
    """Round a computed value to ``DTYPE``'s precision, keeping it in the compute dtype.

    fp64 values go through fp32 first for half types, as ``c10::Half``/``c10::BFloat16`` do.
    """
    if DTYPE == tl.bfloat16:
        if _INTERPRETED:
            return _round_f32_to_bf16(x.to(tl.float32))
        else:
            return x.to(tl.float32).to(tl.bfloat16).to(tl.float32)
    elif DTYPE == tl.float16:
        return x.to(tl.float32).to(tl.float16).to(tl.float32)
    elif DTYPE == tl.float32:
        return x.to(tl.float32)
    else:
        return x


@triton.jit
def _mask_sample(ptr, ok):
    """One mask sample under the NaN/range policy: NaN -> 0, then clamped to [0, 1]."""
    v = tl.load(ptr, mask=ok, other=0.0).to(tl.float32)
    v = tl.where(v != v, 0.0, v)
    return tl.minimum(tl.maximum(v, 0.0), 1.0)


@triton.jit
def _rounded_mask(
    mask_ptr,
    stride_mh,
    stride_mw,
    h,
    w,
    rows,
    cols,
    ok,
    off_h,
    off_w,
    scale_h,
    scale_w,
    SAME_SIZE: tl.constexpr,
):
    """``round(bilinear_resize(mask))`` at cropped coordinates ``rows`` x ``cols`` as int32 0/1.

    ``mask_ptr`` points at one mask of the batch. The resize follows PyTorch's
    ``upsample_bilinear2d`` with ``align_corners=False`` (source index ``scale * (d + 0.5) - 0.5``
    clamped at 0, neighbour index clamped at the last row/column, ``h0 * (w0 * a + w1 * b) +
    h1 * (w0 * c + w1 * d)``). The value is rounded to the mask dtype, as PyTorch stores it, before
    ``round`` (half to even: 0.5 -> 0, which for values in [0, 1] is ``v > 0.5``).
    """
    full_r = rows + off_h
    full_c = cols + off_w
    if SAME_SIZE:
        v = _mask_sample(mask_ptr + full_r * stride_mh + full_c * stride_mw, ok)
    else:
        src_h = tl.maximum(scale_h * (full_r.to(tl.float32) + 0.5) - 0.5, 0.0)
        src_w = tl.maximum(scale_w * (full_c.to(tl.float32) + 0.5) - 0.5, 0.0)
        h0 = src_h.to(tl.int32)
        w0 = src_w.to(tl.int32)
        lam_h = src_h - h0.to(tl.float32)
        lam_w = src_w - w0.to(tl.float32)
        h1 = h0 + (h0 < h - 1).to(tl.int32)
        w1 = w0 + (w0 < w - 1).to(tl.int32)
        a = _mask_sample(mask_ptr + h0 * stride_mh + w0 * stride_mw, ok)
        b = _mask_sample(mask_ptr + h0 * stride_mh + w1 * stride_mw, ok)
        c = _mask_sample(mask_ptr + h1 * stride_mh + w0 * stride_mw, ok)
        d = _mask_sample(mask_ptr + h1 * stride_mh + w1 * stride_mw, ok)
        v = (1.0 - lam_h) * ((1.0 - lam_w) * a + lam_w * b) + lam_h * ((1.0 - lam_w) * c + lam_w * d)
    v = _round_to(v, mask_ptr.dtype.element_ty)
    return (v > 0.5).to(tl.int32)
