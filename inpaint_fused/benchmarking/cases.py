"""The case table: what a case name means, its sizes, bytes and tier, and its deterministic inputs.

Case names are the spec of the case, so any name that parses can be benchmarked::

    [b<B>x|video<B>x]<H>x<W>[-mask<h>x<w>]-(g<grow> | was<+/-offset>)   prepare suite
    grow-[b<B>x]<H>x<W>-w<box width>                                    grow suite

``b16x1024x1024-g6`` is 16 images sharing one mask; ``video81x480x832-g6`` gives each frame its
own mask. The mask has the image's size unless ``-mask`` says otherwise.

Bytes moved count what the operation must move: each input read once in full, each output written
once.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import torch

RATIO = 8
PREPARE_OUTPUTS = ("f32", "bf16")

# The matrix of issue #4. Tiers follow from the sizes (see Case.tier): "quick" runs everywhere,
# "cpu" on a CPU-only machine without --quick, "gpu" only with a CUDA device.
DEFAULT_CASES = (
    "512x512-g6",
    "509x381-mask96x128-g6",
    "512x512-was+16",
    "512x512-was-16",
    "1024x1024-g6",
    "1024x1024-mask512x512-g6",
    "1023x1021-g6",
    "1024x1024-was+6",
    "1024x1024-was+128",
    "1024x1024-was-128",
    "2048x2048-g6",
    "2048x2048-g64",
    "4096x4096-g6",
    "b16x1024x1024-g6",
    "video16x1024x1024-g6",
    "video81x480x832-g6",
    "grow-512x512-w1",
    "grow-512x512-w6",
    "grow-512x512-w16",
    "grow-512x512-w64",
    "grow-2048x2048-w1",
    "grow-2048x2048-w6",
    "grow-2048x2048-w16",
    "grow-2048x2048-w64",
    "grow-2048x2048-w128",
    "grow-2048x2048-w257",
)

_PREPARE_RE = re.compile(
    r"(?:(?P<kind>b|video)(?P<batch>\d+)x)?(?P<h>\d+)x(?P<w>\d+)"
    r"(?:-mask(?P<mh>\d+)x(?P<mw>\d+))?-(?:g(?P<grow>\d+)|was(?P<offset>[+-]?\d+))"
)
_GROW_RE = re.compile(r"grow-(?:b(?P<batch>\d+)x)?(?P<h>\d+)x(?P<w>\d+)-w(?P<width>\d+)")


@dataclass(frozen=True)
class Case:
    """One benchmark case: a suite, shapes, the operation and (prepare suite) the output kind."""

    name: str
    suite: str
    output: str
    batch: int
    height: int
    width: int
    mask_batch: int
    mask_height: int
    mask_width: int
    op: str
    value: int

    @property
    def id(self) -> str:
        return f"{self.name}:{self.output}" if self.suite == "prepare" else self.name

    @property
    def crop(self) -> tuple[int, int]:
        if self.suite == "grow":
            return self.height, self.width
        return self.height // RATIO * RATIO, self.width // RATIO * RATIO

    @property
    def images(self) -> int:
        """Output images: ``max(B, Bm)`` (one image may pair with several masks)."""
        return max(self.batch, self.mask_batch)

    @property
    def window(self) -> int:
        """Width of the box the mask is grown or eroded by (1: none)."""
        return 2 * abs(self.value) + 1 if self.op == "was" else max(self.value, 1)

    @property
    def vae_dtype(self) -> Optional[torch.dtype]:
        return torch.bfloat16 if self.output == "bf16" else None

    @property
    def pixels(self) -> int:
        """Output pixels over the batch (what megapixels count)."""
        x, y = self.crop
        return self.images * x * y

    @property
    def megapixels(self) -> float:
        return self.pixels / 1e6

    @property
    def input_bytes(self) -> int:
        mask = self.mask_batch * self.mask_height * self.mask_width * 4
        if self.suite == "grow":
            return mask
        return self.batch * self.height * self.width * 3 * 4 + mask

    @property
    def output_bytes(self) -> int:
        x, y = self.crop
        noise = self.mask_batch * x * y * 4
        if self.suite == "grow":
            return noise
        image = self.images * x * y * (3 * 2 if self.output == "bf16" else 3 * 4)
        return image + noise

    @property
    def bytes_moved(self) -> int:
        """Each input read once in full, each output written once."""
        return self.input_bytes + self.output_bytes

    @property
    def memory_budget(self) -> int:
        """The target for peak extra device memory: the outputs plus 1 byte per mask pixel."""
        x, y = self.crop
        return self.output_bytes + self.mask_batch * x * y

    @property
    def conv_cost(self) -> int:
        """Multiply-adds of the original code's ``k x k`` convolution: what makes the reference slow."""
        x, y = self.crop
        return self.mask_batch * x * y * self.window**2

    @property
    def tier(self) -> str:
        """``quick`` (CPU smoke, CI), ``cpu`` (CPU-only full run) or ``gpu`` (needs a CUDA device)."""
        if self.pixels <= 512 * 512 and self.window <= 33:
            return "quick"
        if self.pixels <= 1024 * 1024 and self.window <= 64:
            return "cpu"
        return "gpu"

    def params(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "height": self.height,
            "width": self.width,
            "mask_batch": self.mask_batch,
            "mask_height": self.mask_height,
            "mask_width": self.mask_width,
            "op": self.op,
            "value": self.value,
            "window": self.window,
        }


