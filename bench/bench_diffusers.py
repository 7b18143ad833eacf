"""The preprocessing share of a diffusers inpaint call: stock vs fused mask step.

``preprocess`` times what runs between the user's inputs (PIL images, or CPU float tensors at the
processed size) and the VAE's input on the device. ``stock``: the stock processors on the CPU,
``init_image * (mask < 0.5)``, nearest resize and ``.to(device, dtype)`` (SD, SDXL, Flux inpaint;
Flux Fill: ``init_image * (1 - mask)`` and the full-size mask). ``fused``: what the fused pipelines
do, through the same ``_BytesToDevice`` processors: PIL steps on the CPU and bytes to the device
(tensors: uploaded as given), the rest of the processors and the fused op there.
``pipeline_call`` times a whole call of an SD-1.5-sized inpaint pipeline with random weights (built
from its config, no download) so that ``extra_info["preprocess_share"]`` puts the step in
proportion. GPU cases carry the ``gpu`` marker; the small CPU case smoke-tests the file in CI.
The preprocessing steps run no convolution; the whole calls (UNet, VAE) run with cuDNN autotuning
on for stock and fused alike (``extra_info["cudnn_benchmark"]``). Timing goes through
:mod:`inpaint_fused.benchmarking` and its samples become pytest-benchmark's statistics, except the
pipeline call, where pytest-benchmark times each stock-then-fused pair.

    pytest bench/bench_diffusers.py --benchmark-json=bench/results/diffusers.json

The JSON's ``inpaint_fused`` entry records the GPU, versions and commit (``INPAINT_FUSED_COMMIT``
overrides git, for a copied work tree).
"""

import functools
import time

import numpy as np
import PIL.Image
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("diffusers")
pytest.importorskip("pytest_benchmark")

from diffusers import (  # noqa: E402
    AutoencoderKL,
    DDIMScheduler,
    StableDiffusionInpaintPipeline,
    UNet2DConditionModel,
)
from diffusers.image_processor import VaeImageProcessor  # noqa: E402

from inpaint_fused import benchmarking as bm  # noqa: E402
from inpaint_fused.diffusers import FusedStableDiffusionInpaintPipeline, prepare_masked_image  # noqa: E402
from inpaint_fused.diffusers.pipelines import _BytesToDevice  # noqa: E402

CUDA = torch.cuda.is_available()
gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA device")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _inputs(size: int, kind: str = "pil"):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[size // 4 : 3 * size // 4, size // 3 : 2 * size // 3] = 255
    if kind == "tensor":  # [0, 1] floats, (1, 3, H, W) and (1, 1, H, W), as users pass them
        return (
            torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255,
            torch.from_numpy(mask)[None, None].float() / 255,
        )
    return PIL.Image.fromarray(image), PIL.Image.fromarray(mask, mode="L")


def _processors(pipeline: str):
    # Flux's processors round sizes to 2 * f (packing); the mask step is the same.
    factor = 16 if pipeline == "flux-fill" else 8
    image_processor = VaeImageProcessor(vae_scale_factor=factor)
    mask_processor = VaeImageProcessor(
        vae_scale_factor=factor, do_normalize=False, do_binarize=True, do_convert_grayscale=True
    )
    return image_processor, mask_processor


