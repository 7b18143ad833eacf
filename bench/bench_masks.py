"""Part (d) of ``bench/bench_precompute.py`` alone: the random-mask generator, GPU vs CPU, per 512² image.

GPU: sample ids -> masks on the GPU (host blake2b keys, the draw kernel, the rasterizer kernel,
synchronized), batches of 64. CPU: the same family on one core: the same vectorized draw on CPU
tensors, then Pillow ImageDraw of exactly those shapes. Target (issue #14): GPU >= 10x faster.

    python bench/bench_masks.py                     # < 1 min on an H200; prints the line, --json to keep it
    python -m pytest bench/bench_masks.py -s        # the same, skipped without CUDA
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_precompute import mask_speed, print_masks, write_json  # noqa: E402

from inpaint_fused import benchmarking  # noqa: E402
from inpaint_fused.precompute import MaskFamily  # noqa: E402


def measure(images: int = 2048, size: int = 512, batch_size: int = 64) -> dict:
    device = torch.device("cuda")
    ids = [f"part{i % 4}/{i:06d}.jpg" for i in range(images)]
    family = MaskFamily()
    return {
        "kind": "masks",
        "environment": benchmarking.environment(device),
        "config": {"images": images, "size": size, "batch_size": batch_size, "mask_family": family.settings()},
        "results": {"masks": mask_speed(ids, family, size, batch_size, device)},
    }


@pytest.mark.gpu
def test_mask_generator_speed():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    result = measure()
    print_masks(result["results"]["masks"])
    assert result["results"]["masks"]["speedup"] > 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_masks: needs a CUDA device", file=sys.stderr)
        return 2
    result = measure(args.images, args.size, args.batch_size)
    print_masks(result["results"]["masks"])
    write_json(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
