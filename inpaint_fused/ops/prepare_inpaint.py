"""Registered torch ops (``torch.ops.inpaint_fused.*``) and the launchers behind them.

Device code: ``kernels/prepare_inpaint.py``; public functions: ``inpaint_fused.api``; oracle:
``inpaint_fused.reference``.

Each op takes already validated tensors (the public functions in ``inpaint_fused.api`` own
validation and defaults): pixels ``(B, H, W, C)`` and a mask ``(Bm, h, w)`` on the same device.
On a device where the kernels run (see ``_backend.uses_triton``) they launch two Triton kernels,
one without growth or for a small call (``OneLaunch``); elsewhere they run the pure-torch path
(``torch_path``, same results) under the same mask policy.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import torch

from .. import _backend
from . import torch_path
from .launch import (
    LaunchConfig,
    Morphology,
    cdiv,
    check_span,
    clip_window,
    core_morphology,
    crop_geometry,
    run_length,
    was_morphology,
)

# Measured best on the H200 (bench/sweep_configs.py, config "L share 8 short"): pass A tiles one warp wide, so that its
# running count scans inside a warp (a 128-wide tile scanned across warps through shared memory and
# barriers, which made pass A L1-bound at 13 % of DRAM); one row per fill tile keeps registers at 48.
GPU_CONFIG = LaunchConfig(16, 32, 4, 1, 512, 4, 16, warm_up_share=8)
# The interpreter runs programs one by one in numpy: fewer, larger tiles are faster there. It still
# splits each image into a few runs, so that CI exercises the seams between programs.
INTERPRETER_CONFIG = LaunchConfig(16, 64, 1, 16, 64, 1, 3)


class OneLaunch(NamedTuple):
    """When a growing mask takes one launch instead of two: eager calls (not a CUDA-graph capture) of at most
    ``max_pixels`` output pixels (the whole batch) whose window is at most ``max_win`` rows and columns (and
    ``block_w``), with image-pass tiles of ``block_h x block_w``, ``warps`` warps and runs of at least
    ``win / warm_up_share`` rows.

    The box is then counted from the mask, each mask bit read four times (from cache but once), instead of
    once into a scratch, and each run first sums its ``win`` rows: more GPU time (14.1 against 10.2 us at 1024²
    g6 on the H200) for one Triton launch less, which costs more host time than that (44-70 against 62-119 us
    per eager call, three runs).
    A CUDA graph replays no host work, so a capture takes the two launches.
    """

    max_pixels: int
    max_win: int
    block_h: int
    block_w: int
    warps: int
    warm_up_share: int


# Swept on the H200 (bench/sweep_configs.py --one-launch, bench/results/sweep-h200-becfdf9.log and
# sweep-h200-1f40cb9.log): one-row tiles of 64 columns, one warp, runs of at least win / 8 rows. Up to 2 Mpx and
# windows of 64 the GPU time it adds (at most 13 us) stays under the host time it saves (18-49 us).
GPU_ONE_LAUNCH = OneLaunch(1 << 21, 64, 1, 64, 1, 8)
# Off under the interpreter, whose small images would all take it: tests switch it on to cover it.
INTERPRETER_ONE_LAUNCH = OneLaunch(0, 64, 16, 64, 1, 2)
# What a CUDA-graph capture takes: the two launches, whose GPU time is the shorter.
CAPTURED_ONE_LAUNCH = OneLaunch(0, 0, 1, 64, 1, 1)


def sanitize_mask(mask: torch.Tensor) -> torch.Tensor:
    """The mask policy shared by kernels and fallback: NaN counts as 0, values are clamped to [0, 1]."""
    return torch.nan_to_num(mask, nan=0.0).clamp_(0, 1)


class _Plan(NamedTuple):
    """Everything of a launch that follows from shapes, strides, dtypes and settings: computed once per
    combination (``_plan``), so a call only allocates its outputs and launches."""

    noise_shape: tuple[int, ...]
    scratch_shape: Optional[tuple[int, ...]]
    out_shape: Optional[tuple[int, ...]]
    rows_grid: tuple[int, int, int]
    rows_scalars: tuple[int, ...]
    rows_constants: dict
    fill_grid: tuple[int, int, int]
    pixel_strides: tuple[int, ...]
    fill_scalars: tuple[int, ...]
    fill_constants: dict


@functools.lru_cache(maxsize=256)
def _plan(
    pixel_layout: Optional[tuple[tuple[int, ...], tuple[int, ...]]],
    mask_layout: tuple[tuple[int, ...], tuple[int, ...]],
    device: torch.device,
    morph: Morphology,
    ratio: int,
    vae_dtype: Optional[torch.dtype],
    config: LaunchConfig,
    one_launch: OneLaunch,
) -> _Plan:
    (n_masks, h, w), mask_strides = mask_layout
    check_span((n_masks, h, w), mask_strides, "mask")
    if pixel_layout is None:
        n_pix, height, width, channels = 0, h, w, 0
        pixel_strides = (0, 0, 0, 0)
    else:
        (n_pix, height, width, channels), pixel_strides = pixel_layout
        check_span((n_pix, height, width, channels), pixel_strides, "pixels")
    out_h, out_w, off_h, off_w = crop_geometry(height, width, ratio)
    n_out = max(n_pix, n_masks)
    same_size = (h, w) == (height, width)
    grows = morph.grows
    win, before = clip_window(morph, out_h, out_w) if grows else (1, 0)
    target = config.program_target(device)
    fused = (
        grows and n_out * out_h * out_w <= one_launch.max_pixels and win <= min(one_launch.max_win, one_launch.block_w)
    )

    rows_grid, rows_scalars, rows_constants = (0, 0, 0), (), {}
    if grows and not fused:
        block_h, block_w = config.rows_block_h, config.rows_block_w
        row_blocks = cdiv(out_h, block_h)
        runs_wanted = target // max(1, n_masks * row_blocks)
        cols_per_program = run_length(out_w, block_w, runs_wanted, win, config.warm_up_share)
        rows_grid = (n_masks, row_blocks, cdiv(out_w, cols_per_program))
        rows_scalars = (*mask_strides, h, w, height, width, out_h, out_w, off_h, off_w, win, before, cols_per_program)
        rows_constants = dict(
            INVERT=morph.invert,
            KEEP_BASE=not morph.fill_from_grown,
            SAME_SIZE=same_size,
            BLOCK_H=block_h,
            BLOCK_COUNTS=config.block_counts(win),
            SHORT=win <= block_w,
            BLOCK_W=block_w,
            **config.warps(device, config.rows_warps),
        )

    if pixel_layout is None:
        out_shape, out_strides = None, (0, 0, 0, 0)
    elif vae_dtype is None:
        out_shape = (n_out, out_h, out_w, channels)
        out_strides = (out_h * out_w * channels, out_w * channels, channels, 1)
    else:
        out_shape = (n_out, 3, out_h, out_w)
        out_strides = (3 * out_h * out_w, out_w, 1, out_h * out_w)  # (b, h, w, c) of the NCHW output

    if fused:
        warm_up, share = win, one_launch.warm_up_share
        block_h, block_w, fill_warps = one_launch.block_h, one_launch.block_w, one_launch.warps
    else:
        warm_up, share = (config.warm_up(win) if grows else 0), config.warm_up_share
        block_h, block_w, fill_warps = config.fill_block_h, config.fill_block_w, config.fill_warps
    n_col = cdiv(out_w, block_w)
    rows_per_program = run_length(out_h, block_h, target // max(1, n_out * n_col), warm_up, share)
    fill_scalars = (
        *mask_strides, *out_strides, n_pix, n_masks, h, w, height, width, out_h, out_w, channels,
        off_h, off_w, win, before, rows_per_program,
    )  # fmt: skip
    fill_constants = dict(
        GROW=grows,
        FUSED=fused,
        INVERT=morph.invert,
        FILL_FROM_GROWN=morph.fill_from_grown,
        HAS_PIXELS=pixel_layout is not None,
        VAE_OUT=vae_dtype is not None,
        SAME_SIZE=same_size,
        ROWS_BLOCK=config.rows_block_h,
        BLOCK_COUNTS=grows and not fused and config.block_counts(win),
        BLOCK_H=block_h,
        BLOCK_W=block_w,
        **config.warps(device, fill_warps),
    )
    return _Plan(
        (n_masks, 1, out_h, out_w),
        (n_masks, out_h, out_w) if grows and not fused else None,
        out_shape,
        rows_grid,
        rows_scalars,
        rows_constants,
        (n_out, cdiv(out_h, rows_per_program), n_col),
        tuple(pixel_strides),
        fill_scalars,
        fill_constants,
    )


def plan_for(
    pixels: Optional[torch.Tensor],
    mask: torch.Tensor,
    morph: Morphology,
    ratio: int,
    vae_dtype: Optional[torch.dtype],
) -> _Plan:
    """The cached launch plan of a call: the device's settings (a CUDA-graph capture takes two launches)."""
    device = mask.device
    if device.type == "cuda":
        config = GPU_CONFIG
        one_launch = CAPTURED_ONE_LAUNCH if torch.cuda.is_current_stream_capturing() else GPU_ONE_LAUNCH
    else:
        config, one_launch = INTERPRETER_CONFIG, INTERPRETER_ONE_LAUNCH
    pixel_layout = None if pixels is None else (tuple(pixels.shape), pixels.stride())
    return _plan(pixel_layout, (tuple(mask.shape), mask.stride()), device, morph, ratio, vae_dtype, config, one_launch)


