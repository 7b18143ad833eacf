"""Host-side launch arithmetic shared by every kernel family: launch configs, grid sizes, crop geometry, windows."""

from __future__ import annotations

import math
import struct
from typing import NamedTuple, Protocol

import torch

from .. import _backend


class Window(Protocol):
    """A box window ``[j - before, j - before + win)`` per pixel (see ``Morphology``)."""

    win: int
    before: int


class Morphology(NamedTuple):
    """A box window ``[j - before, j - before + win)`` per pixel, dilating or (``invert``) eroding."""

    win: int
    before: int
    invert: bool
    fill_from_grown: bool

    @property
    def grows(self) -> bool:
        return self.win > 1


def core_morphology(grow_mask_by: int) -> Morphology:
    """ComfyUI core: ``g x g`` conv with padding ``ceil((g - 1) / 2)`` cut to size; fill with the ungrown mask."""
    return Morphology(grow_mask_by, math.ceil((grow_mask_by - 1) / 2) if grow_mask_by > 0 else 0, False, False)


def was_morphology(mask_offset: int) -> Morphology:
    """WAS: symmetric ``(2|k| + 1)`` box, dilation for ``k > 0``, erosion for ``k < 0``; fill with the result."""
    k = abs(mask_offset)
    return Morphology(2 * k + 1, k, mask_offset < 0, True)


class LaunchConfig(NamedTuple):
    """Tile shapes and warps of a family's two passes, and how many programs per SM they aim for.

    Every family with a box growth runs a horizontal pass (``rows_*``) into a uint8 scratch and an image
    pass (``fill_*``) over it. ``rows_block_h`` is also the block whose per-column counts the horizontal
    pass stores in bits 2-7 of the scratch (``kernels/common.py``): at most 63.
    """

    rows_block_h: int
    rows_block_w: int
    rows_warps: int
    fill_block_h: int
    fill_block_w: int
    fill_warps: int
    programs_per_sm: int
    # A run of the image pass is at least warm_up / warm_up_share rows long (its warm-up reads are cached
    # 1-byte scratch reads: a short run costs a little cache traffic, too few runs leave SMs idle).
    warm_up_share: int = 2

    def warps(self, device: torch.device, num_warps: int) -> dict[str, int]:
        """Launch keywords for ``num_warps``: none under the interpreter, which takes no warps."""
        return {"num_warps": num_warps} if device.type == "cuda" else {}

    def program_target(self, device: torch.device) -> int:
        """Programs a launch aims for: ``programs_per_sm`` per SM on a GPU, ``programs_per_sm`` in all under the
        interpreter (which runs programs one by one)."""
        if device.type != "cuda":
            return self.programs_per_sm
        index = device.index if device.index is not None else torch.cuda.current_device()
        return self.programs_per_sm * _backend.multiprocessor_count(index)

    def block_counts(self, win: int) -> bool:
        """Whether the horizontal pass stores per-block counts for a window of ``win`` rows: only where summing
        whole blocks beats summing the window's rows (their reduction across the tile costs the pass time)."""
        return win // self.rows_block_h + 2 * self.rows_block_h < win

    def warm_up(self, win: int) -> int:
        """Scratch reads a run of the image pass makes before its first row: about ``win / rows_block_h`` block
        counts and two partial blocks with block counts, else ``win`` rows (``common._window_count``)."""
        return win // self.rows_block_h + 2 * self.rows_block_h if self.block_counts(win) else win


def float32(value: float) -> float:
    """``value`` rounded to float32, as C's cast (a value past float32's range becomes infinite).

    ``h / W`` in double then to float32 is the correctly rounded float32 quotient (53 >= 2 * 24 + 2),
    which is what PyTorch's upsample kernels compute for their scales.
    """
    return pack_round(value, "f")


def pack_round(value: float, code: str) -> float:
    """``value`` through C's cast to the ``struct`` format ``code`` ("f" float32, "e" float16), overflow to inf."""
    try:
        return struct.unpack(code, struct.pack(code, value))[0]
    except OverflowError:  # the cast's result is infinite where the value is not: struct refuses, C gives inf
        return math.copysign(math.inf, value)


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


def run_length(extent: int, block: int, runs_wanted: int, win: int, share: int = 2) -> int:
    """Length of the run of rows (or columns) one program walks: enough runs to fill the device,
    but each at least about ``1 / share`` of the window, whose count every run first sums."""
    runs = max(1, min(cdiv(extent, block), runs_wanted))
    length = round_up(cdiv(extent, runs), block)
    return max(length, min(round_up(win // share, block), round_up(extent, block)))


def check_index_range(tensor: torch.Tensor, name: str) -> None:
    """The kernels index inside one image with 32 bits: refuse an image whose span does not fit."""
    check_span(tuple(tensor.shape), tensor.stride(), name)


def check_span(shape: tuple[int, ...], strides: tuple[int, ...], name: str) -> None:
    """:func:`check_index_range` from a tensor's shape and strides."""
    span = sum((size - 1) * abs(stride) for size, stride in zip(shape[1:], strides[1:], strict=True))
    if span >= 2**31:
        raise ValueError(
            f"{name}: one image of shape {tuple(shape[1:])} spans {span} elements; the kernels index "
            "inside an image with 32 bits (up to 2**31 elements)"
        )
