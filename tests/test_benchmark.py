"""The benchmark tooling: case names, bytes accounting, comparators, the runner, results files, reports
and the demo's GPU reference.

``tests/data/bench-quick-cpu.json`` is the output of ``inpaint-fused bench --quick --json`` on a
CPU-only machine: the report tests read real results, not numbers typed here. Regenerate it with
that command when the quick cases or the record format change.
"""

import functools
import json
import math
import statistics
from pathlib import Path

import pytest
import torch

import inpaint_fused as ifd
from inpaint_fused import benchmarking as bm
from inpaint_fused.benchmarking import providers

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
    seed = providers._conv2d_grow(width)(mask)
    assert torch.equal(providers._max_pool_grow(width)(mask), seed)
    assert torch.equal(ifd.grow_mask(mask, width).unsqueeze(1), seed)


def test_reference_provider_is_the_seed_then_the_vae_cast():
    case = bm.parse_case("40x56-mask17x23-g6:bf16")[0]
    pixels, mask = bm.make_inputs(case, torch.device("cpu"))
    out, noise = providers._reference_prepare(case)(pixels, mask)
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
        # No CUDA graph on the CPU: no GPU time alone, and the record says why.
        assert rec["gpu_only_ms"] is None and rec["gpu_only_gbps"] is None and rec["gpu_only_reps"] == 0
        assert rec["gpu_only_reason"] == "runs on the CPU: no CUDA graph to replay"
        assert rec["cudnn_benchmark"] is False
    saved = json.loads(path.read_text())
    assert saved["meta"]["complete"] is True and len(saved["results"]) == len(records)
    for key in ("gpu", "torch", "triton", "commit", "source_hash", "cpu_threads", "fused_backend"):
        assert key in saved["meta"]
    assert saved["meta"]["torch"] == torch.__version__
    assert saved["meta"]["cudnn_benchmark"] is False and saved["meta"]["gpu_only_timer"] is None


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


# --- GPU baselines at their strongest, GPU time alone, radius ratios ---------------------------