def _stock_step(pipeline, image, mask, size, device, dtype):
    """Statement for statement what the stock pipeline runs up to the VAE's input."""
    image_processor, mask_processor = _processors(pipeline)
    init_image = image_processor.preprocess(image, height=size, width=size).to(dtype=torch.float32)
    mask_condition = mask_processor.preprocess(mask, height=size, width=size)
    if pipeline == "flux-fill":
        masked_image = (init_image * (1 - mask_condition)).to(device=device, dtype=dtype)
        mask_out = mask_condition.to(device=device, dtype=dtype)  # folded into 64 channels, then moved
    else:
        masked_image = init_image * (mask_condition < 0.5)
        mask_out = F.interpolate(mask_condition, size=(size // 8, size // 8)).to(device=device, dtype=dtype)
        masked_image = masked_image.to(device=device, dtype=dtype)
    _sync(device)
    return masked_image, mask_out


def _fused_step(pipeline, image, mask, size, device, dtype):
    """The fused pipeline's route: PIL steps on the host, bytes to the device, one kernel."""
    image_processor, mask_processor = (_BytesToDevice(p, device) for p in _processors(pipeline))
    init_image = image_processor.preprocess(image, height=size, width=size).to(dtype=torch.float32)
    mask_condition = mask_processor.preprocess(mask, height=size, width=size)
    if pipeline == "flux-fill":
        out = prepare_masked_image(
            init_image.to(device), mask_condition, vae_scale_factor=1, dtype=dtype, formula="image * (1 - mask)"
        )
    else:
        out = prepare_masked_image(init_image.to(device), mask_condition, vae_scale_factor=8, dtype=dtype)
    _sync(device)
    return out


CASES = [
    pytest.param("sd", "cpu", 64, torch.float32, id="sd-cpu-64"),
    pytest.param("sd", "cuda", 512, torch.float16, id="sd-cuda-512", marks=[gpu, needs_cuda]),
    pytest.param("sd", "cuda", 1024, torch.float16, id="sd-cuda-1024", marks=[gpu, needs_cuda]),
    pytest.param("flux-fill", "cuda", 1024, torch.bfloat16, id="flux-fill-cuda-1024", marks=[gpu, needs_cuda]),
]


STEPS = {"stock": _stock_step, "fused": _fused_step}


@pytest.mark.parametrize("provider", list(STEPS))
@pytest.mark.parametrize("inputs", ["pil", "tensor"])
@pytest.mark.parametrize("pipeline, device_name, size, dtype", CASES)
def test_preprocess(benchmark, hand_over, provider, inputs, pipeline, device_name, size, dtype):
    device = torch.device(device_name)
    image, mask = _inputs(size, inputs)
    step = STEPS[provider]
    step(pipeline, image, mask, size, device, dtype)  # warm-up: compile, allocator
    benchmark.group = f"preprocess {pipeline} {size} {inputs}"
    benchmark.extra_info.update(
        {
            "provider": provider,
            "pipeline": pipeline,
            "inputs": inputs,
            "size": size,
            "dtype": str(dtype),
            "device": _device_name(device),
        }
    )
    # Host work ending in a device synchronisation (inside the step): perf_counter times it whole.
    budget = 0.0 if benchmark.disabled else 1.0
    samples = bm.time_cpu(lambda: step(pipeline, image, mask, size, device, dtype), budget)
    benchmark.extra_info["median_ms"] = float(np.median(samples))
    hand_over(samples)


OP_CASES = [
    pytest.param(1, 1024, "image * (mask < 0.5)", 8, id="1x1024-lt-half"),
    pytest.param(1, 1024, "image * (1 - mask)", 1, id="1x1024-one-minus"),
    pytest.param(16, 1024, "image * (mask < 0.5)", 8, id="16x1024-lt-half"),
    pytest.param(16, 1024, "image * (1 - mask)", 1, id="16x1024-one-minus"),
]


@gpu
@needs_cuda
@pytest.mark.parametrize("batch, size, formula, factor", OP_CASES)
def test_op(benchmark, hand_over, batch, size, formula, factor):
    """The kernel alone: float32 image and mask on the GPU to the bf16 VAE input and mask, against a copy;
    whole calls by CUDA events and the GPU time alone by CUDA-graph replay."""
    device, dtype = torch.device("cuda"), torch.bfloat16
    g = torch.Generator(device=device).manual_seed(0)
    image = torch.rand(batch, 3, size, size, device=device, generator=g) * 2 - 1
    mask = torch.rand(batch, 1, size, size, device=device, generator=g)
    run = functools.partial(prepare_masked_image, image, mask, vae_scale_factor=factor, dtype=dtype, formula=formula)
    moved = sum(t.numel() * t.element_size() for t in (image, mask, *run()))
    samples = bm.time_cuda(run, 0.5)
    median_ms = float(np.median(samples))
    gpu_only = bm.time_cuda_graph(run, 0.25, median_ms)
    gbps = bm.gbps(moved, median_ms)
    copy_gbps = bm.copy_bandwidth(device, moved // 2)["gbps"]
    benchmark.group = "prepare_masked_image on the GPU"
    benchmark.extra_info.update(
        {
            "provider": "fused",
            "batch": batch,
            "size": size,
            "formula": formula,
            "vae_scale_factor": factor,
            "bytes": moved,
            "median_ms": median_ms,
            "gbps": gbps,
            "copy_gbps": copy_gbps,
            "fraction_of_copy": gbps / copy_gbps,
            "gpu_only_ms": gpu_only.median_ms,
            "gpu_only_reason": gpu_only.reason,
            "gpu_only_gbps": bm.gbps(moved, gpu_only.median_ms) if gpu_only.median_ms else None,
            "device": _device_name(device),
        }
    )
    hand_over(samples)


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


@pytest.fixture(scope="module")
def sd15_sized_pipeline() -> FusedStableDiffusionInpaintPipeline:
    """An SD-1.5-sized fp16 inpaint pipeline with random weights on the GPU, shared by the providers."""
    device, dtype = torch.device("cuda"), torch.float16
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=2,
        latent_channels=4,
    )
    unet = UNet2DConditionModel(in_channels=9, out_channels=4, cross_attention_dim=768, sample_size=64)
    pipe = FusedStableDiffusionInpaintPipeline(
        vae=vae,
        text_encoder=None,
        tokenizer=None,
        unet=unet,
        scheduler=DDIMScheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device, dtype)


@gpu
@needs_cuda
def test_pipeline_call(benchmark, sd15_sized_pipeline):
    """Whole calls, stock and fused alternately on one pipeline (the host's launch time drifts between runs)."""
    pipe = sd15_sized_pipeline
    device, dtype, size, steps = torch.device("cuda"), torch.float16, 512, 20
    image, mask = _inputs(size)
    embeds = torch.randn(1, 77, 768, device=device, dtype=dtype)
    # The stock __call__ on the same object: its overrides pass through when the fused call is not on.
    calls = {"stock": functools.partial(StableDiffusionInpaintPipeline.__call__, pipe), "fused": pipe}
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    latents: dict[str, torch.Tensor] = {}

    def run(name):
        start = time.perf_counter()
        latents[name] = calls[name](
            image=image,
            mask_image=mask,
            prompt_embeds=embeds,
            negative_prompt_embeds=embeds,
            num_inference_steps=steps,
            generator=torch.Generator().manual_seed(0),
            output_type="latent",
        ).images
        _sync(device)
        seconds[name].append(time.perf_counter() - start)

    def pair():
        run("stock")
        run("fused")

    # The UNet's and VAE's convolutions at their strongest for both: cuDNN autotuning on, its search
    # done in the two untimed pairs; the previous setting comes back after.
    with bm.cudnn_autotuning(device) as autotuned:
        pair()
        pair()
        seconds = {name: [] for name in calls}
        benchmark.group = f"pipeline call sd {size}, {steps} steps"
        benchmark.pedantic(pair, rounds=5, iterations=1)
    info = {
        "size": size,
        "steps": steps,
        "device": _device_name(device),
        "provider": "stock+fused",
        "cudnn_benchmark": autotuned,
    }
    for name in calls:
        preprocess = min(_timed(STEPS[name], "sd", image, mask, size, device, dtype) for _ in range(5))
        median = float(np.median(seconds[name]))
        info[name] = {"median_s": median, "preprocess_s": preprocess, "preprocess_share": preprocess / median}
    info["max_abs_latent_difference"] = (latents["stock"] - latents["fused"]).abs().max().item()
    benchmark.extra_info.update(info)


def _timed(step, *args) -> float:
    start = time.perf_counter()
    step(*args)
    return time.perf_counter() - start
