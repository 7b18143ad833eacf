"""prepare_inpaint_conditioning and the InpaintModelConditioningFused glue against ComfyUI's node.

The stock node is rebuilt from reference.inpaint_model_conditioning_prepare (its code up to the two
encodes), the stand-in ComfyUI VAE of test_vae (a conv first stage behind ComfyUI's ``encode``) and
reference.conditioning_set_values.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_feather_mask import OPCHECK
from test_prepare import poisoned_allocations
from test_vae import ComfyStyleVAE

import inpaint_fused as ifd
from inpaint_fused import _backend, reference
from inpaint_fused.comfyui import masks as nodes

ON_GPU = torch.cuda.is_available()
DEVICE = torch.device("cuda" if ON_GPU else "cpu")


@pytest.fixture(params=["kernel", "torch"])
def path(request, monkeypatch):
    if request.param == "torch":
        monkeypatch.setattr(_backend, "uses_triton", lambda device: False)
    return request.param


def inputs(pixel_shape, mask_shape, device, seed):
    g = torch.Generator().manual_seed(seed)
    pixels = torch.rand(pixel_shape, generator=g, dtype=torch.float64).float().to(device)
    mask = (torch.rand(mask_shape, generator=g) < 0.4).float()
    soft = torch.rand(mask_shape, generator=g)
    mask = torch.where(torch.rand(mask_shape, generator=g) < 0.3, soft, mask)
    mask.view(-1)[::11] = 0.5  # ties round to even: 0
    return pixels, mask.to(device)


def check(pixels, mask, vae_dtype=None):
    with poisoned_allocations():
        out = ifd.prepare_inpaint_conditioning(pixels, mask, vae_dtype)
    filled, cond_mask = reference.inpaint_model_conditioning_prepare(pixels, mask)
    if vae_dtype is not None:
        filled = reference.vae_input(filled, vae_dtype)
    for got, want, name in ((out.pixels, filled, "pixels"), (out.mask, cond_mask, "mask")):
        assert got.shape == want.shape and got.dtype == want.dtype and got.device == want.device, name
        assert torch.equal(got, want), (name, (got != want).sum())
    return out


@pytest.mark.parametrize(
    "shapes",
    [((2, 37, 50, 3), (1, 20, 20)), ((2, 32, 48, 4), (2, 32, 48)), ((1, 45, 38, 3), (45, 38)),
     ((3, 19, 27, 3), (3, 1, 70, 9)), ((1, 8, 8, 3), (1, 1, 1))],
    ids=str,
)  # fmt: skip
@pytest.mark.parametrize("vae_dtype", [None, torch.bfloat16, torch.float32])
def test_matches_stock(device, path, shapes, vae_dtype):
    check(*inputs(*shapes, device, hash(shapes) % 2**31), vae_dtype)


def test_mask_and_pixels_on_different_devices_and_dtypes(device, path):
    """A CPU mask (from a CPU node) with pixels on the VAE's device: the mask is resized on the CPU, as
    the stock node does it, and fills there; the stock node itself would refuse the mix."""
    pixels, mask = inputs((2, 21, 30, 3), (1, 9, 9), device, 3)
    out = ifd.prepare_inpaint_conditioning(pixels, mask.cpu())
    filled, cond_mask = reference.inpaint_model_conditioning_prepare(pixels.cpu(), mask.cpu())
    assert out.mask.device.type == "cpu" and out.pixels.device == pixels.device
    assert torch.equal(out.mask, cond_mask) and torch.equal(out.pixels.cpu(), filled)
    check(pixels.half(), mask.half())
    check(pixels.double(), mask[0].t().double())


@settings(max_examples=15 if not ON_GPU else 80, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 2), st.integers(8, 30), st.integers(8, 30), st.sampled_from([3, 4])),
    mask_size=st.tuples(st.integers(1, 30), st.integers(1, 30)),
    mask_batch=st.sampled_from(["one", "same"]),
    vae_dtype=st.sampled_from([None, torch.bfloat16]),
    seed=st.integers(0, 2**16),
)
def test_fuzz_against_stock(shape, mask_size, mask_batch, vae_dtype, seed):
    batch = 1 if mask_batch == "one" else shape[0]
    check(*inputs(shape, (batch, *mask_size), DEVICE, seed), vae_dtype)


def stock_node(positive, negative, pixels, vae, mask, noise_mask=True):
    """``InpaintModelConditioning.encode`` of ComfyUI v0.3.64 with the reference's preprocessing."""
    filled, mask = reference.inpaint_model_conditioning_prepare(pixels, mask)
    concat_latent = vae.encode(filled)
    orig_latent = vae.encode(pixels)
    out_latent = {"samples": orig_latent}
    if noise_mask:
        out_latent["noise_mask"] = mask
    values = {"concat_latent_image": concat_latent, "concat_mask": mask}
    return (
        reference.conditioning_set_values(positive, values),
        reference.conditioning_set_values(negative, values),
        out_latent,
    )


