"""The benchmark core: case names, bytes accounting, comparators, the runner, results files and reports.

``tests/data/bench-quick-cpu.json`` is the output of ``inpaint-fused bench --quick --json`` on a
CPU-only machine: the report tests read real results, not numbers typed here. Regenerate it with
that command when the quick cases or the record format change.
"""

import json
import math
from pathlib import Path

import pytest
import torch

import inpaint_fused as ifd
from inpaint_fused import benchmark as bm

FIXTURE = Path(__file__).parent / "data" / "bench-quick-cpu.json"

ISSUE_CASES = {
    "512x512-g6": "quick",
    "1024x1024-g6": "cpu",
    "1024x1024-mask512x512-g6": "cpu",
    "1023x1021-g6": "cpu",
    "2048x2048-g64": "gpu",
    "4096x4096-g6": "gpu",
    "b16x1024x1024-g6": "gpu",
    "video16x1024x1024-g6": "gpu",  # 16 images with 16 masks: the issue's batch-16 eager figure
    "video81x480x832-g6": "gpu",
    "1024x1024-was+128": "gpu",
    "1024x1024-was-128": "gpu",
}


def test_default_table_holds_the_issue_cases_with_both_outputs():
    ids = {case.id: case for case in bm.default_cases()}
    for name, tier in ISSUE_CASES.items():
        for output in ("f32", "bf16"):
            assert ids[f"{name}:{output}"].tier == tier
    widths = sorted(c.value for c in ids.values() if c.suite == "grow" and c.height == 2048)
    assert widths == [1, 6, 16, 64, 128, 257]
    assert all(c.tier == "gpu" for c in ids.values() if c.suite == "grow" and c.height == 2048)


@pytest.mark.parametrize("case", bm.default_cases(), ids=lambda c: c.id)
def test_case_names_round_trip(case):
    again = [c for c in bm.parse_case(case.name) if c.output == case.output]
    assert again == [case]
    assert bm.parse_case(case.id) == [case]


def test_case_name_grammar():
    video, batch = bm.parse_case("video3x40x48-was-3:bf16")[0], bm.parse_case("b16x1024x1024-g6:f32")[0]
    assert (video.batch, video.mask_batch, video.op, video.value, video.window) == (3, 3, "was", -3, 7)
    assert (batch.batch, batch.mask_batch, batch.images) == (16, 1, 16)
    masked = bm.parse_case("1024x1024-mask512x256-g0:f32")[0]
    assert (masked.mask_height, masked.mask_width, masked.window) == (512, 256, 1)
    assert [c.output for c in bm.parse_case("64x64-was0")] == ["f32", "bf16"]
    assert bm.parse_case("grow-b2x33x17-w6")[0].crop == (33, 17)
    assert bm.parse_case("1023x1021-g6:f32")[0].crop == (1016, 1016)


@pytest.mark.parametrize(
    "spec", ["1024-g6", "1024x1024", "1024x1024-g6:fp16", "grow-64x64-w6:f32", "4x4-g6", "0x64-g6", "x"]
)
def test_bad_case_names_say_why(spec):
    with pytest.raises(ValueError, match="case"):
        bm.parse_case(spec)


def test_select_cases_by_tier_pattern_and_name():
    quick = bm.select_cases(tiers=("quick",))
    assert quick and all(c.tier == "quick" for c in quick)
    assert {c.id for c in bm.select_cases(["grow-2048x2048-*"])} == {
        f"grow-2048x2048-w{w}" for w in (1, 6, 16, 64, 128, 257)
    }
    assert [c.id for c in bm.select_cases(["1536x640-g12:bf16"])] == ["1536x640-g12:bf16"]
    with pytest.raises(ValueError, match="matches none"):
        bm.select_cases(["nothing-*"])


