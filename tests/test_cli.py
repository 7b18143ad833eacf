"""The ``inpaint-fused`` command line: demo previews, masks from PNGs, errors, bench and report."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import inpaint_fused as ifd
from inpaint_fused import benchmarking as bm
from inpaint_fused import cli
from inpaint_fused.cli import demo, pictures

FIXTURE = Path(__file__).parent / "data" / "bench-quick-cpu.json"


def _save(tensor: torch.Tensor, path: Path, mode: str) -> Path:
    data = (tensor.clamp(0, 1) * 255).round().to(torch.uint8).contiguous()
    Image.frombytes(mode, (data.shape[1], data.shape[0]), bytes(data.flatten().tolist())).save(path)
    return path


def _picture(height: int, width: int) -> torch.Tensor:
    rows = torch.linspace(0, 1, height).view(-1, 1, 1)
    cols = torch.linspace(0, 1, width).view(1, -1, 1)
    return torch.cat(
        [rows.expand(height, width, 1), cols.expand(height, width, 1), (rows * cols).expand(height, width, 1)], -1
    )


def _disc(height: int, width: int) -> torch.Tensor:
    rows = torch.linspace(-1, 1, height).view(-1, 1)
    cols = torch.linspace(-1, 1, width).view(1, -1)
    return ((0.6 - (rows**2 + cols**2).sqrt()) * 6 + 0.5).clamp(0, 1)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _assert_preview(path: Path, height: int, width: int) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        assert image.size == pictures.preview_size(height, width)
        colors = image.getcolors(maxcolors=1 << 20)
    assert colors is None or len(colors) > 50  # a real picture, not a blank canvas


def test_demo_without_arguments_writes_the_preview(tmp_path):
    """The README's main command, as on a fresh machine: no interpreter, bundled sample picture and mask."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run(
        [sys.executable, "-m", "inpaint_fused", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    with Image.open(pictures.SAMPLE_IMAGE) as sample:
        width, height = sample.size
    _assert_preview(tmp_path / "inpaint-preview.png", height // 8 * 8, width // 8 * 8)
    assert "identical to the original code" in done.stdout
    assert "bundled sample" in done.stdout and "original code" in done.stdout
    if not torch.cuda.is_available():
        assert "no CUDA GPU found: the CPU path" in done.stdout
        # Compared with the GPU reference shipped in the package, like with like: grow_mask_by=6.
        gpu_line = next(line for line in done.stdout.splitlines() if "on a GPU the fused kernels took" in line)
        assert "-g6:f32 (" in gpu_line and "slower" in gpu_line


def test_sample_assets_are_small_and_differ_in_size():
    with Image.open(pictures.SAMPLE_IMAGE) as image, Image.open(pictures.SAMPLE_MASK) as mask:
        assert image.mode == "RGB" and mask.mode == "L" and image.size != mask.size
        assert max(image.size) <= 512
    assert pictures.SAMPLE_IMAGE.stat().st_size + pictures.SAMPLE_MASK.stat().st_size < 200_000


def test_demo_with_image_and_grayscale_mask_of_other_sizes(tmp_path, device, capsys):
    image = _save(_picture(45, 61), tmp_path / "image.png", "RGB")
    mask = _save(_disc(20, 30), tmp_path / "mask.png", "L")
    out = tmp_path / "preview.png"
    status, text, err = _run(
        capsys,
        "demo",
        "--image",
        str(image),
        "--mask",
        str(mask),
        "--grow",
        "4",
        "-o",
        str(out),
        "--device",
        device.type,
    )
    assert status == 0, err
    _assert_preview(out, 40, 56)
    assert "gray levels, white = repaint" in text and "grow_mask_by=4" in text
    assert "identical to the original code" in text


def test_demo_was_offset_and_image_alpha_as_mask(tmp_path, device, capsys):
    rgba = torch.cat([_picture(33, 48), 1 - _disc(33, 48)[..., None]], -1)
    image = _save(rgba, tmp_path / "cutout.png", "RGBA")
    out = tmp_path / "was.png"
    status, text, err = _run(
        capsys, "demo", "--image", str(image), "--was-offset", "-3", "-o", str(out), "--device", device.type
    )
    assert status == 0, err
    _assert_preview(out, 32, 48)
    assert "the image's alpha" in text and "mask_offset=-3" in text and "WAS" in text
    assert "identical to the original code" in text


def test_mask_from_alpha_is_transparent_means_repaint(tmp_path):
    alpha = torch.zeros(10, 12)
    alpha[2:5, 3:9] = 1.0
    rgba = torch.cat([torch.ones(10, 12, 3), alpha[..., None]], -1)
    mask, description = pictures.load_mask(_save(rgba, tmp_path / "alpha.png", "RGBA"))
    assert "alpha" in description
    assert torch.equal(mask[0], 1 - alpha)


def test_mask_from_gray_levels_and_opaque_alpha(tmp_path):
    gray = _disc(16, 16)
    mask, description = pictures.load_mask(_save(gray, tmp_path / "gray.png", "L"))
    assert "gray levels" in description and mask.shape == (1, 16, 16)
    assert torch.allclose(mask[0], gray, atol=1 / 255)
    opaque = torch.cat([gray[..., None].expand(16, 16, 3), torch.ones(16, 16, 1)], -1)
    mask, description = pictures.load_mask(_save(opaque, tmp_path / "opaque.png", "RGBA"))
    assert "gray levels" in description and torch.allclose(mask[0], gray, atol=1 / 255)


def test_mask_from_16_bit_png(tmp_path):
    path = tmp_path / "deep.png"
    Image.new("I;16", (5, 4), 65535).save(path)
    mask, _ = pictures.load_mask(path)
    assert torch.equal(mask, torch.ones(1, 4, 5))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--image", "missing.png"], "--image: no such file: missing.png"),
        (["--mask", "missing.png"], "--mask: no such file"),
        (["--image", "notes.png"], "--image: cannot read notes.png as an image"),
        (["--mask", "."], "--mask: not a file"),
        (["-o", "no/such/dir/p.png"], "-o: directory no/such/dir does not exist"),
        (["--grow", "-1"], "grow_mask_by must be >= 0"),
    ],
)
def test_demo_errors_are_clear(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.png").write_text("not a picture")
    status, _, err = _run(capsys, "demo", "--device", "cpu", *argv)
    assert status == 2
    assert err.startswith("inpaint-fused: error: ") and message in err


@pytest.mark.parametrize("grow", ["3", "6"])  # 6 is the default: it must not slip past the check
def test_demo_rejects_grow_and_was_offset_together(capsys, grow):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--grow", grow, "--was-offset", "4"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("value", "was", "expected"),
    [(6, False, 6), (64, False, 64), (10**9, False, 129), (-999, True, -64), (999, True, 64), (-3, True, -3)],
)
def test_the_original_code_runs_with_an_equivalent_box_when_the_box_covers_the_image(value, was, expected):
    assert demo._equivalent_value(value, was, (32, 64), (40, 56)) == expected


