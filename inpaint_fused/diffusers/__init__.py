"""diffusers integration: the SD, SDXL and Flux inpaint pipelines' preprocessing through the fused kernels.

``prepare_masked_image`` needs only torch. The pipeline classes need diffusers
(``pip install 'inpaint-fused[diffusers]'``) and are imported on first use::

    from inpaint_fused.diffusers import FusedStableDiffusionInpaintPipeline
    pipe = FusedStableDiffusionInpaintPipeline.from_pipe(stock_pipe)

``vae`` is how :mod:`inpaint_fused.vae` encodes with an ``AutoencoderKL``/``AutoencoderTiny`` (duck-typed,
no diffusers import).
"""

from __future__ import annotations

import importlib

from ._api import DiffusersInpaintInputs, prepare_masked_image

_PIPELINES = (
    "FusedFluxFillPipeline",
    "FusedFluxInpaintPipeline",
    "FusedStableDiffusionInpaintPipeline",
    "FusedStableDiffusionXLInpaintPipeline",
)

__all__ = ["DiffusersInpaintInputs", "prepare_masked_image", *_PIPELINES]


def __getattr__(name: str):
    if name not in _PIPELINES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        pipelines = importlib.import_module(f"{__name__}.pipelines")
    except ModuleNotFoundError as error:
        if error.name is None or error.name.split(".")[0] not in ("diffusers", "transformers", "PIL"):
            raise
        raise ModuleNotFoundError(
            f"inpaint_fused.diffusers.{name} needs {error.name.split('.')[0]}: pip install 'inpaint-fused[diffusers]'",
            name=error.name,
        ) from error
    return getattr(pipelines, name)