def parse_case(spec: str) -> list[Case]:
    """Cases named by ``spec``: a case name, optionally with ``:f32`` or ``:bf16`` (default both).

    Raises:
        ValueError: ``spec`` is not a case name (the message shows the grammar).
    """
    name, _, output = spec.strip().partition(":")
    match = _GROW_RE.fullmatch(name)
    if match:
        if output:
            raise ValueError(f"case {spec!r}: the grow suite has one output, drop ':{output}'")
        batch = int(match["batch"] or 1)
        h, w, width = int(match["h"]), int(match["w"]), int(match["width"])
        case = Case(name, "grow", "mask", batch, h, w, batch, h, w, "grow", width)
        _check_sizes(case, spec)
        return [case]
    match = _PREPARE_RE.fullmatch(name)
    if not match:
        raise ValueError(
            f"case {spec!r} does not parse: expected"
            " [b<B>x|video<B>x]<H>x<W>[-mask<h>x<w>]-(g<N>|was<+/-N>)[:f32|:bf16] or grow-[b<B>x]<H>x<W>-w<N>,"
            " e.g. 1024x1024-g6, b16x1024x1024-g6:bf16, 1024x1024-was-128, grow-2048x2048-w64"
        )
    outputs = PREPARE_OUTPUTS if not output else (output,)
    if any(o not in PREPARE_OUTPUTS for o in outputs):
        raise ValueError(f"case {spec!r}: the output must be one of {', '.join(PREPARE_OUTPUTS)}, got {output!r}")
    batch = int(match["batch"] or 1)
    h, w = int(match["h"]), int(match["w"])
    mh, mw = (int(match["mh"]), int(match["mw"])) if match["mh"] else (h, w)
    mask_batch = batch if match["kind"] == "video" else 1
    op, value = ("core", int(match["grow"])) if match["grow"] is not None else ("was", int(match["offset"]))
    cases = [Case(name, "prepare", o, batch, h, w, mask_batch, mh, mw, op, value) for o in outputs]
    _check_sizes(cases[0], spec)
    return cases


def _check_sizes(case: Case, spec: str) -> None:
    if min(case.batch, case.height, case.width, case.mask_height, case.mask_width) < 1:
        raise ValueError(f"case {spec!r}: sizes must be >= 1")
    if case.suite == "prepare" and (case.height < RATIO or case.width < RATIO):
        raise ValueError(f"case {spec!r}: the image must be at least {RATIO}x{RATIO}")


def default_cases() -> list[Case]:
    return [case for spec in DEFAULT_CASES for case in parse_case(spec)]


def select_cases(specs: Sequence[str] = (), tiers: Iterable[str] = ("quick", "cpu", "gpu")) -> list[Case]:
    """The default table cut to ``tiers``, or, when ``specs`` are given, the cases they name.

    A spec with a wildcard (``*``, ``?``, ``[``) picks default cases whose id matches it (whatever the
    tier); any other spec is parsed as a case name, so cases outside the table can be run.
    """
    if not specs:
        tiers = set(tiers)
        return [case for case in default_cases() if case.tier in tiers]
    chosen: dict[str, Case] = {}
    for spec in specs:
        if any(ch in spec for ch in "*?["):
            hits = [case for case in default_cases() if fnmatch.fnmatchcase(case.id, spec)]
            if not hits:
                raise ValueError(f"case pattern {spec!r} matches none of the default cases")
        else:
            hits = parse_case(spec)
        chosen.update((case.id, case) for case in hits)
    return list(chosen.values())


def make_inputs(case: Case, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Deterministic inputs: uniform pixels ``(B, H, W, 3)`` and a mask ``(Bm, h, w)`` of soft blobs.

    The mask has masked, unmasked and in-between (bilinear, rounding) areas, so no path is idle;
    each mask of a batch is shifted. The grow suite takes the mask alone.
    """
    rows = torch.linspace(0, 1, case.mask_height, device=device).view(1, -1, 1)
    cols = torch.linspace(0, 1, case.mask_width, device=device).view(1, 1, -1)
    phase = torch.arange(case.mask_batch, device=device, dtype=torch.float32).view(-1, 1, 1) * 0.37
    wave = torch.sin(cols * 7.1 * math.pi + phase) * torch.cos(rows * 5.3 * math.pi - phase)
    mask = ((wave - 0.1) * 2.5 + 0.5).clamp(0, 1)
    if case.suite == "grow":
        return (mask,)
    generator = torch.Generator(device=device).manual_seed(seed)
    pixels = torch.rand((case.batch, case.height, case.width, 3), generator=generator, device=device)
    return pixels, mask