def test_equivalent_box_gives_the_same_result_as_the_huge_one():
    generator = torch.Generator().manual_seed(3)
    pixels, mask = torch.rand(1, 12, 20, 3, generator=generator), (torch.rand(1, 9, 14, generator=generator) > 0.7)
    mask = mask.float()
    for value, was in ((300, False), (301, False), (-200, True), (200, True)):
        encode = ifd.reference.was_vae_encode_for_inpaint if was else ifd.reference.vae_encode_for_inpaint
        small = encode(pixels, mask, demo._equivalent_value(value, was, mask.shape[1:], pixels.shape[1:3]))
        huge = encode(pixels, mask, value)
        assert torch.equal(small[0], huge[0]) and torch.equal(small[1], huge[1])


def test_demo_does_not_sit_silent_on_a_huge_box(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "_estimate_original_seconds", lambda *args: 600.0)
    status, out, err = _run(capsys, "demo", "--device", "cpu", "--was-offset", "-999", "-o", str(tmp_path / "p.png"))
    assert status == 0
    assert "timing  inpaint-fused" in err
    assert "original code on the CPU: not run, about 10 min per call" in out and "--time-original" in out
    assert "the original code runs with mask_offset=" in out
    assert (tmp_path / "p.png").is_file()


@pytest.mark.parametrize(
    "entry", [["-m", "inpaint_fused"], ["-c", "import sys; from inpaint_fused.cli import main; sys.exit(main())"]]
)
def test_no_arguments_lists_the_commands_the_same_way(entry):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, *entry], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert "usage: inpaint-fused" in done.stdout and "demo" in done.stdout and "bench" in done.stdout


