"""Host-side launch arithmetic shared by every kernel family: grid sizes, crop geometry, windows."""

from __future__ import annotations

import struct
from typing import Protocol

import torch


class Window(Protocol):
    """A box window ``[j - before, j - before + win)`` per pixel (see ``prepare_inpaint.Morphology``)."""

    win: int
    before: int


def float32(value: float) -> float:
    """``value`` rounded to float32.

    ``h / W`` in double then to float32 is the correctly rounded float32 quotient (53 >= 2 * 24 + 2),
    which is what PyTorch's upsample kernels compute for their scales.
    """
    return struct.unpack("f", struct.pack("f", value))[0]


def crop_geometry(height: int, width: int, ratio: int) -> tuple[int, int, int, int]:
    """``(out_h, out_w, off_h, off_w)``: the centre crop of ``height x width`` to multiples of ``ratio``."""
    return height // ratio * ratio, width // ratio * ratio, height % ratio // 2, width % ratio // 2


def clip_window(window: Window, out_h: int, out_w: int) -> tuple[int, int]:
    """Window length and lead clipped to the image: a reach past the far edge changes nothing."""
    reach = max(out_h, out_w)
    before = min(window.before, reach)
    after = min(window.win - 1 - window.before, reach)
    return before + after + 1, before


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def run_length(extent: int, block: int, runs_wanted: int, win: int) -> int:
    """Length of the run of rows (or columns) one program walks: enough runs to fill the device,
    but each at least about half the window, whose count every run first sums."""
    runs = max(1, min(cdiv(extent, block), runs_wanted))
    length = round_up(cdiv(extent, runs), block)
    return max(length, min(round_up(win // 2, block), round_up(extent, block)))


def check_index_range(tensor: torch.Tensor, name: str) -> None:
    """The kernels index inside one image with 32 bits: refuse an image whose span does not fit."""
    span = sum((size - 1) * abs(stride) for size, stride in zip(tensor.shape[1:], tensor.stride()[1:], strict=True))
    if span >= 2**31:
        raise ValueError(
            f"{name}: one image of shape {tuple(tensor.shape[1:])} spans {span} elements; the kernels index "
            "inside an image with 32 bits (up to 2**31 elements)"
        )
