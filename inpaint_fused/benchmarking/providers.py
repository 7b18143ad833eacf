"""The providers: what runs for a case (this package, the original code eager or compiled, torch's
dilations, a copy), bound to rotating input copies, and why a provider does not apply.

- prepare suite: ``fused`` (this package on the run device), ``reference-gpu`` (the original code,
  eager, on the same GPU), ``reference-cpu`` (the original code on the CPU with all threads: what a
  default ComfyUI runs today), ``torch.compile`` (of the original code, compile time reported apart) and
  ``copy`` (a device-to-device copy of the same byte count: the roofline).
- grow suite: :func:`~inpaint_fused.grow_mask` against ``conv2d`` (the original code's), ``max_pool2d``,
  ``kornia`` (when installed and when its ``k x k`` unfold fits in memory) and ``copy``.

The baselines run at their strongest reasonable settings: cuDNN autotuning on for every GPU
provider (:func:`cudnn_autotuning`), warm-ups before any timed call, torch.compile's compile time
kept out of its runs.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F

from .. import _backend, reference
from ..api import grow_mask, prepare_inpaint, prepare_inpaint_was
from .cases import RATIO, Case

PREPARE_PROVIDERS = ("fused", "reference-gpu", "reference-cpu", "torch.compile", "copy")
GROW_PROVIDERS = ("fused", "conv2d", "max_pool2d", "kornia", "copy")
PROVIDERS = tuple(dict.fromkeys(PREPARE_PROVIDERS + GROW_PROVIDERS))

# Rotating input copies: enough that the inputs of consecutive runs overflow the L2 cache (H100: 50 MiB)
# twice over, within a memory cap. do_bench also clears L2 before each run; this keeps the CPU honest too.
_ROTATE_BYTES = 128 << 20
_ROTATE_CAP_BYTES = 1 << 30
_ROTATE_MAX = 16
# Calls before any timed one on a GPU: cuDNN's algorithm search and Triton's autotuning happen in the first.
_WARMUP_CALLS = 2


def providers_for(case: Case) -> tuple[str, ...]:
    return PREPARE_PROVIDERS if case.suite == "prepare" else GROW_PROVIDERS


def needs_gpu(case: Case, provider: str) -> bool:
    """Whether the pair is a GPU measurement (marked ``gpu`` in ``bench/``): a GPU-sized case or the
    eager reference on the GPU."""
    return case.tier == "gpu" or provider == "reference-gpu"


def provider_device(provider: str, device: torch.device) -> torch.device:
    """Where ``provider`` runs in a run on ``device``: the CPU reference always on the CPU."""
    return torch.device("cpu") if provider == "reference-cpu" else device


def fused_backend(device: torch.device) -> str:
    """What the ``fused`` provider runs on ``device``: the Triton kernels, the interpreter, or the reference."""
    if not _backend.uses_triton(device):
        return "the pure-torch path"
    return "triton-interpreter" if device.type == "cpu" else "triton"


@contextlib.contextmanager
def cudnn_autotuning(device: torch.device) -> Iterator[bool]:
    """``torch.backends.cudnn.benchmark = True`` inside the block on a CUDA device, the previous value after.

    The original code's ``k x k`` convolutions are the GPU baselines' main cost; with autotuning cuDNN times
    its algorithms on the first call of each shape and keeps the fastest. Yields whether it is on.
    """
    if device.type != "cuda":
        yield False
        return
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield True
    finally:
        torch.backends.cudnn.benchmark = previous


def _reference_prepare(case: Case) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """The original code for ``case``: crop, grow/modify, gray fill, then (bf16) the VAE's ``2p - 1`` cast."""
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
    """The original code's growth: round, ``k x k`` conv of ones, clamp, cut to size, round."""

    def run(mask: torch.Tensor) -> torch.Tensor:
        h, w = mask.shape[-2:]
        return reference.grow_mask(mask.unsqueeze(1), width)[:, :, :h, :w].round()

    return run