def test_bench_quick_writes_json_with_metadata(tmp_path, capsys):
    path, markdown = tmp_path / "results.json", tmp_path / "bench.md"
    status, text, _ = _run(
        capsys, "bench", "--quick", "--device", "cpu", "--case", "32x40-g6:bf16", "--case", "grow-32x32-w5",
        "--budget", "0.01", "--progress", "none", "--json", str(path), "--markdown", str(markdown),
    )  # fmt: skip
    assert status == 0
    data = json.loads(path.read_text())
    meta = data["meta"]
    assert meta["schema"] == bm.SCHEMA and meta["complete"] and meta["quick"]
    assert meta["argv"][:2] == ["inpaint-fused", "bench"]
    for key in ("gpu", "torch", "triton", "commit", "commit_dirty", "source_hash", "cpu", "cpu_threads", "copy"):
        assert key in meta
    assert meta["torch"] == torch.__version__ and meta["copy"]["cpu"]["gbps"] > 0
    assert {r["id"] for r in data["results"]} == {"32x40-g6:bf16", "grow-32x32-w5"}
    assert all(r["status"] in ("ok", "skipped") for r in data["results"])
    assert "Whole preprocessing" in text and "32x40-g6:bf16" in text and "vs reference-cpu" in text
    assert markdown.read_text().count("| 32x40-g6:bf16 |") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--case", "huge"], "--case: case 'huge' does not parse"), (["--providers", "fused,nope"], "unknown nope")],
)
def test_bench_errors_are_clear(capsys, argv, message):
    status, _, err = _run(capsys, "bench", "--device", "cpu", *argv)
    assert status == 2 and message in err