def _nbytes(*tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


@pytest.mark.parametrize(
    "spec",
    ["b2x37x53-mask20x30-g6:f32", "b2x37x53-mask20x30-g6:bf16", "video3x24x40-was-3:bf16", "41x37-g0:f32"],
)
def test_bytes_moved_are_the_inputs_and_outputs_of_one_call(device, spec):
    case = bm.parse_case(spec)[0]
    pixels, mask = bm.make_inputs(case, device)
    prepare = ifd.prepare_inpaint_was if case.op == "was" else ifd.prepare_inpaint
    out = prepare(pixels, mask, case.value, vae_dtype=case.vae_dtype)
    assert case.input_bytes == _nbytes(pixels, mask)
    assert case.output_bytes == _nbytes(out.pixels, out.noise_mask)
    assert case.bytes_moved == _nbytes(pixels, mask, out.pixels, out.noise_mask)
    assert case.pixels == out.pixels.shape[0] * out.noise_mask.shape[-2] * out.noise_mask.shape[-1]
    assert case.memory_budget == case.output_bytes + out.noise_mask.numel()


def test_bytes_moved_of_the_mask_suite(device):
    case = bm.parse_case("grow-b2x33x17-w6")[0]
    (mask,) = bm.make_inputs(case, device)
    grown = ifd.grow_mask(mask, case.value)
    assert case.bytes_moved == _nbytes(mask, grown) == 2 * 2 * 33 * 17 * 4


def test_inputs_are_a_real_mask():
    pixels, mask = bm.make_inputs(bm.parse_case("video2x64x80-g6:f32")[0], torch.device("cpu"))
    rounded = mask.round()
    assert 0.2 < rounded.mean() < 0.8
    assert ((mask > 0.05) & (mask < 0.95)).any()
    assert not torch.equal(mask[0], mask[1])
    assert pixels.shape == (2, 64, 80, 3)


@pytest.mark.parametrize("width", [1, 2, 5, 6, 16])
def test_grow_comparators_compute_what_the_seed_computes(device, width):
    """The baselines must do the same work: conv2d (the seed), max_pool2d and fused agree bit for bit."""
    case = bm.parse_case(f"grow-b2x45x38-w{width}")[0]
    (mask,) = bm.make_inputs(case, device)
    seed = bm._conv2d_grow(width)(mask)
    assert torch.equal(bm._max_pool_grow(width)(mask), seed)
    assert torch.equal(ifd.grow_mask(mask, width).unsqueeze(1), seed)


def test_reference_provider_is_the_seed_then_the_vae_cast():
    case = bm.parse_case("40x56-mask17x23-g6:bf16")[0]
    pixels, mask = bm.make_inputs(case, torch.device("cpu"))
    out, noise = bm._reference_prepare(case)(pixels, mask)
    seed_pixels, seed_noise = ifd.reference.vae_encode_for_inpaint(pixels, mask, 6)
    assert torch.equal(out, (seed_pixels[..., :3].movedim(-1, 1) * 2 - 1).to(torch.bfloat16))
    assert torch.equal(noise, seed_noise)


def test_runner_records_on_cpu(tmp_path):
    path = tmp_path / "run.json"
    runner = bm.Runner(torch.device("cpu"), budget_s=0.01, json_path=path, quick=True, argv=["test"])
    cases = bm.select_cases(["24x32-mask12x16-g2:bf16", "grow-16x24-w3"])
    records = runner.run(cases, progress="none")
    by = {(r["id"], r["provider"]): r for r in records}
    assert set(by) == {(c.id, p) for c in cases for p in bm.providers_for(c)}
    assert by[("24x32-mask12x16-g2:bf16", "reference-gpu")]["status"] == "skipped"
    assert "--quick" in by[("24x32-mask12x16-g2:bf16", "torch.compile")]["reason"]
    measured = [r for r in records if r["status"] == "ok"]
    assert {r["provider"] for r in measured} >= {"fused", "reference-cpu", "copy", "conv2d", "max_pool2d"}
    copy = runner.meta["copy"]["cpu"]["gbps"]
    for rec in measured:
        assert rec["reps"] >= 1 and rec["q25_ms"] <= rec["median_ms"] <= rec["q75_ms"]
        assert math.isclose(rec["gbps"], rec["bytes_moved"] / rec["median_ms"] / 1e6)
        assert math.isclose(rec["roofline_fraction"], rec["gbps"] / copy)
        assert rec["peak_extra_bytes"] is None  # no allocator statistics on the CPU
    saved = json.loads(path.read_text())
    assert saved["meta"]["complete"] is True and len(saved["results"]) == len(records)
    for key in ("gpu", "torch", "triton", "commit", "source_hash", "cpu_threads", "fused_backend"):
        assert key in saved["meta"]
    assert saved["meta"]["torch"] == torch.__version__


def test_time_limit_skips_what_is_left():
    runner = bm.Runner(torch.device("cpu"), budget_s=0.01, time_limit_s=0.0)
    records = runner.run(bm.select_cases(["grow-8x8-w3"]), providers=["conv2d"], progress="none")
    assert [r["status"] for r in records] == ["skipped"]
    assert "--time-limit" in records[0]["reason"]


def test_cpu_timing_of_a_slow_function_is_its_single_run():
    calls = []

    def slow():
        calls.append(1)
        torch.zeros(1)

    assert len(bm.time_cpu(slow, budget_s=0.0)) == 1
    assert len(calls) == 1


# --- results files and reports -------------------------------------------------------------


def _fixture():
    return json.loads(FIXTURE.read_text())


def test_fixture_is_a_quick_cpu_run():
    data = _fixture()
    assert data["meta"]["schema"] == bm.SCHEMA and data["meta"]["quick"] and data["meta"]["device"] == "cpu"
    assert {r["id"] for r in data["results"]} == {c.id for c in bm.select_cases(tiers=("quick",))}


def test_markdown_report_shows_every_measurement():
    meta, records = bm.load_results([FIXTURE])
    text = bm.render_markdown(meta, records, plot="bench.png")
    assert meta["sources"] == [FIXTURE.name]
    assert "![benchmark plots](bench.png)" in text
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if line.startswith("| ")}
    for rec in records:
        if rec["status"] == "ok":
            assert bm.format_time(rec["median_ms"]) in rows[rec["id"]]
    fused = next(r for r in records if r["provider"] == "fused" and r["status"] == "ok")
    ref = next(r for r in records if r["provider"] == "reference-cpu" and r["id"] == fused["id"])
    assert f"{ref['median_ms'] / fused['median_ms']:.3g}×" in rows[fused["id"]]
    # Providers that never ran get no column, only a note saying why.
    assert "| reference-gpu |" not in text and "reference-gpu not run: no CUDA GPU" in text
    assert "torch.compile not run: --quick" in text


