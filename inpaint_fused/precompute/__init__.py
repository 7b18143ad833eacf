"""``inpaint-fused precompute``: masked latents for training inpainting models, at the speed of the VAE.

One module per job: :mod:`.sources` (what to encode, decoding), :mod:`.masks` (random masks on the
device), :mod:`.vae_loading` (offline VAE loading), :mod:`.shards` (resumable output),
:mod:`.batches` (worker decoding, uploads on a side stream), :mod:`.distributed` (torchrun ranks),
:mod:`.runner` (the run). See ``docs/precompute.md``.
"""

from .errors import PrecomputeError
from .masks import MaskFamily, MaskParams, batch_params, draw_params, masks_for, rasterize, sample_keys
from .runner import PrecomputeConfig, Summary, run
from .shards import OutputDir, Shard, plan_shards
from .sources import Sources, decode_image, list_sources, match_masks
from .vae_loading import LoadedVAE, load_vae, original_config

__all__ = [
    "LoadedVAE",
    "MaskFamily",
    "MaskParams",
    "OutputDir",
    "PrecomputeConfig",
    "PrecomputeError",
    "Shard",
    "Sources",
    "Summary",
    "batch_params",
    "decode_image",
    "draw_params",
    "list_sources",
    "load_vae",
    "masks_for",
    "match_masks",
    "original_config",
    "plan_shards",
    "rasterize",
    "run",
    "sample_keys",
]
