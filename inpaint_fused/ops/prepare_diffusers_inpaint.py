"""``torch.ops.inpaint_fused.prepare_diffusers_inpaint`` and its launcher.

Device code: ``kernels/prepare_diffusers_inpaint.py``; the public function in front of the op:
``inpaint_fused.diffusers.prepare_masked_image``; the oracle: ``inpaint_fused.reference_diffusers``.

Takes validated tensors (the public function owns validation): the
processed image ``(B, 3, H, W)`` and mask ``(Bm, 1, H, W)`` on one device. Where the kernels run (see
``_backend.uses_triton``) one Triton kernel writes both outputs (two with growth); elsewhere the
pure-torch path (``torch_path``, the same results as the pipelines' own code in ``reference_diffusers``).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from .. import _backend
from . import torch_path
from .launch import LaunchConfig, cdiv, clip_window, core_morphology, float32, run_length

# Measured best on the H200 (bench/sweep_configs.py --diffusers, config f): the growth pass on tiles one warp
# wide (its running count scans inside a warp), the image pass one row of 512 per tile, 32 programs per SM.
GPU_CONFIG = LaunchConfig(16, 32, 2, 1, 512, 4, 32)
# The interpreter runs programs one by one in numpy: fewer, larger tiles are faster there. It still splits
# each image into a few runs of rows, so that CI exercises the seams between programs and the block counts.
INTERPRETER_CONFIG = LaunchConfig(16, 64, 1, 16, 64, 1, 3)


@functools.lru_cache(maxsize=256)
def _layouts(
    image: tuple[tuple[int, ...], tuple[int, ...], torch.dtype],
    mask: tuple[tuple[int, ...], tuple[int, ...], torch.dtype],
    vae_scale_factor: int,
    dtype: torch.dtype,
    one_minus: bool,
) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    """``((shape, strides) of the masked image, (shape, strides) of the latent mask)``, worked out on
    the meta device from the inputs' ``(shape, strides, dtype)``."""
    meta_image = torch.empty_strided(image[0], image[1], dtype=image[2], device="meta")
    meta_mask = torch.empty_strided(mask[0], mask[1], dtype=mask[2], device="meta")
    height, width = image[0][-2:]
    masked = (meta_image * ((1 - meta_mask) if one_minus else (meta_mask < 0.5))).to(dtype)
    latent = F.interpolate(meta_mask, size=(height // vae_scale_factor, width // vae_scale_factor)).to(dtype)
    return (tuple(masked.shape), masked.stride()), (tuple(latent.shape), latent.stride())


def _stock_layouts(
    image: torch.Tensor, mask: torch.Tensor, vae_scale_factor: int, dtype: torch.dtype, one_minus: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Empty outputs laid out as the pipelines' results would be.

    ``image * (mask < 0.5)`` follows the inputs' layout (a PIL image read by ``VaeImageProcessor``
    is a channels-last view) and the VAE's convolutions may round differently on another layout,
    so the fused outputs copy it: same values and same strides give the same latents. The layout
    is worked out on the meta device, once per combination of shapes, strides and dtypes (a few
    hundred microseconds of host time otherwise).
    """
    key = (
        (tuple(image.shape), image.stride(), image.dtype),
        (tuple(mask.shape), mask.stride(), mask.dtype),
        vae_scale_factor,
        dtype,
        one_minus,
    )
    if all(isinstance(v, int) for part in key[:2] for v in (*part[0], *part[1])):
        layouts = _layouts(*key)
    else:  # symbolic sizes under torch.compile's fake tensors: not hashable, not worth caching
        layouts = _layouts.__wrapped__(*key)
    return tuple(torch.empty_strided(shape, stride, dtype=dtype, device=image.device) for shape, stride in layouts)


def _launch(
    image: torch.Tensor,
    mask: torch.Tensor,
    grow_mask_by: int,
    vae_scale_factor: int,
    dtype: torch.dtype,
    one_minus: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    device = image.device
    n_images, _, height, width = image.shape
    n_masks = mask.shape[0]
    n_out = max(n_images, n_masks)
    latent_h, latent_w = height // vae_scale_factor, width // vae_scale_factor
    out, latent = _stock_layouts(image, mask, vae_scale_factor, dtype, one_minus)
    config = GPU_CONFIG if device.type == "cuda" else INTERPRETER_CONFIG
    target = config.program_target(device)

    grows = grow_mask_by > 1
    if grows:
        # ComfyUI's window (g wide, ceil((g - 1) / 2) before), clipped where it reaches past the image.
        win, before = clip_window(core_morphology(grow_mask_by), height, width)
        scratch = torch.empty((n_masks, height, width), dtype=torch.uint8, device=device)
        row_blocks = cdiv(height, config.rows_block_h)
        # Runs of columns as the core's pass A: enough to fill the device, each at least about half the window.
        cols_per_program = run_length(width, config.rows_block_w, target // max(1, n_masks * row_blocks), win)
        _backend.load_kernels()._diffusers_grow_rows_kernel[(n_masks, row_blocks, cdiv(width, cols_per_program))](
            mask,
            scratch,
            mask.stride(0),
            mask.stride(2),
            mask.stride(3),
            height,
            width,
            win,
            before,
            cols_per_program,
            BLOCK_H=config.rows_block_h,
            BLOCK_COUNTS=config.block_counts(win),
            BLOCK_W=config.rows_block_w,
            **config.warps(device, config.rows_warps),
        )
    else:
        win, before = 1, 0
        scratch = latent

    block_h, block_w = config.fill_block_h, config.fill_block_w
    n_col = cdiv(width, block_w)
    warm_up = config.warm_up(win) if grows else 0
    rows_per_program = run_length(height, block_h, target // max(1, n_out * n_col), warm_up)
    grid = (n_out, cdiv(height, rows_per_program), n_col)
    _backend.load_kernels()._diffusers_inpaint_kernel[grid](
        image,
        mask,
        scratch,
        out,
        latent,
        *image.stride(),
        mask.stride(0),
        mask.stride(2),
        mask.stride(3),
        *out.stride(),
        latent.stride(0),
        latent.stride(2),
        latent.stride(3),
        n_images,
        n_masks,
        height,
        width,
        latent_h,
        latent_w,
        float32(height / latent_h),
        float32(width / latent_w),
        win,
        before,
        rows_per_program,
        GROW=grows,
        ONE_MINUS=one_minus,
        ROWS_BLOCK=config.rows_block_h,
        BLOCK_COUNTS=grows and config.block_counts(win),
        BLOCK_H=block_h,
        BLOCK_W=block_w,
        **config.warps(device, config.fill_warps),
    )
    return out, latent


@torch.library.custom_op("inpaint_fused::prepare_diffusers_inpaint", mutates_args=())
def prepare_diffusers_inpaint_op(
    image: torch.Tensor,
    mask: torch.Tensor,
    grow_mask_by: int,
    vae_scale_factor: int,
    dtype: torch.dtype,
    one_minus: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """diffusers inpaint preprocessing: ``(masked image (N, 3, H, W), latent mask (Bm, 1, H // f, W // f))``.

    Outputs are laid out as the pipelines' ``image * (mask < 0.5)`` (``one_minus``:
    ``image * (1 - mask)``, Flux Fill's) and ``F.interpolate`` results.
    """
    if not _backend.uses_triton(image.device):
        masked, latent = _stock_layouts(image, mask, vae_scale_factor, dtype, one_minus)
        expected = torch_path.prepare_diffusers(image, mask, grow_mask_by, vae_scale_factor, dtype, one_minus)
        return masked.copy_(expected[0]), latent.copy_(expected[1])
    return _launch(image, mask, grow_mask_by, vae_scale_factor, dtype, one_minus)


@prepare_diffusers_inpaint_op.register_fake
def _(image, mask, grow_mask_by, vae_scale_factor, dtype, one_minus=False):
    return _stock_layouts(image, mask, vae_scale_factor, dtype, one_minus)
