"""The rest of ComfyUI's inpainting chain: stock node code vs the fused nodes, whole node calls.

Nodes: FeatherMask (64 px ramps on every side), ThresholdMask (0.5), ImageCompositeMasked (decoded
image into the original under the mask, same size, x = y = 0) and InpaintModelConditioning (with
an SD-sized VAE: diffusers ``AutoencoderKL`` of SD's config, random weights, behind ComfyUI's
``VAE.encode`` steps). Sizes: 1024x1024 and 16 x 1024x1024.

Placements:
- ``cpu``: IMAGE and MASK on the CPU, as ComfyUI hands them to a node. ``stock`` runs the node's code
  (``inpaint_fused.reference``); ``fused`` runs the fused node's glue (``inpaint_fused.comfyui.masks``),
  which decides where to run (the CPU for feather/threshold/composite, the VAE's GPU for the
  conditioning's fill). Target: ``fused`` never slower than ``stock``.
- ``gpu``: inputs already on the GPU (``--gpu-only``): the stock code on the GPU vs the Triton kernel.
  Target: feather and composite >= 10x faster than stock.

``extra_info``: ``bytes`` (the least a node must read and write), ``gb_per_s`` over the median node
time; on a GPU also ``kernel_ms`` (the fused op alone, ``triton.testing.do_bench``), its GB/s and
``copy_fraction`` (of a device-to-device copy measured once: target >= 0.5 at 16 x 1024^2). For the
conditioning, ``encodes_ms`` (the two ``vae.encode`` calls alone) and ``over_encodes`` (node time /
encodes time - 1: target <= 0.05).

    pytest bench/bench_mask_nodes.py --benchmark-json bench/results/mask-nodes.json
    pytest bench/bench_mask_nodes.py -k "not conditioning" --benchmark-disable   # CPU smoke, ~1 min

GPU cases skip without CUDA. Do not collect ``tests/`` in the same session (its conftest turns on
Triton's interpreter).
"""

from __future__ import annotations

import functools
import statistics
import time

import pytest
import torch

pytest.importorskip("pytest_benchmark")

import inpaint_fused as ifd  # noqa: E402
from inpaint_fused import reference  # noqa: E402
from inpaint_fused.comfyui import masks as fused_nodes  # noqa: E402

CUDA = torch.cuda.is_available()
SIZES = {"1024": (1, 1024, 1024), "16x1024": (16, 1024, 1024)}
FEATHER = (64, 64, 64, 64)
NODES = ("feather", "threshold", "composite", "conditioning")


def _sync() -> None:
    if CUDA:
        torch.cuda.synchronize()


