"""The ComfyUI node pack: every node's LATENT against the pipeline it replaces.

Without ComfyUI: the node boundary (``inpaint_fused.comfyui.latents``, all that each node's
``execute`` calls) with ``ComfyStyleVAE`` from the test helpers standing in for ``comfy.sd.VAE``.
With ``COMFYUI_PATH`` pointing at a ComfyUI checkout: the pack is loaded by ComfyUI's own custom-node
loader in a subprocess (``COMFYUI_PYTHON``, default this interpreter, must have ComfyUI's
requirements), a tiny random ``comfy.sd.VAE`` is built, and each fused node is compared with the
stock node it replaces (core nodes from ComfyUI; WAS and VideoHelperSuite through their seed code).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import ComfyStyleVAE, inpaint_inputs

from inpaint_fused import reference
from inpaint_fused.comfyui import latents

ROOT = Path(__file__).resolve().parent.parent


def _stock_inpaint_latent(vae, pixels, mask, grow):
    filled, noise_mask = reference.vae_encode_for_inpaint(pixels, mask, grow, 8)
    return {"samples": vae.encode(filled), "noise_mask": noise_mask}


def _assert_same_latent(latent, expected):
    assert latent.keys() == expected.keys()
    for key, value in expected.items():
        assert latent[key].dtype == value.dtype and latent[key].device == value.device, key
        assert torch.equal(latent[key], value), key


@pytest.mark.parametrize("grow", [0, 1, 6, 64])
def test_inpaint_node(device, grow):
    pixels, mask = inpaint_inputs(2, 37, 46, 1, (30, 30), seed=grow)
    latent = latents.encode_for_inpaint(ComfyStyleVAE(8, torch.bfloat16, device), pixels, mask, grow)
    _assert_same_latent(latent, _stock_inpaint_latent(ComfyStyleVAE(8, torch.bfloat16, device), pixels, mask, grow))
    assert latent["noise_mask"].shape == (1, 1, 32, 40) and latent["noise_mask"].dtype == torch.float32


@pytest.mark.parametrize("offset", [-128, -3, 0, 2, 128])
def test_was_node(device, offset):
    pixels, mask = inpaint_inputs(1, 33, 27, 1, (33, 27), seed=1)
    latent = latents.encode_for_inpaint_was(ComfyStyleVAE(8, device=device), pixels, mask, offset)
    filled, noise_mask = reference.was_vae_encode_for_inpaint(pixels, mask, offset, 8)
    _assert_same_latent(latent, {"samples": ComfyStyleVAE(8, device=device).encode(filled), "noise_mask": noise_mask})


def test_encode_node(device):
    pixels, _ = inpaint_inputs(2, 19, 30, 1, (1, 1), channels=4)
    latent = latents.encode(ComfyStyleVAE(8, device=device), pixels)
    _assert_same_latent(latent, {"samples": ComfyStyleVAE(8, device=device).encode(pixels[:, :, :, :3])})


def test_batched_node(device):
    pixels, _ = inpaint_inputs(5, 24, 17, 1, (1, 1), seed=4)
    latent = latents.encode_batched(ComfyStyleVAE(8, device=device), pixels, 2)
    stock = reference.vae_encode_batched(ComfyStyleVAE(8, device=device).encode, pixels, 2, 8)
    _assert_same_latent(latent, {"samples": stock})


def test_inpaint_batched_node(device):
    pixels, mask = inpaint_inputs(5, 24, 32, 5, (12, 16), seed=6)
    latent = latents.encode_for_inpaint_batched(ComfyStyleVAE(8, device=device), pixels, mask, 6, 2)
    _assert_same_latent(latent, _stock_inpaint_latent(ComfyStyleVAE(8, device=device), pixels, mask, 6))


def test_node_errors_name_the_argument():
    with pytest.raises(ValueError, match="mask batch 2 does not fit pixels batch 3"):
        latents.encode_for_inpaint(ComfyStyleVAE(8), torch.rand(3, 16, 16, 3), torch.rand(2, 16, 16), 6)
    with pytest.raises(ValueError, match="per_batch must be >= 1"):
        latents.encode_batched(ComfyStyleVAE(8), torch.rand(3, 16, 16, 3), 0)


def test_progress_outside_comfyui_is_tqdm():
    if "comfy" in sys.modules:
        pytest.skip("ComfyUI is imported in this process; its ProgressBar is used instead")
    assert latents.progress_bar(10) is None  # None: the VAE layer shows a tqdm bar


# The check itself is a script of its own, run by ComfyUI's interpreter (it may be another Python):
# `python tests/comfyui_check.py COMFYUI_PATH PACK [--gpu]`.
CHECK_SCRIPT = Path(__file__).resolve().parent / "comfyui_check.py"


def test_fused_nodes_equal_stock_nodes_in_real_comfyui():
    comfy_path = os.environ.get("COMFYUI_PATH")
    if not comfy_path:
        pytest.skip("set COMFYUI_PATH to a ComfyUI checkout (and COMFYUI_PYTHON to its interpreter) to run this")
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run(
        [python, str(CHECK_SCRIPT), comfy_path, str(ROOT)], capture_output=True, text=True, env=env, timeout=300
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULTS ")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    results = json.loads(lines[-1].removeprefix("RESULTS "))
    assert results.pop("loaded") is True
    assert len(results) == 25 and all(results.values()), results
