"""The README block of ``bench/bench_precompute.py`` results, between ``<!-- precompute-table:start/end -->``.

python bench/precompute_table.py bench/results/precompute-h200.json              # print the block
python bench/precompute_table.py bench/results/precompute-h200.json --readme README.md   # replace it there
python bench/precompute_table.py bench/results/precompute-h200.json --masks bench/results/masks-h200.json ...
    # part (d) from a later bench/bench_masks.py run
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

START, END = "<!-- precompute-table:start -->", "<!-- precompute-table:end -->"


def render(result: dict, masks_result: dict | None = None) -> str:
    """Markdown of one result file: the four measurements and where they come from; part (d) from a later
    ``bench/bench_masks.py`` file when one is given (its commit named)."""
    env, config, r = result["environment"], result["config"], result["results"]
    masks = r["masks"] if masks_result is None else masks_result["results"]["masks"]
    encodes = "masked + original latent" if config["keep_original"] else "masked latent"
    rows = [
        ("(a) the VAE alone, batches already on the GPU", f"{r['vae_ceiling_img_s']:.0f}", "ceiling"),
        (
            "(b) `inpaint-fused precompute` (decode, masks, preparation, encodes, shards)",
            f"{r['pipeline_img_s']:.0f}",
            f"{100 * r['pipeline_fraction_of_ceiling']:.0f} % of (a)",
        ),
        (
            '(c) "the standard way": Pillow + CPU masks + CPU masking in DataLoader workers, then `vae.encode`',
            f"{r['standard_img_s']:.0f}",
            f"(b) is {r['pipeline_vs_standard']:.2f}x",
        ),
    ]
    lines = [
        START,
        f"{config['images']} JPEGs {config['size']}x{config['size']}, {config['vae']}, {encodes} per image, batch"
        f" {config['batch_size']}, {config['workers']} decoding workers; {env.get('gpu')}, torch {env.get('torch')},"
        f" diffusers {env.get('diffusers')}, commit {str(env.get('commit'))[:10]}.",
        "",
        "| | images/s | |",
        "|---|---:|---|",
        *(f"| {name} | {value} | {note} |" for name, value, note in rows),
        "",
        _mask_line(masks, config["size"])
        + (
            ""
            if masks_result is None
            else f" (bench/bench_masks.py, commit {str(masks_result['environment'].get('commit'))[:10]}.)"
        )
        + f" cuDNN autotuning would lift (a) to {r['vae_ceiling_autotuned_img_s']:.0f} images/s at the price of"
        " run-to-run bit reproducibility.",
        END,
    ]
    return "\n".join(lines)


def _mask_line(masks: dict, size: int) -> str:
    """Part (d): ids -> masks on the GPU vs the CPU generator of the same family (files before issue #14:
    the GPU rasterizer alone vs Pillow alone, the parameters drawn on the host)."""
    if "cpu_us_per_image" not in masks:
        return (
            f"Masks (d): {masks['gpu_us_per_image']:.1f} µs per {size}² mask on the GPU vs"
            f" {masks['pil_us_per_image']:.0f} µs with Pillow ImageDraw on one CPU core: **{masks['speedup']:.0f}x**"
            f" (drawing the parameters on the host: {masks['params_us_per_image']:.0f} µs, in the decoding workers)."
        )
    return (
        f"Masks (d), batches of {masks['batch_size']}: sample ids to {size}² masks on the GPU in"
        f" {masks['gpu_us_per_image']:.1f} µs per mask (parameter draw {masks['gpu_draw_us_per_image']:.1f},"
        f" rasterizer {masks['gpu_raster_us_per_image']:.1f}) vs {masks['cpu_us_per_image']:.0f} µs for the same"
        f" family on one CPU core (the same draw on CPU tensors {masks['cpu_params_us_per_image']:.0f}, Pillow"
        f" ImageDraw {masks['pil_us_per_image']:.0f}): **{masks['speedup']:.0f}x**."
    )


def replace_block(text: str, block: str) -> str:
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"no {START} ... {END} block in the README")
    return pattern.sub(lambda _: block, text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("result", type=Path, help="JSON written by bench/bench_precompute.py")
    parser.add_argument("--readme", type=Path, help="replace the block in this file instead of printing it")
    parser.add_argument("--masks", type=Path, help="part (d) from this bench/bench_masks.py JSON instead")
    args = parser.parse_args(argv)
    masks = json.loads(args.masks.read_text()) if args.masks else None
    block = render(json.loads(args.result.read_text()), masks)
    if args.readme is None:
        print(block)
        return 0
    try:
        args.readme.write_text(replace_block(args.readme.read_text(), block))
    except ValueError as error:
        print(f"precompute_table: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