def _max_pool_grow(width: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The same box dilation as a max filter; even widths cut like the original code (``g/2 - 1`` up/left)."""
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


def _rotating(fn: Callable[..., Any], copies: list[tuple[torch.Tensor, ...]]) -> Callable[[], Any]:
    cycle = itertools.cycle(copies)
    return lambda: fn(*next(cycle))


def _kornia_available() -> bool:
    try:
        import kornia.morphology  # noqa: F401
    except ImportError:
        return False
    return True


def skip_reason(
    case: Case, provider: str, device: torch.device, quick: bool = False, compile_on_cpu: bool = False
) -> Optional[str]:
    """Why ``provider`` does not run for ``case`` in a run on ``device``, or None when it does."""
    if provider not in providers_for(case):
        return f"{provider} is not a provider of the {case.suite} suite"
    if provider == "reference-gpu" and device.type != "cuda":
        return "no CUDA GPU: the eager reference runs on the CPU (reference-cpu)"
    if provider == "torch.compile":
        if quick:
            return "--quick leaves torch.compile out: it compiles every shape anew (seconds each)"
        if device.type == "cpu" and not compile_on_cpu:
            return (
                "torch.compile on a CPU-only machine is left out: Inductor's C++ build takes about a minute"
                " for the first graph and ~15 s per shape on 2 cores; --providers torch.compile asks for it"
            )
    if provider == "kornia":
        if not _kornia_available():
            return "kornia is not installed (pip install kornia)"
        if device.type == "cuda":
            # kornia's CUDA engine unfolds every k x k window: B*H*W*k*k float32 values.
            need = 4 * case.mask_batch * case.height * case.width * case.window**2
            free, _ = torch.cuda.mem_get_info(device)
            if need > 0.6 * free:
                return f"kornia's unfold needs {need / 2**30:.0f} GiB, {free / 2**30:.0f} GiB free"
    return None


def rotation_count(case: Case) -> int:
    """How many copies of the case's inputs a provider cycles through (see ``_ROTATE_BYTES``)."""
    need = math.ceil(_ROTATE_BYTES / max(case.input_bytes, 1))
    return max(1, min(_ROTATE_MAX, need, _ROTATE_CAP_BYTES // max(case.input_bytes, 1)))


def bind(case: Case, provider: str, device: torch.device, copies: list[tuple[torch.Tensor, ...]]) -> Prepared:
    """``provider`` bound to ``case`` on ``device`` with the rotating input ``copies``, warmed up.

    ``torch.compile`` compiles here (timed into ``compile_s``); on a GPU every provider then runs
    a few untimed calls (with :func:`cudnn_autotuning` on around binding and timing alike).
    """
    if provider == "copy":
        nbytes = max(case.bytes_moved // 2, 1)
        src = torch.ones(nbytes, dtype=torch.uint8, device=device)
        dst = torch.zeros_like(src)
        prepared = Prepared(lambda: dst.copy_(src), device, note=f"{nbytes} bytes read and written")
    elif case.suite == "grow":
        fn = {
            "fused": lambda mask: grow_mask(mask, case.value),
            "conv2d": _conv2d_grow(case.value),
            "max_pool2d": _max_pool_grow(case.value),
            "kornia": _kornia_grow(case.value, device) if provider == "kornia" else None,
        }[provider]
        prepared = Prepared(_rotating(fn, copies), device)
    elif provider == "fused":
        prepared = Prepared(_rotating(_fused_prepare(case), copies), device, note=fused_backend(device))
    elif provider in ("reference-gpu", "reference-cpu"):
        prepared = Prepared(_rotating(_reference_prepare(case), copies), device)
    else:
        torch.compiler.reset()
        compiled = torch.compile(_reference_prepare(case), dynamic=False)
        start = time.perf_counter()
        compiled(*copies[0])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        prepared = Prepared(_rotating(compiled, copies), device, compile_s=time.perf_counter() - start)
    if device.type == "cuda":
        for _ in range(_WARMUP_CALLS):
            prepared.call()
        torch.cuda.synchronize(device)
    return prepared
