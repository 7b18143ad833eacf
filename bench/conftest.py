"""pytest-benchmark harness of ``bench/``: the same cases, providers and timing as ``inpaint-fused bench``.

    python -m pytest bench/                          # CUDA: everything; CPU: the CPU-sized cases
    python -m pytest bench/ --bench-quick --benchmark-disable   # CI smoke test on a CPU, ~1 min
    python -m pytest bench/ --bench-json bench/results/run.json --benchmark-json bench/results/pytest.json

Files named ``bench_*.py`` are collected here. Each test measures one (case, provider) pair with
:meth:`inpaint_fused.benchmarking.Runner.measure_samples`, the one timing front end: whole calls by
CUDA events (``triton.testing.do_bench``: median, rotating inputs, L2 cleared) on a GPU or
``perf_counter`` on the CPU, then the GPU time alone by CUDA-graph replay. The record (medians,
GB/s, fraction of the measured copy bandwidth, peak extra memory, compile time, cuDNN setting)
goes into the benchmark's ``extra_info``, and the whole-call samples become pytest-benchmark's
statistics (the ``hand_over`` fixture): nothing is timed twice. Tests are grouped per case so providers
sit side by side. Pairs marked ``gpu`` (GPU-sized cases, the eager reference on the GPU) are
skipped with the reason on a machine without CUDA.

Do not collect ``tests/`` in the same session: its conftest turns on Triton's interpreter, which
would time the interpreter instead of the CPU fallback.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch

from inpaint_fused import benchmarking as bm

RUNNER = pytest.StashKey[bm.Runner]()


def pytest_addoption(parser):
    group = parser.getgroup("inpaint-fused bench")
    group.addoption("--bench-quick", action="store_true", help="only the quick cases (the CLI's --quick)")
    group.addoption("--bench-budget", type=float, default=None, help="timed seconds per measurement")
    group.addoption(
        "--bench-json", default=None, help="write the results as `inpaint-fused report` reads them (with metadata)"
    )
    group.addoption(
        "--bench-compile-cpu",
        action="store_true",
        help="run torch.compile on a CPU-only machine too (about a minute, then ~15 s per shape)",
    )


def pytest_collect_file(file_path: Path, parent):
    # Files named on the command line are collected by pytest itself, whatever their name.
    if file_path.suffix == ".py" and file_path.name.startswith("bench_") and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_generate_tests(metafunc):
    """Parametrize ``case, provider`` over the default cases of the module's ``SUITE`` and its ``PROVIDERS``."""
    suite = getattr(metafunc.module, "SUITE", None)
    if suite is None or "case" not in metafunc.fixturenames:
        return
    metafunc.parametrize(
        ("case", "provider"),
        [
            pytest.param(
                case,
                provider,
                id=f"{case.id}-{provider}",
                marks=pytest.mark.gpu if bm.needs_gpu(case, provider) else (),
            )
            for case in bm.default_cases()
            if case.suite == suite
            for provider in metafunc.module.PROVIDERS
        ],
    )


def pytest_collection_modifyitems(config, items):
    quick = config.getoption("--bench-quick")
    gpu = torch.cuda.is_available()
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device: GPU-sized case or the eager reference on the GPU")
    skip_slow = pytest.mark.skip(reason="--bench-quick: only the quick cases")
    for item in items:
        if "gpu" in item.keywords and not gpu:
            item.add_marker(skip_gpu)
        case = getattr(item, "callspec", None) and item.callspec.params.get("case")
        if quick and isinstance(case, bm.Case) and case.tier != "quick":
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def runner(request) -> bm.Runner:
    """One runner per session: environment metadata and the copy roofline are measured once."""
    config = request.config
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    quick = config.getoption("--bench-quick")
    budget = config.getoption("--bench-budget")
    json_path = config.getoption("--bench-json")
    run = bm.Runner(
        device,
        budget_s=budget if budget is not None else bm.default_budget(device, quick),
        json_path=Path(json_path) if json_path else None,
        quick=quick,
        compile_on_cpu=config.getoption("--bench-compile-cpu"),
        argv=["pytest", *config.invocation_params.args],
    )
    config.stash[RUNNER] = run
    yield run
    run.finish()


def _hand_over(benchmark, samples_ms) -> None:
    """Make ``samples_ms`` (timed by the runner) pytest-benchmark's statistics for this test.

    pytest-benchmark has no public way to take samples timed elsewhere; its ``pedantic`` fills the
    same ``Metadata`` through ``_make_stats`` (pytest-benchmark 3 to 5). Nothing is run again.
    """
    benchmark._mode = "inpaint_fused.benchmarking samples"  # the fixture is used, disabled or not
    if benchmark.disabled or not samples_ms:
        return
    stats = benchmark._make_stats(1)
    for ms in samples_ms:
        stats.update(ms * 1e-3)


@pytest.fixture
def hand_over(benchmark):
    """``hand_over(samples_ms)``: samples timed by :mod:`inpaint_fused.benchmarking` become this test's statistics."""
    return functools.partial(_hand_over, benchmark)


@pytest.fixture
def run_case(benchmark, runner):
    """Measure one (case, provider) pair through the runner and give its samples to pytest-benchmark."""

    def run(case: bm.Case, provider: str) -> dict:
        if benchmark.disabled:  # the smoke run: one call each, so CI checks every path cheaply
            runner.budget_s = 0.0
        record, samples = runner.measure_samples(case, provider)
        if record["status"] == "skipped":
            pytest.skip(record["reason"])
        if record["status"] == "error":
            pytest.fail(f"{case.id} {provider}: {record['reason']}")
        benchmark.group = case.id
        benchmark.extra_info.update(record)
        _hand_over(benchmark, samples)
        return record

    return run


def pytest_benchmark_update_json(config, benchmarks, output_json):
    run = config.stash.get(RUNNER, None)
    if run is not None:
        output_json["inpaint_fused"] = run.meta
    else:  # files that time whole calls (bench_diffusers.py): the environment, without the runner's records
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        environment = bm.environment(device)
        try:
            import diffusers

            environment["diffusers"] = diffusers.__version__
        except ImportError:
            pass
        output_json["environment"] = environment