def test_cudnn_autotuning_is_on_for_gpu_providers_and_restored(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    with bm.cudnn_autotuning(torch.device("cuda")) as on:
        assert on is True and torch.backends.cudnn.benchmark is True
    assert torch.backends.cudnn.benchmark is False
    with pytest.raises(RuntimeError, match="boom"), bm.cudnn_autotuning(torch.device("cuda")):
        raise RuntimeError("boom")
    assert torch.backends.cudnn.benchmark is False
    with bm.cudnn_autotuning(torch.device("cpu")) as on:
        assert on is False and torch.backends.cudnn.benchmark is False


def _gpu_shaped_run():
    """The CPU fixture dressed as a GPU run: fused and copy get a GPU time alone (half their whole
    call), one fused record a failed capture; the reference on the CPU keeps none."""
    data = _fixture()
    meta = dict(data["meta"], device="cuda", gpu="Fake GPU", cudnn_benchmark=True, gpu_only_timer="cuda-graph-replay")
    copy_gbps = 1000.0
    meta["copy"] = {"cuda": {"gbps": copy_gbps, "bytes": 1 << 29, "median_ms": 1.0}}
    records, failed = [], None
    for rec in data["results"]:
        rec = dict(rec)
        if rec["status"] == "ok" and rec["provider"] in ("fused", "copy"):
            if failed is None and rec["provider"] == "fused":
                failed = rec["id"]
                rec.update(gpu_only_reason="not capturable in a CUDA graph: RuntimeError: sync in capture")
            else:
                gpu_ms = rec["median_ms"] / 2
                rate = rec["bytes_moved"] / gpu_ms / 1e6
                rec.update(gpu_only_ms=gpu_ms, gpu_only_gbps=rate, gpu_only_roofline_fraction=rate / copy_gbps)
        records.append(rec)
    return meta, records, failed


def test_tables_show_whole_call_and_gpu_only_columns():
    meta, records, failed = _gpu_shaped_run()
    title, header, rows, notes = bm.tables(records)[0]
    assert title == "Whole preprocessing"
    assert header[2:6] == ["fused", "fused GPU", "reference-cpu", "copy"] and "copy GPU" in header
    assert "reference-cpu GPU" not in header
    by_id = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    for rec in records:
        if rec["suite"] != "prepare" or rec["provider"] != "fused" or rec["status"] != "ok":
            continue
        cells = by_id[rec["id"]]
        assert cells["fused"] == bm.format_time(rec["median_ms"])
        if rec["id"] == failed:
            number = notes["fused GPU time: not capturable in a CUDA graph: RuntimeError: sync in capture"]
            assert cells["fused GPU"] == f"— ({number})"
            assert cells["% of copy"] == f"{100 * rec['roofline_fraction']:.3g} %"  # whole call, no GPU time
        else:
            assert cells["fused GPU"] == bm.format_time(rec["gpu_only_ms"])
            assert cells["fused GB/s"] == f"{rec['gpu_only_gbps']:.3g}"
            assert cells["% of copy"] == f"{100 * rec['gpu_only_roofline_fraction']:.3g} %"
        ref = next(r for r in records if r["id"] == rec["id"] and r["provider"] == "reference-cpu")
        assert cells["vs reference-cpu"] == f"{ref['median_ms'] / rec['median_ms']:.3g}×"  # whole calls


def test_reports_say_cudnn_autotuning_was_on():
    meta, records, _ = _gpu_shaped_run()
    markdown, text = bm.render_markdown(meta, records), bm.render_text(meta, records)
    for report in (markdown, text):
        assert "cuDNN autotuning on (`torch.backends.cudnn.benchmark = True`" in report
        assert "cudnn_benchmark: true" in report
    assert "| fused GPU |" in markdown
    cpu_meta, cpu_records = bm.load_results([FIXTURE])
    assert "cuDNN autotuning on" not in bm.render_markdown(cpu_meta, cpu_records)
    assert "CPU-only run: no GPU baselines" in bm.render_markdown(cpu_meta, cpu_records)


def _fused(case_id, median_ms, gpu_only_ms):
    case = bm.parse_case(case_id)[0]
    return {
        "suite": case.suite, "id": case.id, "case": case.name, "output": case.output, "provider": "fused",
        "status": "ok", "median_ms": median_ms, "gpu_only_ms": gpu_only_ms, "params": case.params(),
        "megapixels": case.megapixels, "gbps": 1.0, "roofline_fraction": 0.5, "peak_extra_bytes": None,
    }  # fmt: skip


def test_radius_ratios_come_from_the_measurements():
    records = [
        _fused("2048x2048-g6:bf16", 0.110, 0.070),
        _fused("2048x2048-g64:bf16", 0.190, 0.077),
        _fused("1024x1024-was+6:f32", 0.040, 0.030),
        _fused("1024x1024-was-128:f32", 0.100, None),  # no GPU time alone: the whole calls are compared
        _fused("1024x1024-was+128:f32", 0.045, 0.033),
        _fused("1024x1024-was+128:bf16", 0.045, 0.033),  # no +6 of its output: no ratio
        _fused("512x512-was-16:f32", 0.030, 0.020),
    ]
    ratios = {r["id"]: r for r in bm.radius_ratios(records)}
    assert set(ratios) == {"2048x2048-g64:bf16", "1024x1024-was-128:f32", "1024x1024-was+128:f32"}
    g64 = ratios["2048x2048-g64:bf16"]
    assert g64["base"] == "2048x2048-g6:bf16" and g64["timer"] == "GPU alone"
    assert math.isclose(g64["ratio"], 0.077 / 0.070)
    assert ratios["1024x1024-was-128:f32"]["timer"] == "whole call"
    assert math.isclose(ratios["1024x1024-was-128:f32"]["ratio"], 0.100 / 0.040)
    assert math.isclose(ratios["1024x1024-was+128:f32"]["ratio"], 0.033 / 0.030)
    meta = {"device": "cuda", "gpu": "Fake GPU", "cudnn_benchmark": True}
    assert "2048x2048-g64:bf16 / 2048x2048-g6:bf16: 1.10 (77 µs / 70 µs, GPU alone)" in bm.render_text(meta, records)
    markdown = bm.render_markdown(meta, records)
    assert "| 2048x2048-g64:bf16 | 2048x2048-g6:bf16 | 1.10 | 77 µs / 70 µs | GPU alone |" in markdown


def test_radius_ratios_of_a_cpu_run():
    runner = bm.Runner(torch.device("cpu"), budget_s=0.0)
    records = runner.run(bm.select_cases(["24x32-g6:f32", "24x32-g12:f32"]), providers=["fused"], progress="none")
    (ratio,) = bm.radius_ratios(records)
    assert (ratio["id"], ratio["base"], ratio["timer"]) == ("24x32-g12:f32", "24x32-g6:f32", "whole call")
    assert math.isclose(ratio["ratio"], records[1]["median_ms"] / records[0]["median_ms"])


@pytest.mark.gpu
def test_gpu_only_time_by_graph_replay_and_the_reason_when_not_capturable():
    case = bm.parse_case("1024x1024-g6:bf16")[0]
    pixels, mask = bm.make_inputs(case, torch.device("cuda"))
    run = functools.partial(ifd.prepare_inpaint, pixels, mask, 6, vae_dtype=torch.bfloat16)
    gpu_only = bm.time_cuda_graph(run, 0.05, whole_call_ms=0.1)
    assert gpu_only.reason is None and len(gpu_only.samples_ms) >= 3 and gpu_only.calls_per_replay == 20
    assert 0 < gpu_only.median_ms < statistics.median(bm.time_cuda(run, 0.05)) * 3
    synced = bm.time_cuda_graph(lambda: mask.sum().item(), 0.05, whole_call_ms=0.1)
    assert synced.median_ms is None and synced.reason.startswith("not capturable in a CUDA graph")
    runner = bm.Runner(torch.device("cuda"), budget_s=0.02)
    rec = runner.measure(case, "fused")
    assert rec["status"] == "ok" and rec["gpu_only_ms"] > 0 and rec["gpu_only_reason"] is None
    assert rec["cudnn_benchmark"] is True and runner.meta["cudnn_benchmark"] is True
    assert math.isclose(rec["gpu_only_gbps"], rec["bytes_moved"] / rec["gpu_only_ms"] / 1e6)


# --- the demo's GPU reference ---------------------------------------------------------------


def test_demo_summary_matches_like_with_like(tmp_path):
    meta, records = bm.load_results([FIXTURE])
    with pytest.raises(ValueError, match="GPU results"):
        bm.write_demo_summary(tmp_path / "s.json", meta, records)
    summary = bm.write_demo_summary(tmp_path / "s.json", dict(meta, device="cuda", gpu="Fake GPU"), records)
    assert bm.load_demo_summary(tmp_path / "s.json") == summary and summary["gpu"] == "Fake GPU"
    single = {r["id"] for r in records if r["provider"] == "fused" and r["status"] == "ok" and r["suite"] == "prepare"}
    rows = summary["rows"]
    assert {r["id"] for r in rows} == single
    assert bm.nearest_fused(rows, 0.25, "core", 6)["id"] == "512x512-g6:f32"
    assert bm.nearest_fused(rows, 0.2, "core", 6)["id"] == "509x381-mask96x128-g6:f32"
    assert bm.nearest_fused(rows, 0.25, "was", -16)["id"] == "512x512-was-16:f32"
    assert bm.nearest_fused(rows, 0.25, "was", 16, output="bf16")["id"] == "512x512-was+16:bf16"
    other = bm.nearest_fused(rows, 0.25, "core", 64)  # no grow 64 measured: the nearest size, value named
    assert other["value"] == 6 and other["id"] == "512x512-g6:f32"
    assert bm.nearest_fused(rows, 1.0, "nothing", 6) is None and bm.nearest_fused([], 1.0, "core", 6) is None
    assert bm.load_demo_summary(tmp_path / "missing.json") is None


def test_packaged_gpu_reference_is_a_gpu_summary_that_ships():
    summary = bm.load_demo_summary()
    assert summary is not None and summary["device"] == "cuda" and summary["gpu"]
    assert {r["op"] for r in summary["rows"]} == {"core", "was"}
    setup = (Path(__file__).resolve().parents[1] / "setup.py").read_text()
    assert '"data/*.json"' in setup


def test_headline_compares_fused_with_the_strongest_gpu_baseline(tmp_path):
    def rec(case, provider, ms, gpu_ms=None):
        return {"id": case, "provider": provider, "status": "ok", "median_ms": ms, "gpu_only_ms": gpu_ms}

    records = [
        rec("1024x1024-g6:bf16", "fused", 0.02, 0.01),
        rec("1024x1024-g6:bf16", "reference-gpu", 0.5),
        rec("1024x1024-g6:bf16", "torch.compile", 0.2),
        rec("1024x1024-g6:bf16", "reference-cpu", 8.0),
        {"id": "2048x2048-g64:bf16", "provider": "fused", "status": "skipped", "reason": "time limit"},
        rec("512x512-g6:bf16", "fused", 0.01),
    ]
    rows = bm.headline.headline_rows(records)
    label = "one 1024² image, `grow_mask_by=6`"
    assert rows == [[label, "20 µs", "10 µs", "500 µs", "200 µs", "8 ms", "10.0×", "400×"]]
    readme = tmp_path / "README.md"
    readme.write_text(f"top\n{bm.HEADLINE_START}\nold\n{bm.HEADLINE_END}\nbottom\n")
    bm.update_readme(readme, bm.render_headline({"sources": ["x.json"]}, records), (bm.HEADLINE_START, bm.HEADLINE_END))
    text = readme.read_text()
    assert "old" not in text and "| one 1024² image" in text and text.endswith("bottom\n")
