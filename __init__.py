"""ComfyUI entry point when this repository is cloned into ``ComfyUI/custom_nodes/``.

ComfyUI executes this file as a module named after its path. It makes the package beside it
importable as ``inpaint_fused`` (exactly once, under that one name: its ``torch.library`` ops must not
be registered twice) without putting this folder on ``sys.path``, where the top-level ``kernels/``
would shadow Hugging Face's ``kernels`` package. ``kernels/`` is then found by
``inpaint_fused._backend.load_kernels`` beside the package. A pip-installed ``inpaint_fused`` that is
already imported is used as it is.

Outside ComfyUI (no ``comfy_api``; for instance pytest collecting this checkout, whose root this file
makes a package) it does nothing.
"""

import importlib.util
import sys
from pathlib import Path


def _load_package():
    if "inpaint_fused" in sys.modules:
        return sys.modules["inpaint_fused"]
    source = Path(__file__).resolve().parent / "inpaint_fused"
    spec = importlib.util.spec_from_file_location(
        "inpaint_fused", source / "__init__.py", submodule_search_locations=[str(source)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["inpaint_fused"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["inpaint_fused"]
        raise
    return module


if importlib.util.find_spec("comfy_api") is not None:
    _load_package()

    from inpaint_fused.comfyui.nodes import comfy_entrypoint

    __all__ = ["comfy_entrypoint"]
