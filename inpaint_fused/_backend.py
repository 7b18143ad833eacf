"""Which tensors run through the Triton kernels, and launch settings per device."""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
from pathlib import Path

import torch


def _find_triton() -> bool:
    try:
        return importlib.util.find_spec("triton") is not None
    except (ImportError, ValueError):
        return False


HAS_TRITON = _find_triton()


def interpreting() -> bool:
    """True when Triton's interpreter is on (``TRITON_INTERPRET=1``), which runs kernels on CPU tensors."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def uses_triton(device: torch.device) -> bool:
    """CUDA tensors go through the kernels; CPU tensors only under Triton's interpreter.

    Everything else (no triton installed, CPU without the interpreter, other devices) runs the
    pure-torch reference.
    """
    if not HAS_TRITON:
        return False
    if device.type == "cuda":
        return True
    return device.type == "cpu" and interpreting()


@functools.cache
def multiprocessor_count(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def load_kernels():
    """``inpaint_fused._kernels``: installed from ``kernels/``, or read from the source tree beside the package.

    A plain checkout (tests without install, a ComfyUI ``custom_nodes`` clone) has no
    ``_kernels`` subpackage; load ``kernels/`` under that name rather than putting the checkout on
    ``sys.path``, where a top-level ``kernels`` would shadow Hugging Face's package of that name.
    """
    package = __name__.rpartition(".")[0]
    name = f"{package}._kernels"
    if name in sys.modules:
        return sys.modules[name]
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name != name:
            raise
    source = Path(__file__).resolve().parent.parent / "kernels"
    spec = importlib.util.spec_from_file_location(
        name, source / "__init__.py", submodule_search_locations=[str(source)]
    )
    if spec is None or not (source / "__init__.py").is_file():
        raise ModuleNotFoundError(f"{name}: neither installed nor found at {source}", name=name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _specialization(value: object) -> object:
    """What Triton may specialize a launch argument on (a superset is safe: it only splits the cache).

    Tensors: dtype and 16-byte alignment; ints: equal to 1, divisible by 16, 32- or 64-bit; other
    values (floats, None) by type, constexprs by value.
    """
    if isinstance(value, torch.Tensor):
        return (value.dtype, value.data_ptr() % 16 == 0)
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int):
        return ("i", value == 1, value % 16 == 0, -(2**31) <= value < 2**31)
    if isinstance(value, float):
        return "f"
    return ("v", value)


class Launcher:
    """``kernel[grid](*args, **constexprs, **options)`` with the host overhead of a compiled call.

    Triton's Python launch binds and specializes every argument on each call (tens of microseconds
    for our ~30-argument kernels, more than a small image's GPU time). On CUDA this keeps the
    compiled kernel per specialization key and calls its launcher directly, as ``JITFunction.run``
    itself does after its cache lookup (launch hooks included); the first call of each key takes
    Triton's own path, which compiles. Under the interpreter it is Triton's own path always.
    """

    def __init__(self, kernel):
        self.kernel = kernel
        self.compiled: dict[tuple, object] = {}

    @staticmethod
    def cached(device: torch.device) -> bool:
        return device.type == "cuda"

    @staticmethod
    def stream() -> int:
        from triton.runtime import driver

        return driver.active.get_current_stream(driver.active.get_current_device())

    @staticmethod
    def hooks() -> tuple[object, object]:
        from triton import knobs

        return knobs.runtime.launch_enter_hook, knobs.runtime.launch_exit_hook

    def __call__(self, grid: tuple[int, ...], *args: object, options: dict | None = None, **constexprs: object) -> None:
        options = options or {}
        first = args[0] if args else None
        if not (isinstance(first, torch.Tensor) and self.cached(first.device)):
            self.kernel[grid](*args, **constexprs, **options)
            return
        key = (
            first.device,  # a compiled kernel is loaded on one device
            tuple(_specialization(a) for a in args),
            tuple(constexprs.items()),
            tuple(options.items()),
        )
        compiled = self.compiled.get(key)
        if compiled is None:
            self.compiled[key] = self.kernel[grid](*args, **constexprs, **options)
            return
        full = (*args, *(constexprs[name] for name in self.kernel.arg_names[len(args) :]))
        stream, (enter, leave) = self.stream(), self.hooks()
        # What JITFunction.run does once it has the compiled kernel (hooks included, for profilers).
        metadata = compiled.launch_metadata(grid, stream, *full)
        g0, g1, g2 = (*grid, 1, 1)[:3]
        compiled.run(g0, g1, g2, stream, compiled.function, compiled.packed_metadata, metadata, enter, leave, *full)


@functools.cache
def launcher(name: str) -> Launcher:
    """The :class:`Launcher` of kernel ``name`` of :func:`load_kernels`."""
    return Launcher(getattr(load_kernels(), name))
