"""The fused nodes against the stock nodes inside a real ComfyUI, in process.

Usage: ``python tests/comfyui_check.py COMFYUI_PATH PACK [--gpu]`` with ComfyUI's interpreter, PACK the
inpaint-fused checkout (loaded as a custom node). Without ``--gpu`` ComfyUI starts as with ``--cpu``.
Prints ``RESULTS {json}``: one boolean per comparison (bit for bit: values, dtypes, devices).
``tests/test_comfyui.py`` runs it when ``COMFYUI_PATH`` is set; on the GPU machine it runs by hand.
"""

import asyncio
import inspect
import json
import os
import sys
import types

comfy_path, pack = sys.argv[1], sys.argv[2]
gpu = "--gpu" in sys.argv[3:]
sys.path.insert(0, comfy_path)
os.chdir(comfy_path)
# ComfyUI's video nodes import PyAV at start; the checks need none of it.
for name in ("av", "av.container", "av.subtitles", "av.subtitles.stream"):
    sys.modules.setdefault(name, types.ModuleType(name))
sys.modules["av.container"].InputContainer = type("InputContainer", (), {})
sys.modules["av.subtitles.stream"].SubtitleStream = type("SubtitleStream", (), {})
from comfy.cli_args import args  # noqa: E402

args.cpu = not gpu
import comfy.sd  # noqa: E402
import nodes  # noqa: E402
import torch  # noqa: E402
from comfy.ldm.models.autoencoder import AutoencoderKL  # noqa: E402

loaded = nodes.load_custom_node(pack)
loaded = asyncio.run(loaded) if inspect.iscoroutine(loaded) else loaded
from inpaint_fused import reference  # noqa: E402


def run(node_id, **inputs):
    cls = nodes.NODE_CLASS_MAPPINGS[node_id]
    if hasattr(cls, "FUNCTION"):
        return getattr(cls(), cls.FUNCTION)(**inputs)[0]
    out = cls.execute(**inputs)
    out = asyncio.run(out) if inspect.iscoroutine(out) else out
    return out.result[0]


torch.manual_seed(0)
ddconfig = {
    "double_z": True,
    "z_channels": 4,
    "resolution": 32,
    "in_channels": 3,
    "out_ch": 3,
    "ch": 32,
    "ch_mult": [1, 1, 1, 1],
    "num_res_blocks": 1,
    "attn_resolutions": [],
    "dropout": 0.0,
}
# ComfyUI's layers skip weight initialisation: fill every tensor with seeded values.
state = {
    k: torch.randn(v.shape, generator=torch.Generator().manual_seed(i)) * 0.1
    for i, (k, v) in enumerate(AutoencoderKL(ddconfig=ddconfig, embed_dim=4).state_dict().items())
}
vae = comfy.sd.VAE(sd=state, config={"params": {"ddconfig": ddconfig, "embed_dim": 4}})

g = torch.Generator().manual_seed(7)
pixels = torch.rand((3, 45, 38, 3), generator=g)
mask = torch.zeros((3, 30, 26))
mask[:, 8:17, 6:15] = torch.rand((3, 9, 9), generator=g)
results = {"loaded": bool(loaded)}


def same(name, fused, stock):
    results[name] = sorted(fused) == sorted(stock) and all(
        fused[k].dtype == stock[k].dtype and fused[k].device == stock[k].device and torch.equal(fused[k], stock[k])
        for k in stock
    )


for grow in (0, 6, 13):
    inputs = {"pixels": pixels, "vae": vae, "mask": mask[:1], "grow_mask_by": grow}
    same(f"inpaint grow={grow}", run("VAEEncodeForInpaintFused", **inputs), run("VAEEncodeForInpaint", **inputs))
for offset in (-4, 0, 5):
    filled, noise = reference.was_vae_encode_for_inpaint(pixels, mask, offset, 8)
    fused = run("VAEEncodeForInpaintWASFused", pixels=pixels, vae=vae, mask=mask, mask_offset=offset)
    same(f"was offset={offset}", fused, {"samples": vae.encode(filled), "noise_mask": noise})
results["finite"] = bool(vae.encode(pixels).isfinite().all())
same("encode", run("VAEEncodeFused", pixels=pixels, vae=vae), run("VAEEncode", pixels=pixels, vae=vae))
same(
    "batched",
    run("VAEEncodeBatchedFused", pixels=pixels, vae=vae, per_batch=2),
    {"samples": reference.vae_encode_batched(vae.encode, pixels, 2, 8)},
)
# Slices of 2: bit for bit the stock node on the same slices. A real VAE is not bitwise batch-invariant
# (nor is the stock node, whose VAE.encode batches by free memory), so the whole clip agrees to rounding.
fused = run("VAEEncodeForInpaintBatchedFused", pixels=pixels, vae=vae, mask=mask, grow_mask_by=6, per_batch=2)
slices = [
    run("VAEEncodeForInpaint", pixels=pixels[a:b], vae=vae, mask=mask[a:b], grow_mask_by=6) for a, b in ((0, 2), (2, 3))
]
same("inpaint batched", fused, {k: torch.cat([s[k] for s in slices]) for k in slices[0]})
whole = run("VAEEncodeForInpaint", pixels=pixels, vae=vae, mask=mask, grow_mask_by=6)
results["inpaint batched ~ whole clip"] = torch.equal(fused["noise_mask"], whole["noise_mask"]) and torch.allclose(
    fused["samples"], whole["samples"], rtol=0, atol=1e-5
)
print("RESULTS " + json.dumps(results))