def _launch(
    pixels: Optional[torch.Tensor],
    mask: torch.Tensor,
    morph: Morphology,
    ratio: int,
    vae_dtype: Optional[torch.dtype],
) -> tuple[Optional[torch.Tensor], torch.Tensor]:
    """Allocate the outputs and launch the passes (the geometry comes from the cached ``_plan``)."""
    plan = plan_for(pixels, mask, morph, ratio, vae_dtype)
    kernels = _backend.load_kernels()
    noise = mask.new_empty(plan.noise_shape, dtype=torch.float32)
    if plan.scratch_shape is not None:
        scratch = mask.new_empty(plan.scratch_shape, dtype=torch.uint8)
        kernels._box_rows_kernel[plan.rows_grid](mask, scratch, *plan.rows_scalars, **plan.rows_constants)
    else:
        scratch = noise
    if pixels is None:
        out = None
    else:
        out = pixels.new_empty(plan.out_shape, dtype=pixels.dtype if vae_dtype is None else vae_dtype)
    kernels._inpaint_fill_kernel[plan.fill_grid](
        noise if pixels is None else pixels,
        mask,
        scratch,
        noise,
        noise if out is None else out,
        *plan.pixel_strides,
        *plan.fill_scalars,
        **plan.fill_constants,
    )
    return out, noise