def test_report_writes_markdown_readme_and_plot(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{bm.README_START}\n{bm.README_END}\n")
    argv = ["report", str(FIXTURE), "--markdown", str(tmp_path / "t.md"), "--readme", str(readme)]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        plot = None
    else:
        plot = tmp_path / "img" / "bench.png"
        argv += ["--plot", str(plot)]
    status, text, err = _run(capsys, *argv)
    assert status == 0, err
    assert "Whole preprocessing" in text and "512x512-g6:f32" in text
    assert "512x512-g6:f32" in (tmp_path / "t.md").read_text()
    body = readme.read_text()
    assert body.startswith("intro\n") and "| 512x512-g6:f32 |" in body
    if plot is not None:
        assert plot.is_file() and "![benchmark plots](img/bench.png)" in body


def test_report_writes_the_demo_summary_of_gpu_results_only(tmp_path, capsys):
    summary = tmp_path / "gpu_reference.json"
    status, _, err = _run(capsys, "report", str(FIXTURE), "--demo-summary", str(summary))
    assert status == 2 and "--demo-summary: the demo compares with GPU results" in err and not summary.exists()
    data = json.loads(FIXTURE.read_text())
    data["meta"].update(device="cuda", gpu="Fake GPU")
    (tmp_path / "gpu.json").write_text(json.dumps(data))
    status, text, err = _run(capsys, "report", str(tmp_path / "gpu.json"), "--demo-summary", str(summary))
    assert status == 0, err
    written = bm.load_demo_summary(summary)
    assert written["gpu"] == "Fake GPU" and f"summary {summary} ({len(written['rows'])} fused rows" in text
    assert {r["id"] for r in written["rows"]} >= {"512x512-g6:f32", "512x512-was-16:bf16"}


def test_report_missing_file(capsys):
    status, _, err = _run(capsys, "report", "nowhere.json")
    assert status == 2 and "no such results file: nowhere.json" in err


def _diffusers_results(tmp_path):
    def bench(name, seconds, **info):
        return {"name": name, "stats": {"median": seconds}, "extra_info": info}

    pre = {"pipeline": "sd", "size": 1024, "dtype": "torch.float16", "inputs": "pil", "device": "NVIDIA H100"}
    data = {
        "environment": {"gpu": "NVIDIA H100", "torch": "2.11", "triton": "3.6", "commit": "abc", "diffusers": "0.42.1"},
        "benchmarks": [
            bench("test_preprocess[sd-cuda-1024-pil-stock]", 0.020, provider="stock", **pre),
            bench("test_preprocess[sd-cuda-1024-pil-fused]", 0.004, provider="fused", **pre),
            bench("test_preprocess[sd-cpu-64-pil-stock]", 0.001, provider="stock", **{**pre, "device": "cpu"}),
            bench(
                "test_op[1x1024-lt-half]",
                0.0001,
                provider="fused",
                batch=1,
                size=1024,
                formula="image * (mask < 0.5)",
                median_ms=0.031,
                gbps=1200.0,
                fraction_of_copy=0.4,
                gpu_only_ms=0.0245,
            ),
            bench(
                "test_pipeline_call",
                1.2,
                provider="stock+fused",
                size=512,
                steps=20,
                max_abs_latent_difference=0.0,
                cudnn_benchmark=True,
                stock={"median_s": 0.600, "preprocess_s": 0.003, "preprocess_share": 0.005},
                fused={"median_s": 0.590, "preprocess_s": 0.001, "preprocess_share": 0.0017},
            ),
        ],
    }
    path = tmp_path / "diffusers.json"
    path.write_text(json.dumps(data))
    return path


def test_report_diffusers_tables_and_readme_block(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"a\n{bm.README_START}\nkept\n{bm.README_END}\n{bm.DIFFUSERS_START}\nold\n{bm.DIFFUSERS_END}\n")
    status, text, err = _run(
        capsys, "report", "--diffusers", str(_diffusers_results(tmp_path)), "--readme", str(readme)
    )
    assert status == 0, err
    assert "| SD / SDXL / Flux inpaint | 1024² | float16 | PIL | 20.00 | 4.00 | 5.0x |" in text
    assert "| stock | 600.0 | 3.00 | 0.50 % |" in text and "| fused | 590.0 | 1.00 | 0.17 % |" in text
    assert "stock and fused latents: 0." in text
    assert "| 1 | 1024² | `image * (mask < 0.5)` | 31.0 µs | 24.5 µs | 1200 | 40.0 % |" in text
    assert "alternately on one pipeline, cuDNN autotuning on:" in text
    assert "64²" not in text  # the CPU smoke case of a GPU run is left out
    body = readme.read_text()
    assert "kept" in body and "old" not in body and "| stock | 600.0 |" in body and "diffusers 0.42.1" in body


def test_report_diffusers_errors(tmp_path, capsys):
    status, _, err = _run(capsys, "report", "--diffusers", str(FIXTURE))
    assert status == 2 and "not a bench_diffusers.py --benchmark-json file" in err
    status, _, err = _run(capsys, "report")
    assert status == 2 and "needs results files" in err


def test_demo_check_tells_ties_from_real_differences():
    mask = torch.zeros(1, 16, 16)
    mask[0, 5, 7] = 0.5  # a same-size resize is the identity: an exact tie, which rounds to 0
    pixels = _picture(16, 16)[None]
    seed = ifd.reference.vae_encode_for_inpaint(pixels, mask, 0)
    flipped = seed[1].clone()
    flipped[0, 0, 5, 7] = 1.0
    out = ifd.InpaintInputs(seed[0], flipped)
    assert "identical to the original code:" in demo._compare(ifd.InpaintInputs(*seed), seed, mask, 16, 16, 0)
    assert "but for 1 pixels next to bilinear ties" in demo._compare(out, seed, mask, 16, 16, 0)
    flipped[0, 0, 12, 2] = 1.0
    assert "DIFFERS from the original code: 2 noise-mask pixels" in demo._compare(out, seed, mask, 16, 16, 0)
