"""``expand_mask`` in torch ops only: the decomposition of the Triton kernels, for CPU, MPS and the rest.

Same results as the kernels (values are selected, never computed; NaN propagates) and the same
decomposition: a running maximum is van Herk/Gil-Werman on blocks of the window length, and a
diamond is a square in rotated coordinates (see :mod:`inpaint_fused.ops.expand_mask`). The
maxima from each block's start and to its end are Hillis-Steele scans: ``log2(2r + 1)``
``maximum``s of shifted views, vectorized on every device. ``cummax`` would be O(1) per element
but costs ~100 ns per element on a CPU (it also computes indices), 20x more than 8 scan steps.
"""

from __future__ import annotations

import torch

from .launch import cdiv


def running_max(x: torch.Tensor, dim: int, radius: int) -> torch.Tensor:
    """``max(x[..., j - radius : j + radius + 1, ...])`` along ``dim``, clipped to the tensor; NaN propagates."""
    n = x.shape[dim]
    radius = min(radius, n - 1)
    if radius == 0:
        return x.clone()
    win = 2 * radius + 1
    lines = x.movedim(dim, -1)
    padded = lines.new_full((*lines.shape[:-1], cdiv(n + 2 * radius, win) * win), float("-inf"))
    padded[..., radius : radius + n] = lines
    from_start = padded.unflatten(-1, (-1, win))
    to_end = from_start.clone()
    shift = 1
    while shift < win:
        from_start[..., shift:] = torch.maximum(from_start[..., shift:], from_start[..., :-shift])
        to_end[..., :-shift] = torch.maximum(to_end[..., :-shift], to_end[..., shift:])
        shift *= 2
    from_start, to_end = from_start.flatten(-2), to_end.flatten(-2)
    return torch.maximum(to_end[..., :n], from_start[..., 2 * radius : 2 * radius + n]).movedim(-1, dim)


def square_max(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Maximum over the ``(2r + 1)**2`` box clipped to each ``(..., h, w)`` image."""
    return running_max(running_max(x, -1, radius), -2, radius)


def rotated_index(h: int, w: int, margin: int, device: torch.device) -> tuple[torch.Tensor, int]:
    """Flat index in the rotated grid ``(2, half, half)`` of each pixel of the image padded by ``margin``, and ``half``.

    ``u = i + j + 2``, ``v = i - j + w + 1``; cell ``(u % 2, u // 2, v // 2)``, as the kernels.
    """
    half = cdiv(h + w + 3, 2)
    i = torch.arange(-margin, h + margin, device=device)[:, None]
    j = torch.arange(-margin, w + margin, device=device)[None, :]
    u = i + j + 2
    v = i - j + w + 1
    return (u & 1) * half * half + (u >> 1) * half + (v >> 1), half


CROSS = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))
DIAMOND_2 = (*CROSS, (-2, 0), (2, 0), (0, -2), (0, 2), (-1, -1), (-1, 1), (1, -1), (1, 1))


def diamond_max(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Maximum over ``|di| + |dj| <= radius`` clipped to each image of ``x (B, h, w)``; ``radius >= 1``.

    The image goes to the rotated grid (``-inf`` where no pixel lands), each parity class gets a
    square maximum of ``m`` (``S_m``), ``S_m`` comes back to the pixel grid with a margin of 2,
    and each pixel takes its maximum over the cross (``radius = 2m + 1``) or over the diamond of
    radius 2 (``radius = 2m + 2``): shifted slices.
    """
    batch, h, w = x.shape
    m = (radius - 1) // 2
    index, half = rotated_index(h, w, 2, x.device)
    rotated = x.new_full((batch, 2 * half * half), float("-inf"))
    rotated[:, index[2:-2, 2:-2].flatten()] = x.reshape(batch, h * w)
    grid = square_max(rotated.view(batch * 2, half, half), m).reshape(batch, 2 * half * half)
    # Cells of the margin farther than 2 from the image (its corners) fall outside the grid; no tap reads them.
    padded = grid.index_select(1, index.flatten().clamp(0, 2 * half * half - 1)).view(batch, h + 4, w + 4)
    out = None
    for di, dj in DIAMOND_2 if radius % 2 == 0 else CROSS:
        tap = padded[:, 2 + di : 2 + di + h, 2 + dj : 2 + dj + w]
        out = tap if out is None else torch.maximum(out, tap)
    return out


def expand_mask_torch(mask: torch.Tensor, expand: int, tapered_corners: bool) -> torch.Tensor:
    """``expand_mask`` on ``(B, h, w)``: dilation (``expand > 0``) or erosion, new contiguous tensor."""
    _, h, w = mask.shape
    radius = abs(expand)
    if tapered_corners:
        radius = min(radius, h + w - 2)
    if radius == 0:
        return mask.clone(memory_format=torch.contiguous_format)
    x = -mask if expand < 0 else mask
    out = diamond_max(x, radius) if tapered_corners else square_max(x, radius)
    return (-out if expand < 0 else out).contiguous()
