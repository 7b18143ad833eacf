"""The precompute command's input errors and its optional dependencies."""

from __future__ import annotations

import importlib
from types import ModuleType


class PrecomputeError(ValueError):
    """A problem with the run's input or output folder, found before (or instead of) doing wrong work."""


def require_extra(module: str, purpose: str, extra: str = "precompute") -> ModuleType:
    """Import ``module`` of an optional extra (``precompute`` by default), or say which extra to install.

    Raises:
        PrecomputeError: the module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        package = module.split(".")[0]
        raise PrecomputeError(
            f"{purpose} needs {package}, which is not installed: pip install 'inpaint-fused[{extra}]'"
        ) from error