def _median_s(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        _sync()
        start = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@functools.cache
def copy_gb_per_s() -> float:
    """Device-to-device copy bandwidth (bytes read + written per second) over 512 MiB, the roofline."""
    import triton.testing

    src = torch.empty(512 * 2**20, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = triton.testing.do_bench(lambda: dst.copy_(src), warmup=25, rep=200)
    return 2 * src.numel() / (ms * 1e-3) / 1e9


class ComfyLikeVAE:
    """ComfyUI ``VAE.encode``'s steps around an SD-config diffusers ``AutoencoderKL`` (random weights)."""

    def __init__(self, device: str, dtype: torch.dtype = torch.bfloat16):
        from diffusers import AutoencoderKL

        torch.manual_seed(0)
        self.model = (
            AutoencoderKL(
                block_out_channels=(128, 256, 512, 512),
                down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4,
                layers_per_block=2,
                latent_channels=4,
            )
            .to(device=device, dtype=dtype)
            .eval()
        )
        self.device = torch.device(device)
        self.vae_dtype = dtype
        self.output_device = torch.device("cpu")
        self.downscale_ratio = 8

    def spacial_compression_encode(self) -> int:
        return 8

    def process_input(self, image: torch.Tensor) -> torch.Tensor:
        return image * 2.0 - 1.0

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        pixels = reference.vae_encode_crop_pixels(pixels, 8).movedim(-1, 1)
        out = []
        with torch.no_grad():
            for start in range(0, pixels.shape[0], 4):  # ComfyUI batches by free memory
                pixels_in = self.process_input(pixels[start : start + 4]).to(self.vae_dtype).to(self.device)
                out.append(self.model.encode(pixels_in).latent_dist.mode().to(self.output_device).float())
        return torch.cat(out)


@functools.cache
def vae() -> ComfyLikeVAE:
    return ComfyLikeVAE("cuda")


def make_inputs(node: str, size: str, device: str) -> dict:
    batch, h, w = SIZES[size]
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(batch, h, w)
    window = mask[:, h // 4 : 3 * h // 4, w // 3 : 2 * w // 3]
    window.copy_(torch.rand(window.shape, generator=g))
    mask = mask.to(device)
    if node in ("feather", "threshold"):
        return {"mask": mask}
    pixels = torch.rand(batch, h, w, 3, generator=g).to(device)
    if node == "composite":
        return {"destination": pixels, "source": torch.rand(batch, h, w, 3, generator=g).to(device), "mask": mask}
    return {"pixels": pixels, "mask": mask}


def node_call(node: str, provider: str, inputs: dict):
    stock = provider == "stock"
    if node == "feather":
        fn = reference.feather_mask_node if stock else fused_nodes.feather
        return lambda: fn(inputs["mask"], *FEATHER)
    if node == "threshold":
        fn = reference.threshold_mask_node if stock else fused_nodes.threshold
        return lambda: fn(inputs["mask"], 0.5)
    if node == "composite":
        fn = reference.composite_masked_node if stock else fused_nodes.composite
        return lambda: fn(inputs["destination"], inputs["source"], 0, 0, False, inputs["mask"])
    positive, negative = [[torch.zeros(1, 77, 768), {}]], [[torch.zeros(1, 77, 768), {}]]
    if stock:

        def stock_conditioning():
            filled, mask = reference.inpaint_model_conditioning_prepare(inputs["pixels"], inputs["mask"])
            concat, orig = vae().encode(filled), vae().encode(inputs["pixels"])
            values = {"concat_latent_image": concat, "concat_mask": mask}
            return (
                reference.conditioning_set_values(positive, values),
                reference.conditioning_set_values(negative, values),
                {"samples": orig, "noise_mask": mask},
            )

        return stock_conditioning
    return lambda: fused_nodes.inpaint_model_conditioning(
        positive, negative, inputs["pixels"], vae(), inputs["mask"], True
    )


def kernel_call(node: str, inputs: dict):
    """The fused op alone and the bytes it must move (on the GPU)."""
    if node == "feather":
        return (lambda: ifd.feather_mask(inputs["mask"], *FEATHER)), 8 * inputs["mask"].numel()
    if node == "threshold":
        return (lambda: ifd.threshold_mask(inputs["mask"], 0.5)), 8 * inputs["mask"].numel()
    if node == "composite":
        d, s, m = inputs["destination"], inputs["source"], inputs["mask"]
        return (lambda: ifd.composite_masked(d, s, 0, 0, False, m)), 4 * (3 * d.numel() + m.numel())
    p, m = inputs["pixels"], inputs["mask"]
    # pixels and mask read, bf16 VAE input written, the mask output written
    nbytes = 4 * p.numel() + 2 * p.numel() + 8 * m.numel()
    return (lambda: ifd.prepare_inpaint_conditioning(p, m, torch.bfloat16)), nbytes


def node_bytes(node: str, inputs: dict) -> int:
    if node == "conditioning":
        p, m = inputs["pixels"], inputs["mask"]
        return 4 * p.numel() * 2 + 8 * m.numel()  # read the pixels, write the filled copy; mask in and out
    return kernel_call(node, inputs)[1]


CASES = [
    pytest.param(
        node, size, placement, provider,
        id=f"{node}-{size}-{placement}-{provider}",
        marks=[pytest.mark.gpu] if placement == "gpu" or node == "conditioning" else [],
    )
    for node in NODES
    for size in SIZES
    for placement in ("cpu", "gpu")
    for provider in ("stock", "fused")
    if not (node == "conditioning" and placement == "gpu" and size == "16x1024")  # same encodes as cpu inputs
]  # fmt: skip


@pytest.mark.parametrize(("node", "size", "placement", "provider"), CASES)
def test_node(benchmark, node, size, placement, provider):
    if (placement == "gpu" or node == "conditioning") and not CUDA:
        pytest.skip("needs a CUDA device")
    inputs = make_inputs(node, size, "cuda" if placement == "gpu" else "cpu")
    call = node_call(node, provider, inputs)
    call()  # warm-up: Triton compiles, cuDNN picks algorithms, ComfyUI-like VAE loads
    slow = node == "conditioning" or (placement == "cpu" and size == "16x1024")
    rounds = 3 if slow else 20
    median = _median_s(call, rounds)
    info = {"node": node, "size": size, "placement": placement, "provider": provider}
    info["median_ms"] = median * 1e3
    info["bytes"] = node_bytes(node, inputs)
    info["gb_per_s"] = info["bytes"] / median / 1e9
    if CUDA and provider == "fused" and placement == "gpu" or (node == "conditioning" and provider == "fused"):
        import triton.testing

        gpu_inputs = inputs if placement == "gpu" else make_inputs(node, size, "cuda")
        kernel, nbytes = kernel_call(node, gpu_inputs)
        info["kernel_ms"] = triton.testing.do_bench(kernel, warmup=10, rep=100)
        info["kernel_gb_per_s"] = nbytes / (info["kernel_ms"] * 1e-3) / 1e9
        info["copy_fraction"] = info["kernel_gb_per_s"] / copy_gb_per_s()
    if node == "conditioning":
        filled, _ = reference.inpaint_model_conditioning_prepare(inputs["pixels"], inputs["mask"])
        info["encodes_ms"] = 1e3 * _median_s(lambda: (vae().encode(filled), vae().encode(inputs["pixels"])), rounds)
        info["over_encodes"] = info["median_ms"] / info["encodes_ms"] - 1
    benchmark.group = f"{node}-{size}-{placement}"
    benchmark.extra_info.update(info)
    benchmark.pedantic(lambda: (call(), _sync()), rounds=rounds, warmup_rounds=0)
