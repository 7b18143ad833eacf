"""Benchmark core: the case table, the providers, timing, bytes accounting, results JSON and reports.

One module serves ``inpaint-fused bench``, the pytest-benchmark files in ``bench/`` and
``inpaint-fused report``, so the numbers in the README and in a terminal come from the same code.

Two suites:

- ``prepare``: the whole preprocessing (:func:`~inpaint_fused.prepare_inpaint`,
  :func:`~inpaint_fused.prepare_inpaint_was`) for the plain output (``f32``: gray-filled NHWC
  float32) and for the VAE input (``bf16``: NCHW ``2p - 1`` bfloat16). Providers: ``fused`` (this
  package on the run device), ``reference-gpu`` (the seed code, eager, on the same GPU),
  ``reference-cpu`` (the seed code on the CPU with all threads: what a default ComfyUI runs today),
  ``torch.compile`` (of the seed code, compile time reported apart) and ``copy`` (a device-to-device
  copy of the same byte count: the roofline).
- ``grow``: the mask operation alone (:func:`~inpaint_fused.grow_mask`) against the ways torch
  offers to dilate a binary mask: ``conv2d`` (the seed's), ``max_pool2d``, ``kornia`` (when
  installed and when its ``k x k`` unfold fits in memory) and ``copy``.

Case names are the spec of the case, so any name that parses can be benchmarked::

    [b<B>x|video<B>x]<H>x<W>[-mask<h>x<w>]-(g<grow> | was<+/-offset>)   prepare suite
    grow-[b<B>x]<H>x<W>-w<box width>                                    grow suite

``b16x1024x1024-g6`` is 16 images sharing one mask; ``video81x480x832-g6`` gives each frame its
own mask. The mask has the image's size unless ``-mask`` says otherwise.

Bytes moved count what the operation must move: each input read once in full, each output written
once. GB/s is those bytes over the median time, and the roofline fraction compares it with a
device-to-device copy measured once per run (bytes read + bytes written over its median time).
"""

from __future__ import annotations

import contextlib
import datetime
import fnmatch
import hashlib
import itertools
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F

from . import _backend, reference
from .api import grow_mask, prepare_inpaint, prepare_inpaint_was

SCHEMA = "inpaint-fused-bench/1"
RATIO = 8
README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"
DIFFUSERS_START = "<!-- bench-diffusers:start -->"
DIFFUSERS_END = "<!-- bench-diffusers:end -->"

PREPARE_PROVIDERS = ("fused", "reference-gpu", "reference-cpu", "torch.compile", "copy")
GROW_PROVIDERS = ("fused", "conv2d", "max_pool2d", "kornia", "copy")
PROVIDERS = tuple(dict.fromkeys(PREPARE_PROVIDERS + GROW_PROVIDERS))
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

# Rotating input copies: enough that the inputs of consecutive runs overflow the L2 cache (H100: 50 MiB)
# twice over, within a memory cap. do_bench also clears L2 before each run; this keeps the CPU honest too.
_ROTATE_BYTES = 128 << 20
_ROTATE_CAP_BYTES = 1 << 30
_ROTATE_MAX = 16
_SLOW_MS = 20.0


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
        """Multiply-adds of the seed's ``k x k`` convolution: what makes the reference slow."""
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


# ---------------------------------------------------------------------------------------------
# Inputs and providers


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