def prepare(
    pixels: torch.Tensor, mask: torch.Tensor, morph: Morphology, ratio: int, vae_dtype: Optional[torch.dtype]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The implementation behind ``prepare_inpaint`` (``core_morphology``) and ``prepare_inpaint_was``
    (``was_morphology``): the box policy says which node's growth, erosion and fill run."""
    if not _backend.uses_triton(pixels.device):
        return torch_path.prepare(pixels, sanitize_mask(mask), morph, ratio, vae_dtype)
    return _launch(pixels, mask, morph, ratio, vae_dtype)


def _prepare_fake(pixels, mask, ratio, vae_dtype):
    n_pix, height, width, channels = pixels.shape
    n_out = max(n_pix, mask.shape[0])
    out_h, out_w, _, _ = crop_geometry(height, width, ratio)
    if vae_dtype is None:
        out = pixels.new_empty((n_out, out_h, out_w, channels))
    else:
        out = pixels.new_empty((n_out, 3, out_h, out_w), dtype=vae_dtype)
    return out, pixels.new_empty((mask.shape[0], 1, out_h, out_w), dtype=torch.float32)


@torch.library.custom_op("inpaint_fused::prepare_inpaint", mutates_args=())
def prepare_inpaint_op(
    pixels: torch.Tensor, mask: torch.Tensor, grow_mask_by: int, downscale_ratio: int, vae_dtype: Optional[torch.dtype]
) -> tuple[torch.Tensor, torch.Tensor]:
    """ComfyUI core preprocessing: ``(pixels or VAE input, noise mask (Bm, 1, x, y))``."""
    return prepare(pixels, mask, core_morphology(grow_mask_by), downscale_ratio, vae_dtype)


@prepare_inpaint_op.register_fake
def _(pixels, mask, grow_mask_by, downscale_ratio, vae_dtype):
    return _prepare_fake(pixels, mask, downscale_ratio, vae_dtype)


@torch.library.custom_op("inpaint_fused::prepare_inpaint_was", mutates_args=())
def prepare_inpaint_was_op(
    pixels: torch.Tensor, mask: torch.Tensor, mask_offset: int, downscale_ratio: int, vae_dtype: Optional[torch.dtype]
) -> tuple[torch.Tensor, torch.Tensor]:
    """WAS preprocessing: ``(pixels or VAE input, noise mask (Bm, 1, x, y))``."""
    return prepare(pixels, mask, was_morphology(mask_offset), downscale_ratio, vae_dtype)


@prepare_inpaint_was_op.register_fake
def _(pixels, mask, mask_offset, downscale_ratio, vae_dtype):
    return _prepare_fake(pixels, mask, downscale_ratio, vae_dtype)


def modify(mask: torch.Tensor, morph: Morphology) -> torch.Tensor:
    """The implementation behind ``grow_mask`` (``core_morphology``) and ``modify_mask``
    (``was_morphology``): ``(Bm, 1, h, w)``."""
    if not _backend.uses_triton(mask.device):
        return torch_path.modify(sanitize_mask(mask), morph)
    return _launch(None, mask, morph, 1, None)[1]


@torch.library.custom_op("inpaint_fused::grow_mask", mutates_args=())
def grow_mask_op(mask: torch.Tensor, grow_mask_by: int) -> torch.Tensor:
    """ComfyUI core growth of a ``(Bm, h, w)`` mask at its own size: ``(Bm, 1, h, w)`` float32 0/1."""
    return modify(mask, core_morphology(grow_mask_by))


@grow_mask_op.register_fake
def _(mask, grow_mask_by):
    return mask.new_empty((mask.shape[0], 1, mask.shape[1], mask.shape[2]), dtype=torch.float32)


@torch.library.custom_op("inpaint_fused::modify_mask", mutates_args=())
def modify_mask_op(mask: torch.Tensor, mask_offset: int) -> torch.Tensor:
    """WAS signed dilation/erosion of a ``(Bm, h, w)`` mask at its own size: ``(Bm, 1, h, w)`` float32 0/1."""
    return modify(mask, was_morphology(mask_offset))


@modify_mask_op.register_fake
def _(mask, mask_offset):
    return mask.new_empty((mask.shape[0], 1, mask.shape[1], mask.shape[2]), dtype=torch.float32)
