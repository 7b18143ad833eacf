"""``torch.ops.inpaint_fused.expand_mask``: ComfyUI's GrowMask (grey dilation/erosion), O(1) per pixel.

``|expand|`` steps of a 3x3 square give the maximum (minimum for erosion) over the
``(2|e| + 1)**2`` box clipped to the image: a running maximum along the rows, then along the
columns (``_running_max_kernel``, van Herk/Gil-Werman). ``|expand|`` steps of the 3x3 cross give
the maximum over the diamond ``|di| + |dj| <= |e|`` clipped to the image. With ``u = i + j`` and
``v = i - j`` the diamond is ``max(|du|, |dv|) <= e`` with ``du = dv (mod 2)``:

- ``S_m``, the maximum over ``p + a(1, 1) + b(1, -1)``, ``|a|, |b| <= m``, is a square of radius
  ``m`` on each parity class of the rotated grid (the two running maxima, the first one reading
  the image through the rotation);
- diamond(2m + 1) = ``S_m`` over the 5-point cross, diamond(2m + 2) = ``S_m`` over the 13-point
  diamond of radius 2 (``_diamond_taps_kernel``).

The first diagonal pass is not clipped to the image (a point ``p + a(1, 1)`` outside it can see
pixels inside along ``(1, -1)``): the rotated grid covers the image's whole bounding diamond and
a margin of 2 for the taps, ``-inf`` where no pixel lands, so every maximum is exact.

Only a band of that grid is scanned (about half of it for a square image: the image's rotated
rectangle, not its bounding square). In ``(u, v)`` the pixels are the rectangle ``u + v in [w + 3,
2h + w + 1]``, ``u - v in [1 - w, w - 1]``; ``D(a_u, a_v, b)`` (``Band``, ``_band_cells`` in the
kernels) widens it by ``b`` on those four sides and cuts it to ``u in [2 - a_u, h + w + a_u]``,
``v in [2 - a_v, h + w + a_v]``; each line of the grid meets it in one interval, in closed form.
Working back from the output:

- the taps (reach ``e`` = 1 odd, 2 even) read ``S_m`` only within L1 distance ``e`` of the image:
  ``D(e, e, 2e)``, which the column pass writes (every cell of it, ``-inf`` included);
- those outputs' column windows (``m`` cells, ``2m`` along ``u``) lie in ``D(e + 2m, e, 2e + 2m)``,
  which the row pass writes, each row from the pixels that land on it; the column pass reads only
  there. With ``m = 0`` the two sets are one and the taps read the row pass directly.

Every cell that is read was therefore written by the pass before, with its exact value; the rest of
the grid is never written nor read (``_new_grid`` leaves it uninitialised; the tests fill it with
NaN and infinities). Each program scans the union of its lines' intervals, programs whose lines
have none exit at once, and a line block's runs are cut from the average band (``_band_lengths``),
so that the widest blocks get several programs.

Radii are clipped where more changes nothing (the square per axis at ``n - 1``, the diamond at
``h + w - 2``); the cost per pixel does not depend on them. Erosion is the dilation of ``-mask``.
On devices where Triton does not run, :mod:`.expand_mask_torch` computes the same with torch ops.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from .. import _backend
from .expand_mask_torch import expand_mask_torch
from .launch import cdiv, check_index_range, round_up, run_length


class ScanConfig(NamedTuple):
    """Tile of a running-maximum pass: ``block_t`` positions along the scan by ``block_l`` lines."""

    block_t: int
    block_l: int
    warps: int


class ExpandConfig(NamedTuple):
    """Launch settings: the passes along rows (contiguous scan), along columns and along the rows of the
    rotated grid (read from the image along its anti-diagonals), the taps' tiles, programs per SM.

    ``runs`` fixes the number of programs per line block under the interpreter, which has no SMs
    to fill (more than one, so that CI exercises the seams between them). A run is at least
    ``run_radii / 2`` radii long (and 4 tiles): each of its phases also reads up to 3 radii of warm-up.
    """

    rows: ScanConfig
    cols: ScanConfig
    rotated: ScanConfig
    tile_h: int
    tile_w: int
    tile_warps: int
    programs_per_sm: int
    runs: Optional[int]
    run_radii: int = 8


# Swept on the H200 (bench/sweep_configs.py --expand, bench/results/sweep-h200-expand-*.log): the passes along
# rows and columns coalesced along the contiguous axis; the rotated pass 16 x 32 (80 registers; 32 x 32 took 136,
# which held it at 19 % occupancy); taps tiles of 8 x 64 (54 registers against 168); 16 programs per SM; runs of
# at least 2 radii (4 made one 1024^2 mask's square e64 wait on two programs per line: 45.5 against 36.8 us). At
# 16 x 1024^2 tapered e1 / e64: 257 / 580 us against 354 / 729 us; square within 2 %.
GPU_CONFIG = ExpandConfig(
    ScanConfig(128, 8, 4), ScanConfig(32, 32, 4), ScanConfig(16, 32, 4), 8, 64, 4, 16, None, run_radii=4
)
# The interpreter pays per operation, not per element: large tiles. Tests shrink them to cross seams.
INTERPRETER_CONFIG = ExpandConfig(
    ScanConfig(64, 64, 1), ScanConfig(64, 64, 1), ScanConfig(64, 64, 1), 64, 64, 1, 1, 2, run_radii=4
)


def _triton_meta(device: torch.device, config: ScanConfig | int) -> dict:
    warps = config.warps if isinstance(config, ScanConfig) else config
    return {"num_warps": warps} if device.type == "cuda" else {}


class Band(NamedTuple):
    """The part of the rotated grid of ``h x w`` images one pass writes and reads: see ``_band_cells``.

    ``out`` and ``src`` are ``(a_x, a_y, b)`` of the sets ``D(a_x, a_y, b)``, ``x`` the coordinate a
    line of the pass fixes. A pass writes its lines on ``out`` only and reads ``src`` only there
    (``-inf`` elsewhere, which must be the value there).
    """

    h: int
    w: int
    out: tuple[int, int, int]
    src: tuple[int, int, int]


def _band_lengths(band: Band, n: int, block_l: int) -> tuple[int, int]:
    """How many output cells the programs of one line block cover: at most, and on average over the grid.

    One line of ``D(a_x, a_y, b)`` spans at most ``min(2h - 2 + 2b, 2w - 2 + 2b, h + w - 2 + 2a_y)``
    along ``y``, half as many cells plus one; its ends move at most one cell from one line to the
    next, so ``block_l`` lines add fewer than ``block_l`` cells. On average: the rectangle widened by
    ``b`` holds about ``(h - 1 + b)(w - 1 + b) / 2`` cells of a parity class, over ``n`` lines.
    """
    _, a_y, b = band.out
    span = min(2 * band.h - 2 + 2 * b, 2 * band.w - 2 + 2 * b, band.h + band.w - 2 + 2 * a_y)
    widest = min(n, span // 2 + 1 + block_l)
    return widest, min(widest, cdiv((band.h - 1 + b) * (band.w - 1 + b), 2 * n) + block_l)


def _running_max(
    src: torch.Tensor,
    dst: torch.Tensor,
    radius: int,
    along_rows: bool,
    negate: bool,
    config: ExpandConfig,
    band: Optional[Band] = None,
    rotated: bool = False,
) -> None:
    """One pass of ``_running_max_kernel`` over ``(B, h, w)`` views: along each row or each column.

    ``band``: the views are the rotated grid ``(2B, half, half)``; only ``band.out`` is written.
    ``rotated`` (with a band): along the rows of the rotated grid ``dst`` of the images ``src``.
    """
    import triton.language as tl

    batch, h, w = dst.shape
    s_b, s_h, s_w = src.stride()
    d_b, d_h, d_w = dst.stride()
    if along_rows:
        lines, n, scan = h, w, config.rotated if rotated else config.rows
        strides = (s_b, s_h, s_w, d_b, d_h, d_w)
    else:
        lines, n, scan = w, h, config.cols
        strides = (s_b, s_w, s_h, d_b, d_w, d_h)
    radius = min(radius, n - 1)
    # A band's line blocks span from a few cells to the whole line: runs are cut from the average
    # span, so that the widest blocks get several programs instead of one that all others wait for.
    extent, typical = (n, n) if band is None else _band_lengths(band, n, scan.block_l)
    line_blocks = cdiv(lines, scan.block_l)
    if config.runs is None:
        target = config.programs_per_sm * _backend.multiprocessor_count(src.device.index)
        runs = max(1, target // max(1, batch * line_blocks))
    else:
        runs = config.runs
    # Each phase of a run reads its outputs, up to 3 radii of warm-up and a partial tile: keep runs
    # at least run_radii / 2 radii and 4 tiles long, so that the extra reads stay a fraction whatever the radius.
    seg_len = max(
        run_length(typical, scan.block_t, runs, config.run_radii * radius),
        min(4 * scan.block_t, round_up(typical, scan.block_t)),
    )
    compute = tl.float64 if src.dtype == torch.float64 else tl.float32
    image = (0, 0) if band is None else (band.h, band.w)
    sets = (0,) * 6 if band is None else band.out + band.src
    _backend.load_kernels()._running_max_kernel[(batch, line_blocks, cdiv(extent, seg_len))](
        src,
        dst,
        *strides,
        lines,
        n,
        radius,
        seg_len,
        *image,
        *sets,
        NEGATE=negate,
        BAND=band is not None,
        ROTATED=rotated,
        COMPUTE=compute,
        BLOCK_T=scan.block_t,
        BLOCK_L=scan.block_l,
        LOG_T=scan.block_t.bit_length() - 1,
        **_triton_meta(src.device, scan),
    )


def _square(mask: torch.Tensor, radius: int, negate: bool, config: ExpandConfig) -> torch.Tensor:
    """Maximum (``negate``: minimum) over the ``(2r + 1)**2`` box clipped to each image of ``mask (B, h, w)``."""
    rows = torch.empty_like(mask, memory_format=torch.contiguous_format)
    _running_max(mask, rows, radius, True, negate, config)
    out = torch.empty_like(mask, memory_format=torch.contiguous_format)
    _running_max(rows, out, radius, False, negate, config)
    return out


def _new_grid(mask: torch.Tensor, half: int) -> torch.Tensor:
    """The rotated grid ``(2B, half, half)`` of ``mask (B, h, w)``, uninitialised: each pass writes its band."""
    return mask.new_empty((mask.shape[0] * 2, half, half))


def _diamond(mask: torch.Tensor, radius: int, negate: bool, config: ExpandConfig) -> torch.Tensor:
    """Maximum (``negate``: minimum) over ``|di| + |dj| <= radius`` clipped to each image; ``radius >= 1``."""
    import triton.language as tl

    batch, h, w = mask.shape
    half = cdiv(h + w + 3, 2)
    m = (radius - 1) // 2
    even = radius % 2 == 0
    # The taps read the grid within L1 distance `reach` of the image; the column windows reach 2m
    # further along u. As (a_u, a_v, b) of D: the row pass writes `need` and reads the pixels; the
    # column pass writes `taps` and reads `need` (fixing v: a_x = a_v, a_y = a_u).
    reach = 2 if even else 1
    taps = (reach, reach, 2 * reach)
    need = (reach + 2 * m, reach, 2 * reach + 2 * m)
    # S_m on the rotated grid: along its rows straight from the image, then along its columns.
    grid = _new_grid(mask, half)
    _running_max(mask, grid, m, True, negate, config, Band(h, w, need, (0, 0, 0)), rotated=True)
    if m > 0:
        rows, grid = grid, _new_grid(mask, half)
        _running_max(rows, grid, m, False, negate, config, Band(h, w, taps, (need[1], need[0], need[2])))
    out = torch.empty_like(mask, memory_format=torch.contiguous_format)
    compute = tl.float64 if mask.dtype == torch.float64 else tl.float32
    _backend.load_kernels()._diamond_taps_kernel[(batch, cdiv(h, config.tile_h), cdiv(w, config.tile_w))](
        grid,
        out,
        *out.stride(),
        h,
        w,
        half,
        EVEN=even,
        NEGATE=negate,
        COMPUTE=compute,
        BLOCK_H=config.tile_h,
        BLOCK_W=config.tile_w,
        **_triton_meta(mask.device, config.tile_warps),
    )
    return out


def expand_mask(mask: torch.Tensor, expand: int, tapered_corners: bool) -> torch.Tensor:
    """The implementation behind the op: ``(B, h, w)`` -> new contiguous ``(B, h, w)``, same dtype and device."""
    if not _backend.uses_triton(mask.device):
        return expand_mask_torch(mask, expand, tapered_corners)
    check_index_range(mask, "mask")
    _, h, w = mask.shape
    radius = min(abs(expand), h + w - 2) if tapered_corners else abs(expand)
    if radius == 0:
        return mask.clone(memory_format=torch.contiguous_format)
    config = GPU_CONFIG if mask.is_cuda else INTERPRETER_CONFIG
    if tapered_corners:
        return _diamond(mask, radius, expand < 0, config)
    return _square(mask, radius, expand < 0, config)


@torch.library.custom_op("inpaint_fused::expand_mask", mutates_args=())
def expand_mask_op(mask: torch.Tensor, expand: int, tapered_corners: bool) -> torch.Tensor:
    """ComfyUI GrowMask of a ``(B, h, w)`` mask: ``(B, h, w)`` in the mask's dtype."""
    return expand_mask(mask, expand, tapered_corners)


@expand_mask_op.register_fake
def _(mask, expand, tapered_corners):
    return mask.new_empty(mask.shape)