def assert_same(got, want, where=""):
    assert type(got) is type(want), where
    if isinstance(want, torch.Tensor):
        assert got.shape == want.shape and got.dtype == want.dtype and got.device == want.device, where
        assert torch.equal(got, want), where
    elif isinstance(want, dict):
        assert got.keys() == want.keys(), where
        for key in want:
            assert_same(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert got == want, where


@pytest.mark.parametrize("noise_mask", [True, False])
@pytest.mark.parametrize("vae_dtype", [torch.float32, torch.bfloat16])
def test_node_equals_stock_node(device, noise_mask, vae_dtype):
    pixels, mask = inputs((2, 37, 42, 3), (1, 30, 30), "cpu", 5)
    cond = torch.rand(1, 4, 8)
    positive = [[cond, {"pooled_output": torch.ones(1, 8), "strength": 0.5}]]
    negative = [[cond * 2, {}], [cond * 3, {"area": (8, 8, 0, 0)}]]
    fused = nodes.inpaint_model_conditioning(
        positive, negative, pixels, ComfyStyleVAE(8, vae_dtype, device), mask, noise_mask
    )
    stock = stock_node(positive, negative, pixels, ComfyStyleVAE(8, vae_dtype, device), mask, noise_mask)
    assert_same(fused, stock)
    assert ("noise_mask" in fused[2]) is noise_mask
    assert positive[0][1].keys() == {"pooled_output", "strength"}  # the inputs' dicts are copied, not changed
    assert fused[0][0][1]["pooled_output"] is positive[0][1]["pooled_output"]
    assert fused[2]["samples"].shape == (2, 4, 4, 5) and fused[0][0][1]["concat_mask"].shape == (1, 1, 32, 40)


def test_node_with_a_vae_of_ratio_16(device):
    pixels, mask = inputs((1, 53, 70, 3), (1, 53, 70), "cpu", 6)
    positive, negative = [[torch.zeros(1), {}]], [[torch.ones(1), {}]]
    fused = nodes.inpaint_model_conditioning(positive, negative, pixels, ComfyStyleVAE(16, device=device), mask)
    assert_same(fused, stock_node(positive, negative, pixels, ComfyStyleVAE(16, device=device), mask))


def test_bad_input_names_the_argument():
    pixels = torch.rand(3, 16, 16, 3)
    with pytest.raises(ValueError, match="mask batch 2 does not fit pixels batch 3"):
        ifd.prepare_inpaint_conditioning(pixels, torch.rand(2, 16, 16))
    with pytest.raises(ValueError, match=r"mask values must lie in \[0, 1\]"):
        ifd.prepare_inpaint_conditioning(pixels, torch.full((1, 16, 16), 1.5))
    with pytest.raises(ValueError, match="mask values"):
        ifd.prepare_inpaint_conditioning(pixels, torch.full((1, 16, 16), float("nan")))
    with pytest.raises(ValueError, match="pixels of 7x16"):
        ifd.prepare_inpaint_conditioning(torch.rand(1, 7, 16, 3), torch.rand(1, 16, 16))
    with pytest.raises(ValueError, match="3 channels"):
        ifd.prepare_inpaint_conditioning(torch.rand(1, 16, 16, 2), torch.rand(1, 16, 16))
    with pytest.raises(TypeError, match="mask"):
        ifd.prepare_inpaint_conditioning(pixels, torch.ones(1, 16, 16, dtype=torch.bool))
    with pytest.raises(TypeError, match="vae_dtype"):
        ifd.prepare_inpaint_conditioning(pixels, torch.rand(1, 16, 16), torch.int8)


def test_opcheck(device):
    pixels, mask = inputs((2, 19, 26, 3), (1, 11, 13), device, 8)
    op = torch.ops.inpaint_fused.inpaint_conditioning
    torch.library.opcheck(op, (pixels, mask, None), test_utils=OPCHECK)
    torch.library.opcheck(op, (pixels, mask, torch.bfloat16), test_utils=OPCHECK)


@pytest.mark.gpu
@pytest.mark.parametrize("vae_dtype", [torch.float32, torch.bfloat16])
def test_gpu_node_with_cpu_inputs_equals_stock(vae_dtype):
    """The ComfyUI situation: IMAGE and MASK on the CPU, the VAE on the GPU; fill on the GPU, same latents."""
    pixels, mask = inputs((4, 1021, 770, 3), (4, 300, 200), "cpu", 9)
    positive, negative = [[torch.zeros(1), {}]], [[torch.ones(1), {}]]
    fused = nodes.inpaint_model_conditioning(positive, negative, pixels, ComfyStyleVAE(8, vae_dtype, "cuda"), mask)
    assert_same(fused, stock_node(positive, negative, pixels, ComfyStyleVAE(8, vae_dtype, "cuda"), mask))
    check(pixels.cuda(), mask.cuda(), vae_dtype)
    same_size = inputs((4, 1021, 770, 3), (1, 1021, 770), "cpu", 10)[1]  # no resize: the mask is read as is
    check(pixels.cuda(), same_size.cuda(), vae_dtype)
    fused = nodes.inpaint_model_conditioning(positive, negative, pixels, ComfyStyleVAE(8, vae_dtype, "cuda"), same_size)
    assert_same(fused, stock_node(positive, negative, pixels, ComfyStyleVAE(8, vae_dtype, "cuda"), same_size))


IN_COMFYUI = r"""
import asyncio, inspect, json, os, sys
comfy_path, pack = sys.argv[1], sys.argv[2]
sys.path.insert(0, comfy_path)
os.chdir(comfy_path)
from comfy.cli_args import args
args.cpu = True
import torch
import nodes
import comfy.sd
from comfy.ldm.models.autoencoder import AutoencoderKL

loaded = nodes.load_custom_node(pack)
loaded = asyncio.run(loaded) if inspect.iscoroutine(loaded) else loaded
# FeatherMask, ThresholdMask and ImageCompositeMasked live in comfy_extras, which ComfyUI loads at start.
extras = nodes.load_custom_node(os.path.join(comfy_path, "comfy_extras", "nodes_mask.py"), module_parent="comfy_extras")
extras = asyncio.run(extras) if inspect.iscoroutine(extras) else extras

def run(node_id, **inputs):
    cls = nodes.NODE_CLASS_MAPPINGS[node_id]
    if hasattr(cls, "FUNCTION"):
        return tuple(getattr(cls(), cls.FUNCTION)(**inputs))
    out = cls.execute(**inputs)
    out = asyncio.run(out) if inspect.iscoroutine(out) else out
    return tuple(out.result)

def same(a, b):
    if isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and a.dtype == b.dtype and a.device == b.device and torch.equal(a, b)
    if isinstance(b, dict):
        return isinstance(a, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in b)
    if isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b

torch.manual_seed(0)
ddconfig = {"double_z": True, "z_channels": 4, "resolution": 32, "in_channels": 3, "out_ch": 3, "ch": 32,
            "ch_mult": [1, 1, 1, 1], "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0}
state = {k: torch.randn(v.shape, generator=torch.Generator().manual_seed(i)) * 0.1
         for i, (k, v) in enumerate(AutoencoderKL(ddconfig=ddconfig, embed_dim=4).state_dict().items())}
vae = comfy.sd.VAE(sd=state, config={"params": {"ddconfig": ddconfig, "embed_dim": 4}})

g = torch.Generator().manual_seed(7)
pixels = torch.rand((2, 45, 38, 3), generator=g)
mask = torch.zeros((2, 30, 26))
mask[:, 8:17, 6:15] = torch.rand((2, 9, 9), generator=g)
results = {"loaded": bool(loaded) and bool(extras)}
for widths in ((0, 0, 0, 0), (3, 5, 7, 2), (100, 1, 26, 30)):
    inputs = dict(zip(("left", "top", "right", "bottom"), widths), mask=mask)
    results[f"feather {widths}"] = same(run("FeatherMaskFused", **inputs), run("FeatherMask", **inputs))
for value in (0.0, 0.3, 0.5):
    inputs = {"mask": mask, "value": value}
    results[f"threshold {value}"] = same(run("ThresholdMaskFused", **inputs), run("ThresholdMask", **inputs))
source = torch.rand((1, 20, 17, 4), generator=g)
for x, y, resize, m in ((3, 4, False, mask), (30, 40, False, None), (0, 0, True, mask[:1])):
    inputs = {"destination": pixels, "source": source, "x": x, "y": y, "resize_source": resize}
    if m is not None:
        inputs["mask"] = m
    results[f"composite {x} {y} {resize}"] = same(
        run("ImageCompositeMaskedFused", **inputs), run("ImageCompositeMasked", **inputs))
positive = [[torch.rand(1, 4, 8, generator=g), {"pooled_output": torch.rand(1, 8, generator=g)}]]
negative = [[torch.rand(1, 4, 8, generator=g), {}]]
for noise_mask in (True, False):
    inputs = {"positive": positive, "negative": negative, "vae": vae, "pixels": pixels, "mask": mask,
              "noise_mask": noise_mask}
    results[f"conditioning noise_mask={noise_mask}"] = same(
        run("InpaintModelConditioningFused", **inputs), run("InpaintModelConditioning", **inputs))
print("RESULTS " + json.dumps(results))
"""


def test_mask_nodes_equal_stock_nodes_in_real_comfyui():
    """With ``COMFYUI_PATH`` (and ``COMFYUI_PYTHON``): each fused node against the stock node in ComfyUI itself."""
    comfy_path = os.environ.get("COMFYUI_PATH")
    if not comfy_path:
        pytest.skip("set COMFYUI_PATH to a ComfyUI checkout (and COMFYUI_PYTHON to its interpreter) to run this")
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [python, "-c", IN_COMFYUI, comfy_path, str(root)], capture_output=True, text=True, env=env, timeout=300
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULTS ")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    results = json.loads(lines[-1].removeprefix("RESULTS "))
    assert results.pop("loaded") is True
    assert len(results) == 11 and all(results.values()), results