def _reference_prepare(case: Case) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """The seed code for ``case``: crop, grow/modify, gray fill, then (bf16) the VAE's ``2p - 1`` cast."""
    encode = reference.was_vae_encode_for_inpaint if case.op == "was" else reference.vae_encode_for_inpaint
    value, dtype = case.value, case.vae_dtype

    def run(pixels: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, noise = encode(pixels, mask, value, RATIO)
        return (out if dtype is None else reference.vae_input(out, dtype)), noise

    return run


def _fused_prepare(case: Case) -> Callable[..., Any]:
    prepare = prepare_inpaint_was if case.op == "was" else prepare_inpaint
    value, dtype = case.value, case.vae_dtype
    return lambda pixels, mask: prepare(pixels, mask, value, downscale_ratio=RATIO, vae_dtype=dtype)


def _conv2d_grow(width: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The seed's growth: round, ``k x k`` conv of ones, clamp, cut to size, round."""

    def run(mask: torch.Tensor) -> torch.Tensor:
        h, w = mask.shape[-2:]
        return reference.grow_mask(mask.unsqueeze(1), width)[:, :, :h, :w].round()

    return run


def _max_pool_grow(width: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The same box dilation as a max filter; even widths cut like the seed (``g/2 - 1`` up/left)."""
    padding = math.ceil((width - 1) / 2)

    def run(mask: torch.Tensor) -> torch.Tensor:
        h, w = mask.shape[-2:]
        return F.max_pool2d(mask.unsqueeze(1).round(), width, stride=1, padding=padding)[:, :, :h, :w]

    return run


def _kornia_grow(width: int, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """kornia's dilation with a ``k x k`` box and its defaults (its own origin for even widths)."""
    from kornia.morphology import dilation

    kernel = torch.ones((width, width), device=device)
    return lambda mask: dilation(mask.unsqueeze(1).round(), kernel)


class Skip(Exception):
    """A provider that does not apply to a case here; the message says why."""


@dataclass
class Prepared:
    """A provider bound to a case: ``call()`` runs it once on the next rotating input copy."""

    call: Callable[[], Any]
    device: torch.device
    compile_s: Optional[float] = None
    note: str = ""

    def synchronized(self) -> Any:
        result = self.call()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return result


def _rotating(fn: Callable[..., Any], copies: list[tuple[torch.Tensor, ...]]) -> Callable[[], Any]:
    cycle = itertools.cycle(copies)
    return lambda: fn(*next(cycle))


def _rotation_count(case: Case) -> int:
    need = math.ceil(_ROTATE_BYTES / max(case.input_bytes, 1))
    return max(1, min(_ROTATE_MAX, need, _ROTATE_CAP_BYTES // max(case.input_bytes, 1)))


def _kornia_available() -> bool:
    try:
        import kornia.morphology  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Timing


def time_cuda(fn: Callable[[], Any], budget_s: float) -> list[float]:
    """Per-run milliseconds on the GPU by CUDA events.

    Fast functions go through ``triton.testing.do_bench`` (warm-up, L2 cleared before every run,
    ``budget_s`` of timed runs); one whose first timed run exceeds 20 ms gets a few event-timed runs
    within the budget, so a multi-second baseline costs seconds, not minutes.
    """
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    first = start.elapsed_time(end)
    if first <= _SLOW_MS:
        from triton.testing import do_bench

        budget_ms = budget_s * 1e3
        return list(do_bench(fn, warmup=max(1.0, budget_ms / 4), rep=budget_ms, return_mode="all"))
    times = [first]
    while sum(times) + times[-1] <= budget_s * 1e3 and len(times) < 10:
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return times


def time_cpu(fn: Callable[[], Any], budget_s: float, max_reps: int = 100) -> list[float]:
    """Per-run milliseconds on the CPU by ``time.perf_counter``: a warm-up, then runs within the budget.

    A function whose warm-up alone exceeds the budget (the seed's large convolutions: tens of
    seconds) is not run again: that one run, one-time costs included, is the sample.
    """
    start = time.perf_counter()
    fn()
    first = (time.perf_counter() - start) * 1e3
    if first > budget_s * 1e3:
        return [first]
    times: list[float] = []
    while not times or (sum(times) + times[-1] <= budget_s * 1e3 and len(times) < max_reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def time_fn(fn: Callable[[], Any], device: torch.device, budget_s: float) -> list[float]:
    return time_cuda(fn, budget_s) if device.type == "cuda" else time_cpu(fn, budget_s)


def peak_extra_memory(fn: Callable[[], Any], device: torch.device) -> Optional[int]:
    """Bytes the device allocator peaked at above what was allocated before one call (outputs included)."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    result = fn()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - before
    del result
    return int(peak)


def copy_bandwidth(device: torch.device, nbytes: Optional[int] = None) -> dict[str, Any]:
    """The roofline: a device-to-device copy of ``nbytes`` (default 512 MiB on a GPU, 128 MiB on CPU).

    Returns ``{"gbps", "bytes", "median_ms"}`` where ``gbps`` counts bytes read plus bytes written.
    """
    if nbytes is None:
        nbytes = (512 << 20) if device.type == "cuda" else (128 << 20)
    src = torch.ones(nbytes, dtype=torch.uint8, device=device)
    dst = torch.zeros_like(src)
    if device.type == "cuda":
        times = time_cuda(lambda: dst.copy_(src), 0.2)
    else:
        dst.copy_(src)
        times = []
        for _ in range(7):
            start = time.perf_counter()
            dst.copy_(src)
            times.append((time.perf_counter() - start) * 1e3)
    median_ms = statistics.median(times)
    return {"gbps": 2 * nbytes / (median_ms * 1e-3) / 1e9, "bytes": nbytes, "median_ms": median_ms}


# ---------------------------------------------------------------------------------------------
# Environment


def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def git_commit() -> tuple[Optional[str], Optional[bool]]:
    """``(commit, dirty)`` of the checkout the package runs from; ``INPAINT_FUSED_COMMIT`` overrides
    (a copied work tree without ``.git``, as on the GPU machine)."""
    override = os.environ.get("INPAINT_FUSED_COMMIT")
    if override:
        return override, None
    if not (_repo_root() / ".git").exists():  # an installed package: git would name some enclosing repository
        return None, None

    def git(*args: str) -> str:
        command = ["git", "-C", str(_repo_root()), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=10, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, dirty


def source_hash() -> str:
    """SHA-256 over the package's and the kernels' Python sources: names the code where git cannot."""
    digest = hashlib.sha256()
    roots = [Path(__file__).resolve().parent]
    with contextlib.suppress(Exception):
        roots.append(Path(_backend.load_kernels().__file__).resolve().parent)
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root.parent).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def available_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def fused_backend(device: torch.device) -> str:
    """What the ``fused`` provider runs on ``device``: the Triton kernels, the interpreter, or the reference."""
    if not _backend.uses_triton(device):
        return "the pure-torch path"
    return "triton-interpreter" if device.type == "cpu" else "triton"


def environment(device: torch.device) -> dict[str, Any]:
    commit, dirty = git_commit()
    meta: dict[str, Any] = {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device.type,
        "gpu": None,
        "gpu_memory_gib": None,
        "cuda": torch.version.cuda,
        "cpu": _cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "triton": None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit,
        "commit_dirty": dirty,
        "source_hash": source_hash(),
        "fused_backend": fused_backend(device),
    }
    with contextlib.suppress(ImportError):
        import triton

        meta["triton"] = triton.__version__
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        meta["gpu"] = props.name
        meta["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
    return meta


# ---------------------------------------------------------------------------------------------
# The runner


def _phase(provider: str) -> int:
    # Device-side providers first, torch.compile next (bf16 outputs first), the CPU reference last
    # (cheapest first): a run cut short by its time limit loses the slowest baselines, not the
    # project's own numbers.
    return {"torch.compile": 1, "reference-cpu": 2}.get(provider, 0)


def providers_for(case: Case) -> tuple[str, ...]:
    return PREPARE_PROVIDERS if case.suite == "prepare" else GROW_PROVIDERS


def needs_gpu(case: Case, provider: str) -> bool:
    """Whether the pair is a GPU measurement (marked ``gpu`` in ``bench/``): a GPU-sized case or the
    eager reference on the GPU."""
    return case.tier == "gpu" or provider == "reference-gpu"


@dataclass
class Runner:
    """Measures (case, provider) pairs on one device and keeps the records, optionally saved as JSON.

    ``budget_s`` is the timed time per measurement (GPU: ``do_bench``'s ``rep``); ``time_limit_s``
    skips what is left once that much wall time has passed (records say so); ``compile_on_cpu``
    lets ``torch.compile`` run on a CPU-only machine, where it is skipped by default.
    """

    device: torch.device
    budget_s: float = 0.5
    time_limit_s: Optional[float] = None
    json_path: Optional[Path] = None
    quick: bool = False
    compile_on_cpu: bool = False
    argv: Optional[list[str]] = None
    records: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    _copy: dict[str, dict[str, Any]] = field(default_factory=dict)
    _inputs: dict[str, tuple[str, list[tuple[torch.Tensor, ...]]]] = field(default_factory=dict)
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        torch.set_num_threads(available_cpus())
        self.meta = environment(self.device)
        self.meta.update(
            quick=self.quick,
            budget_s=self.budget_s,
            time_limit_s=self.time_limit_s,
            complete=False,
            argv=self.argv,
            copy={},
        )

    # -- roofline and inputs

    def roofline(self, device: torch.device) -> dict[str, Any]:
        if device.type not in self._copy:
            self._copy[device.type] = copy_bandwidth(device)
            self.meta["copy"] = dict(self._copy)
        return self._copy[device.type]

    def inputs(self, case: Case, device: torch.device) -> list[tuple[torch.Tensor, ...]]:
        """Rotating copies of the case's inputs on ``device``; one case per device is kept."""
        key = f"{case.name}@{device}"
        cached = self._inputs.get(device.type)
        if cached is not None and cached[0] == key:
            return cached[1]
        self._inputs.pop(device.type, None)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        first = make_inputs(case, device)
        copies = [first] + [tuple(t.clone() for t in first) for _ in range(_rotation_count(case) - 1)]
        self._inputs[device.type] = (key, copies)
        return copies

    def release(self) -> None:
        self._inputs.clear()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    # -- providers

    def provider_device(self, provider: str) -> torch.device:
        return torch.device("cpu") if provider == "reference-cpu" else self.device

    def check(self, case: Case, provider: str) -> None:
        """Raise :class:`Skip` with the reason when ``provider`` does not run for ``case`` here."""
        if provider not in providers_for(case):
            raise Skip(f"{provider} is not a provider of the {case.suite} suite")
        if provider == "reference-gpu" and self.device.type != "cuda":
            raise Skip("no CUDA GPU: the eager reference runs on the CPU (reference-cpu)")
        if provider == "torch.compile":
            if self.quick:
                raise Skip("--quick leaves torch.compile out: it compiles every shape anew (seconds each)")
            if self.device.type == "cpu" and not self.compile_on_cpu:
                raise Skip(
                    "torch.compile on a CPU-only machine is left out: Inductor's C++ build takes about a minute"
                    " for the first graph and ~15 s per shape on 2 cores; --providers torch.compile asks for it"
                )
        if provider == "kornia":
            if not _kornia_available():
                raise Skip("kornia is not installed (pip install kornia)")
            if self.device.type == "cuda":
                # kornia's CUDA engine unfolds every k x k window: B*H*W*k*k float32 values.
                need = 4 * case.mask_batch * case.height * case.width * case.window**2
                free, _ = torch.cuda.mem_get_info(self.device)
                if need > 0.6 * free:
                    raise Skip(f"kornia's unfold needs {need / 2**30:.0f} GiB, {free / 2**30:.0f} GiB free")
        if self.time_limit_s is not None and time.monotonic() - self._started > self.time_limit_s:
            raise Skip(f"time limit of {self.time_limit_s:.0f} s reached (--time-limit)")

    def prepare(self, case: Case, provider: str) -> Prepared:
        """Bind ``provider`` to ``case``: inputs made, torch.compile compiled (timed apart)."""
        self.check(case, provider)
        device = self.provider_device(provider)
        if provider == "copy":
            nbytes = max(case.bytes_moved // 2, 1)
            src = torch.ones(nbytes, dtype=torch.uint8, device=device)
            dst = torch.zeros_like(src)
            return Prepared(lambda: dst.copy_(src), device, note=f"{nbytes} bytes read and written")
        copies = self.inputs(case, device)
        if case.suite == "grow":
            fn = {
                "fused": lambda mask: grow_mask(mask, case.value),
                "conv2d": _conv2d_grow(case.value),
                "max_pool2d": _max_pool_grow(case.value),
                "kornia": _kornia_grow(case.value, device) if provider == "kornia" else None,
            }[provider]
            return Prepared(_rotating(fn, copies), device)
        if provider == "fused":
            return Prepared(_rotating(_fused_prepare(case), copies), device, note=fused_backend(device))
        if provider in ("reference-gpu", "reference-cpu"):
            return Prepared(_rotating(_reference_prepare(case), copies), device)
        torch.compiler.reset()
        compiled = torch.compile(_reference_prepare(case), dynamic=False)
        start = time.perf_counter()
        compiled(*copies[0])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return Prepared(_rotating(compiled, copies), device, compile_s=time.perf_counter() - start)

    # -- measuring

    def record(self, case: Case, provider: str, **values: Any) -> dict[str, Any]:
        device = self.provider_device(provider)
        rec: dict[str, Any] = {
            "suite": case.suite,
            "case": case.name,
            "output": case.output,
            "id": case.id,
            "provider": provider,
            "device": device.type,
            "status": "ok",
            "reason": None,
            "median_ms": None,
            "q25_ms": None,
            "q75_ms": None,
            "reps": 0,
            "timer": "cuda-events" if device.type == "cuda" else "perf_counter",
            "bytes_moved": case.bytes_moved,
            "gbps": None,
            "roofline_fraction": None,
            "megapixels": case.megapixels,
            "output_bytes": case.output_bytes,
            "memory_budget_bytes": case.memory_budget,
            "peak_extra_bytes": None,
            "compile_s": None,
            "note": None,
            "params": case.params(),
        }
        rec.update(values)
        self.records.append(rec)
        if self.json_path is not None:
            self.save(self.json_path)
        return rec

    def measure(self, case: Case, provider: str, prepared: Optional[Prepared] = None) -> dict[str, Any]:
        """Time ``provider`` on ``case`` and return (and keep) its record; never raises for the provider."""
        try:
            if prepared is None:
                prepared = self.prepare(case, provider)
            roofline = self.roofline(prepared.device)
            times = time_fn(prepared.call, prepared.device, self.budget_s)
            peak = peak_extra_memory(prepared.call, prepared.device)
        except Skip as skip:
            return self.record(case, provider, status="skipped", reason=str(skip))
        except torch.cuda.OutOfMemoryError:
            self.release()
            return self.record(case, provider, status="skipped", reason="out of GPU memory")
        except Exception as error:  # a failing baseline is a result too; the run goes on
            return self.record(case, provider, status="error", reason=f"{type(error).__name__}: {error}"[:500])
        median = statistics.median(times)
        quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [median, median, median]
        gbps = case.bytes_moved / (median * 1e-3) / 1e9
        return self.record(
            case,
            provider,
            median_ms=median,
            q25_ms=quartiles[0],
            q75_ms=quartiles[2],
            reps=len(times),
            gbps=gbps,
            roofline_fraction=gbps / roofline["gbps"],
            peak_extra_bytes=peak,
            compile_s=prepared.compile_s,
            note=prepared.note or None,
        )

    def plan(self, cases: Sequence[Case], providers: Optional[Sequence[str]] = None) -> list[tuple[Case, str]]:
        pairs = [(case, p) for case in cases for p in providers_for(case) if providers is None or p in providers]
        order = {case.id: i for i, case in enumerate(cases)}

        def rank(pair: tuple[Case, str]) -> tuple[int, int, int]:
            case, provider = pair
            if provider == "reference-cpu":
                return _phase(provider), case.conv_cost, order[case.id]
            if provider == "torch.compile":  # the VAE-input outputs are the headline comparison
                return _phase(provider), case.output != "bf16", order[case.id]
            return _phase(provider), 0, order[case.id]

        return sorted(pairs, key=rank)

    def run(
        self, cases: Sequence[Case], providers: Optional[Sequence[str]] = None, progress: str = "bar"
    ) -> list[dict[str, Any]]:
        """Measure every (case, provider) pair of ``cases``.

        ``progress``: ``"bar"`` (tqdm on stderr; lines when tqdm is missing), ``"lines"`` (one line per
        measurement on stderr, for logs) or ``"none"``.
        """
        plan = self.plan(cases, providers)
        bar = None
        if progress == "bar":
            try:
                from tqdm import tqdm
            except ImportError:
                progress = "lines"
            else:
                bar = tqdm(total=len(plan), desc="bench", unit="run", file=sys.stderr)
        for i, (case, provider) in enumerate(plan):
            if bar is not None:
                bar.set_postfix_str(f"{case.id} {provider}", refresh=True)
            rec = self.measure(case, provider)
            if bar is not None:
                bar.update()
            elif progress == "lines":
                done = format_time(rec["median_ms"]) if rec["status"] == "ok" else f"{rec['status']}: {rec['reason']}"
                print(f"[{i + 1}/{len(plan)}] {case.id} {provider}: {done}", file=sys.stderr, flush=True)
        if bar is not None:
            bar.close()
        self.release()
        self.meta["complete"] = True
        if self.json_path is not None:
            self.save(self.json_path)
        return self.records

    def results(self) -> dict[str, Any]:
        return {"meta": self.meta, "results": self.records}

    def save(self, path: Path) -> None:
        """Write the results JSON atomically (a run killed mid-way leaves the last complete file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.results(), indent=1, default=str) + "\n")
        os.replace(tmp, path)


def default_budget(device: torch.device, quick: bool) -> float:
    if device.type == "cuda":
        return 0.05 if quick else 0.1
    return 0.25 if quick else 1.0


# ---------------------------------------------------------------------------------------------
# Results files


def load_results(paths: Sequence[Path | str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Merge results files: ``inpaint-fused bench --json`` output or pytest-benchmark's ``--benchmark-json``.

    Later files override earlier ones per (case, provider), except that a skipped or failed record
    never replaces a measured one. Files from different GPUs are refused.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: a file is not a results file, or the files come from different devices.
    """
    meta: dict[str, Any] = {}
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    sources = []
    for path in map(Path, paths):
        if not path.is_file():
            raise FileNotFoundError(f"no such results file: {path}")
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} is not a JSON results file: {error}") from error
        if isinstance(data, dict) and "benchmarks" in data:
            file_meta = data.get("inpaint_fused") or {}
            records = [b.get("extra_info", {}) for b in data["benchmarks"]]
            records = [r for r in records if "provider" in r and "id" in r]
        elif isinstance(data, dict) and isinstance(data.get("meta"), dict) and isinstance(data.get("results"), list):
            file_meta, records = data["meta"], data["results"]
        else:
            raise ValueError(f"{path} is neither an inpaint-fused results file nor a pytest-benchmark JSON")
        if file_meta.get("schema", SCHEMA) != SCHEMA:
            raise ValueError(f"{path}: results schema {file_meta.get('schema')!r}, this version reads {SCHEMA!r}")
        if meta and (file_meta.get("device"), file_meta.get("gpu")) != (meta.get("device"), meta.get("gpu")):
            raise ValueError(
                f"{path} was measured on {file_meta.get('gpu') or file_meta.get('device')}, the first file on"
                f" {meta.get('gpu') or meta.get('device')}: report them apart"
            )
        if not meta:
            meta = dict(file_meta, copy=dict(file_meta.get("copy") or {}))
        else:
            meta["copy"].update(file_meta.get("copy") or {})
            meta["complete"] = meta.get("complete", True) and file_meta.get("complete", True)
            if file_meta.get("commit") != meta.get("commit"):
                meta["commits_differ"] = True
        for rec in records:
            key = (rec["id"], rec["provider"])
            if rec.get("status") == "ok" or merged.get(key, {}).get("status") != "ok":
                merged[key] = rec
        sources.append(path.name)
    meta["sources"] = sources
    return meta, list(merged.values())


# ---------------------------------------------------------------------------------------------
# Tables


def format_time(ms: Optional[float]) -> str:
    if ms is None:
        return "—"
    if ms < 1:
        return f"{ms * 1e3:.3g} µs"
    if ms < 1e3:
        return f"{ms:.3g} ms"
    return f"{ms / 1e3:.3g} s"


def _speedup(other: Optional[dict[str, Any]], fused: Optional[dict[str, Any]]) -> str:
    if not other or not fused or other.get("status") != "ok" or fused.get("status") != "ok":
        return "—"
    ratio = other["median_ms"] / fused["median_ms"]
    return f"{ratio:.3g}×" if ratio < 1000 else f"{ratio:,.0f}×"


def _cell(rec: Optional[dict[str, Any]], notes: dict[str, int]) -> str:
    if rec is None:
        return "—"
    if rec.get("status") == "ok":
        return format_time(rec["median_ms"])
    reason = f"{rec['provider']}: {rec.get('reason')}"
    number = notes.setdefault(reason, len(notes) + 1)
    return f"{rec.get('status')} ({number})"


def tables(records: Sequence[dict[str, Any]]) -> list[tuple[str, list[str], list[list[str]], dict[str, int]]]:
    """One table per suite: ``(title, header, rows, notes)``; providers as columns, fused's figures after.

    A provider measured nowhere gets no column; the notes say why it did not run.
    """
    out = []
    for suite, providers in (("prepare", PREPARE_PROVIDERS), ("grow", GROW_PROVIDERS)):
        recs = [r for r in records if r.get("suite") == suite]
        if not recs:
            continue
        by_case: dict[str, dict[str, dict[str, Any]]] = {}
        for rec in recs:
            by_case.setdefault(rec["id"], {})[rec["provider"]] = rec
        notes: dict[str, int] = {}
        shown = []
        for p in providers:
            mine = [row[p] for row in by_case.values() if p in row]
            if any(r.get("status") == "ok" for r in mine):
                shown.append(p)
            elif mine:
                for reason in dict.fromkeys(str(r.get("reason")) for r in mine):
                    notes.setdefault(f"{p} not run: {reason}", len(notes) + 1)
        baselines = [p for p in shown if p not in ("fused", "copy")]
        header = ["case", "MP", *shown, "fused GB/s", "% of copy", *(f"vs {p}" for p in baselines)]
        if suite == "prepare":
            header += ["compile", "mem / budget"]
        rows = []
        for case_id, row in by_case.items():
            fused = row.get("fused")
            ok = fused is not None and fused.get("status") == "ok"
            any_rec = next(iter(row.values()))
            cells = [case_id, f"{any_rec['megapixels']:.3g}", *(_cell(row.get(p), notes) for p in shown)]
            cells.append(f"{fused['gbps']:.3g}" if ok else "—")
            cells.append(f"{100 * fused['roofline_fraction']:.3g} %" if ok else "—")
            cells += [_speedup(row.get(p), fused) for p in baselines]
            if suite == "prepare":
                compiled = row.get("torch.compile")
                cells.append(f"{compiled['compile_s']:.1f} s" if compiled and compiled.get("compile_s") else "—")
                peak = fused.get("peak_extra_bytes") if ok else None
                cells.append(f"{peak / fused['memory_budget_bytes']:.2f}" if peak is not None else "—")
            rows.append(cells)
        title = "Whole preprocessing" if suite == "prepare" else "Mask growth alone (grow_mask) by box width"
        out.append((title, header, rows, notes))
    return out


def describe(meta: dict[str, Any]) -> str:
    """One line naming where and on what code the numbers were measured."""
    device = meta.get("gpu") or f"CPU only ({meta.get('cpu')})"
    commit = (meta.get("commit") or "unknown commit")[:10]
    if meta.get("commit_dirty"):
        commit += " (uncommitted changes)"
    if meta.get("commits_differ"):
        commit += " (files from several commits)"
    parts = [
        device,
        f"torch {meta.get('torch')}",
        f"triton {meta.get('triton')}",
        f"commit {commit}",
        f"source {meta.get('source_hash')}",
        f"CPU reference: {meta.get('cpu_threads')} threads of {meta.get('cpu')}",
    ]
    copy = meta.get("copy") or {}
    for dev, info in copy.items():
        parts.append(f"{dev} copy {info['gbps']:.0f} GB/s")
    if meta.get("device") == "cpu":
        parts.append(f"fused runs: {meta.get('fused_backend')}")
    if not meta.get("complete", True):
        parts.append("INCOMPLETE run")
    return " · ".join(parts)


def render_text(meta: dict[str, Any], records: Sequence[dict[str, Any]]) -> str:
    """Aligned plain-text tables for a terminal."""
    lines = [describe(meta), ""]
    for title, header, rows, notes in tables(records):
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        lines.append(title)
        for cells in (header, *rows):
            padded = (c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
            lines.append("  ".join(padded))
        lines += [f"  ({n}) {reason}" for reason, n in notes.items()]
        lines.append("")
    return "\n".join(lines)


def render_markdown(meta: dict[str, Any], records: Sequence[dict[str, Any]], plot: Optional[str] = None) -> str:
    """Markdown tables (for the README) with the environment line, footnotes and an optional plot."""
    lines = [
        f"_Generated by `inpaint-fused report` from {', '.join(meta.get('sources', [])) or 'a run'};"
        " do not edit by hand._",
        "",
        describe(meta),
        "",
        "Times are medians; speed-ups are the other provider's time over fused's. `% of copy` is fused's"
        " GB/s (each input read once, each output written once) over a device-to-device copy's;"
        " `mem / budget` is fused's peak extra memory over its outputs plus 1 byte per pixel.",
        "",
    ]
    for title, header, rows, notes in tables(records):
        lines += [f"**{title}**", "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines += [""] + [f"{n}. {reason}" for reason, n in notes.items()]
        lines.append("")
    if plot:
        lines += [f"![benchmark plots]({plot})", ""]
    return "\n".join(lines).rstrip() + "\n"


def update_readme(readme: Path, block: str, markers: tuple[str, str] = (README_START, README_END)) -> None:
    """Replace the text between the ``markers`` (``<!-- bench:start -->`` and ``<!-- bench:end -->``) in ``readme``.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    text = readme.read_text()
    start, end = text.find(markers[0]), text.find(markers[1])
    if start < 0 or end < start:
        raise ValueError(f"{readme} has no {markers[0]} ... {markers[1]} block to fill")
    readme.write_text(text[: start + len(markers[0])] + "\n" + block + text[end:])




def render_diffusers_markdown(path: Path) -> str:
    """Markdown tables from a ``pytest bench/bench_diffusers.py --benchmark-json`` file.

    Raises:
        ValueError: the file is not such a results file.
    """
    try:
        data = json.loads(Path(path).read_text())
        environment, benchmarks = data["environment"], data["benchmarks"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a bench_diffusers.py --benchmark-json file: {error}") from error
    preprocess: dict[tuple[str, int, str, str], dict[str, float]] = {}
    calls: dict[str, dict[str, Any]] = {}
    ops: list[dict[str, Any]] = []
    difference = None
    for bench in benchmarks:
        info, median_ms = bench.get("extra_info", {}), bench["stats"]["median"] * 1e3
        if environment.get("gpu") and info.get("device") == "cpu":
            continue  # the CPU smoke case of a GPU run
        if bench["name"].startswith("test_preprocess"):
            key = (info["pipeline"], info["size"], info["dtype"].replace("torch.", ""), info.get("inputs", "pil"))
            preprocess.setdefault(key, {})[info["provider"]] = median_ms
        elif bench["name"].startswith("test_op"):
            ops.append(info)
        elif bench["name"].startswith("test_pipeline_call"):
            calls = {name: {**info, **info[name]} for name in ("stock", "fused") if name in info}
            difference = info.get("max_abs_latent_difference")
    lines = [
        f"_Generated by `inpaint-fused report --diffusers` from {Path(path).name}; do not edit by hand._",
        "",
        describe(environment) + f" · diffusers {environment.get('diffusers')}",
        "",
        "From the user's image and mask (PIL, or CPU float tensors at the processed size) to the VAE's"
        " input and the mask on the device, median ms:",
        "",
        "| mask step | size | dtype | inputs | stock | fused | stock / fused |",
        "|---|---|---|---|---|---|---|",
    ]
    names = {"sd": "SD / SDXL / Flux inpaint", "flux-fill": "Flux Fill"}
    order = sorted(preprocess.items(), key=lambda kv: (kv[0][0] != "sd", kv[0][1], kv[0][3] != "pil"))
    for (pipeline, size, dtype, inputs), times in order:
        cells = [f"{times[p]:.2f}" if p in times else "" for p in ("stock", "fused")]
        ratio = f"{times['stock'] / times['fused']:.1f}x" if {"stock", "fused"} <= times.keys() else ""
        row = [names.get(pipeline, pipeline), f"{size}²", dtype, "PIL" if inputs == "pil" else inputs, *cells, ratio]
        lines.append("| " + " | ".join(row) + " |")
    if ops:
        lines += [
            "",
            "The kernel alone (`prepare_masked_image` on GPU tensors, float32 in, bfloat16 out; bytes are"
            " each input read once and each output written once):",
            "",
            "| images | size | formula | median | GB/s | % of copy |",
            "|---|---|---|---|---|---|",
        ]
        for op in ops:
            lines.append(
                f"| {op['batch']} | {op['size']}² | `{op['formula']}` | {op['median_ms'] * 1e3:.1f} µs |"
                f" {op['gbps']:.0f} | {op['fraction_of_copy'] * 100:.1f} % |"
            )
    if calls:
        any_call = next(iter(calls.values()))
        lines += [
            "",
            f"Whole calls of an SD-1.5-sized fp16 inpaint pipeline (random weights), {any_call['size']}²,"
            f" {any_call['steps']} DDIM steps, latents out, stock and fused alternately on one pipeline:",
            "",
            "| pipeline | call (median ms) | preprocessing (ms) | preprocessing share |",
            "|---|---|---|---|",
        ]
        for provider in ("stock", "fused"):
            if provider in calls:
                call = calls[provider]
                lines.append(
                    f"| {provider} | {call['median_s'] * 1e3:.1f} | {call['preprocess_s'] * 1e3:.2f} |"
                    f" {call['preprocess_share'] * 100:.2f} % |"
                )
        if difference is not None:
            lines += ["", f"Largest difference between the stock and fused latents: {difference:g}."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Plots


class PlotUnavailable(RuntimeError):
    """matplotlib is missing: plots are an optional extra."""


def plot(meta: dict[str, Any], records: Sequence[dict[str, Any]], path: Path) -> None:
    """Two panels into one PNG: time vs megapixels (core node, grow 6, provider lines; solid bf16 VAE
    output, dashed f32) and time vs box width (mask growth alone).

    Raises:
        PlotUnavailable: matplotlib is not installed.
        ValueError: no measured record to plot.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise PlotUnavailable("plots need matplotlib: pip install 'inpaint-fused[plot]'") from error
    ok = [r for r in records if r.get("status") == "ok"]
    if not ok:
        raise ValueError("no measured result to plot")
    colors = {p: f"C{i}" for i, p in enumerate(PROVIDERS)}
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2))
    sized = [
        r
        for r in ok
        if r["suite"] == "prepare"
        and r["params"]["op"] == "core"
        and r["params"]["value"] == 6
        and (r["params"]["mask_height"], r["params"]["mask_width"]) == (r["params"]["height"], r["params"]["width"])
    ]
    for provider in PREPARE_PROVIDERS:
        for output, style in (("bf16", "-"), ("f32", "--")):
            pts = sorted(
                (r["megapixels"], r["median_ms"]) for r in sized if r["provider"] == provider and r["output"] == output
            )
            if pts:
                left.plot(
                    *zip(*pts, strict=True),
                    style,
                    marker="o",
                    color=colors[provider],
                    label=f"{provider} ({output})",
                    alpha=1.0 if output == "bf16" else 0.6,
                )
    left.set(
        xscale="log",
        yscale="log",
        xlabel="megapixels (batch × crop)",
        ylabel="median time (ms)",
        title="Whole preprocessing, grow_mask_by=6",
    )
    grown = [r for r in ok if r["suite"] == "grow"]
    sizes = sorted({(r["params"]["height"], r["params"]["width"]) for r in grown}, key=lambda s: s[0] * s[1])
    size = sizes[-1] if sizes else None
    for provider in GROW_PROVIDERS:
        pts = sorted(
            (r["params"]["window"], r["median_ms"])
            for r in grown
            if r["provider"] == provider and (r["params"]["height"], r["params"]["width"]) == size
        )
        if pts:
            right.plot(*zip(*pts, strict=True), marker="o", color=colors[provider], label=provider)
    right.set(
        xscale="log",
        yscale="log",
        xlabel="box width (pixels)",
        ylabel="median time (ms)",
        title=f"Mask growth alone, {size[0]}×{size[1]}" if size else "Mask growth alone",
    )
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(describe(meta).split(" · source")[0], fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def nearest_fused(
    records: Sequence[dict[str, Any]], megapixels: float, op: str = "core", output: str = "f32"
) -> Optional[dict[str, Any]]:
    """The measured ``fused`` record of the prepare suite closest in size to ``megapixels`` (log scale),
    for single images of ``op``, preferring ``output`` and then the smallest window."""
    ok = [
        r
        for r in records
        if r.get("status") == "ok"
        and r.get("provider") == "fused"
        and r.get("suite") == "prepare"
        and r["params"]["op"] == op
        and r["params"]["batch"] == 1
    ]
    if not ok:
        return None
    return min(
        ok, key=lambda r: (abs(math.log(r["megapixels"] / megapixels)), r["output"] != output, r["params"]["window"])
    )
