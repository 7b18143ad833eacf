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