def test_text_report_is_aligned():
    meta, records = bm.load_results([FIXTURE])
    lines = bm.render_text(meta, records).splitlines()
    start = lines.index("Whole preprocessing") + 1
    table = lines[start : start + 1 + sum(r["suite"] == "prepare" for r in records if r["provider"] == "fused")]
    assert table[0].startswith("case ") and len({len(line) for line in table}) == 1


def test_readme_block_is_replaced_between_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# t\n\nbefore\n{bm.README_START}\nold\n{bm.README_END}\nafter\n")
    meta, records = bm.load_results([FIXTURE])
    block = bm.render_markdown(meta, records)
    bm.update_readme(readme, block)
    bm.update_readme(readme, block)
    text = readme.read_text()
    assert text.startswith("# t\n\nbefore\n") and text.endswith(f"{bm.README_END}\nafter\n")
    assert "old" not in text and text.count(bm.README_START) == 1 and block in text
    (tmp_path / "bare.md").write_text("no markers\n")
    with pytest.raises(ValueError, match="bench:start"):
        bm.update_readme(tmp_path / "bare.md", block)


def test_merging_keeps_measurements_and_refuses_other_devices(tmp_path):
    data = _fixture()
    ok = next(r for r in data["results"] if r["status"] == "ok")
    later = {"meta": dict(data["meta"]), "results": [dict(ok, status="skipped", reason="time limit", median_ms=None)]}
    (tmp_path / "later.json").write_text(json.dumps(later))
    _, records = bm.load_results([FIXTURE, tmp_path / "later.json"])
    assert next(r for r in records if (r["id"], r["provider"]) == (ok["id"], ok["provider"]))["status"] == "ok"
    other = {"meta": dict(data["meta"], device="cuda", gpu="Some GPU"), "results": []}
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match="report them apart"):
        bm.load_results([FIXTURE, tmp_path / "other.json"])
    (tmp_path / "junk.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="neither"):
        bm.load_results([tmp_path / "junk.json"])
    with pytest.raises(FileNotFoundError):
        bm.load_results([tmp_path / "missing.json"])


def test_pytest_benchmark_json_reads_like_ours(tmp_path):
    data = _fixture()
    shaped = {
        "machine_info": {},
        "benchmarks": [{"name": r["id"], "extra_info": r} for r in data["results"] if r["status"] == "ok"],
        "inpaint_fused": data["meta"],
    }
    (tmp_path / "pytest.json").write_text(json.dumps(shaped))
    meta, records = bm.load_results([tmp_path / "pytest.json"])
    ours = [r for r in bm.load_results([FIXTURE])[1] if r["status"] == "ok"]
    assert meta["gpu"] == data["meta"]["gpu"] and bm.tables(records) == bm.tables(ours)


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    meta, records = bm.load_results([FIXTURE])
    bm.plot(meta, records, tmp_path / "plots" / "bench.png")
    with Image.open(tmp_path / "plots" / "bench.png") as image:
        assert image.format == "PNG" and image.size[0] > image.size[1] > 300


def test_nearest_fused_record():
    _, records = bm.load_results([FIXTURE])
    rec = bm.nearest_fused(records, 0.25)
    assert rec["provider"] == "fused" and rec["case"] == "512x512-g6"
    assert bm.nearest_fused([], 1.0) is None
