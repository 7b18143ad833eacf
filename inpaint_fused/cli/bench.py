"""``inpaint-fused bench`` and ``report``: the benchmark matrix, its tables, plots and README blocks."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Optional

from .. import benchmarking
from .common import CLIError, add_device_option, resolve_device


def _providers(text: Optional[str]) -> Optional[list[str]]:
    if not text:
        return None
    names = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in names if p not in benchmarking.PROVIDERS]
    if unknown:
        raise CLIError(f"--providers: unknown {', '.join(unknown)}; choose from {', '.join(benchmarking.PROVIDERS)}")
    return names


def _plot(meta: dict[str, Any], records: list[dict[str, Any]], path: str) -> None:
    try:
        benchmarking.plot(meta, records, Path(path))
    except (benchmarking.PlotUnavailable, ValueError) as error:
        raise CLIError(f"--plot: {error}") from error
    print(f"plot    {path}")


def bench(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    providers = _providers(args.providers)
    tiers = ("quick",) if args.quick else ("quick", "cpu", "gpu") if device.type == "cuda" else ("quick", "cpu")
    try:
        cases = benchmarking.select_cases(args.case or (), tiers)
    except ValueError as error:
        raise CLIError(f"--case: {error}") from error
    if device.type != "cuda":
        left_out = 0 if args.case else sum(c.tier not in tiers for c in benchmarking.default_cases())
        which = "larger (--quick)" if args.quick else "GPU-sized"
        print(
            f"No CUDA GPU: benchmarking on the CPU ({benchmarking.available_cpus()} threads). The fused provider runs"
            f" {benchmarking.fused_backend(device)}; {left_out} {which} cases are left out.",
            file=sys.stderr,
        )
    runner = benchmarking.Runner(
        device,
        budget_s=args.budget if args.budget is not None else benchmarking.default_budget(device, args.quick),
        time_limit_s=args.time_limit,
        json_path=Path(args.json) if args.json else None,
        quick=args.quick,
        compile_on_cpu=bool(providers and "torch.compile" in providers),
        argv=["inpaint-fused", *args.argv],
    )
    records = runner.run(cases, providers, progress=args.progress)
    print(benchmarking.render_text(runner.meta, records))
    if args.json:
        print(f"results {args.json}")
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(benchmarking.render_markdown(runner.meta, records))
        print(f"table   {args.markdown}")
    if args.plot:
        _plot(runner.meta, records, args.plot)
    failed = [r for r in records if r["status"] == "error" and r["provider"] == "fused"]
    for rec in failed:
        print(f"inpaint-fused: fused failed on {rec['id']}: {rec['reason']}", file=sys.stderr)
    return 1 if failed else 0


def _write_block(args: argparse.Namespace, block: str, markers: tuple[str, str]) -> None:
    """``--markdown`` and ``--readme`` of ``report``: the block to a file and between the README's ``markers``."""
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(block)
        print(f"table   {args.markdown}")
    if args.readme:
        _splice(args.readme, "--readme", block, markers)


def _splice(path: str, flag: str, block: str, markers: tuple[str, str]) -> None:
    """``block`` between ``markers`` in the file at ``path``; errors name the option that asked for it."""
    try:
        benchmarking.update_readme(Path(path), block, markers)
    except (OSError, ValueError) as error:
        raise CLIError(f"{flag}: {error}") from error
    print(f"{flag.removeprefix('--'):7} {path} (between {markers[0]} and {markers[1]})")


def _report_diffusers(args: argparse.Namespace) -> int:
    try:
        block = benchmarking.render_diffusers_markdown(Path(args.diffusers))
    except ValueError as error:
        raise CLIError(f"--diffusers: {error}") from error
    print(block, end="")
    _write_block(args, block, (benchmarking.DIFFUSERS_START, benchmarking.DIFFUSERS_END))
    return 0


def report(args: argparse.Namespace) -> int:
    if args.diffusers:
        if args.files or args.plot or args.demo_summary or args.headline:
            raise CLIError(
                "--diffusers takes its one file alone: no other results files, no --plot, --demo-summary, --headline"
            )
        return _report_diffusers(args)
    if not args.files:
        raise CLIError("report needs results files (or --diffusers FILE)")
    try:
        meta, records = benchmarking.load_results(args.files)
    except (FileNotFoundError, ValueError) as error:
        raise CLIError(str(error)) from error
    print(benchmarking.render_text(meta, records))
    if args.plot:
        _plot(meta, records, args.plot)
    if args.markdown or args.readme:
        link = None
        if args.plot:
            start = Path(args.readme).parent if args.readme else Path(args.markdown).parent
            link = Path(os.path.relpath(Path(args.plot).resolve(), start.resolve())).as_posix()
        block = benchmarking.render_markdown(meta, records, link)
        _write_block(args, block, (benchmarking.README_START, benchmarking.README_END))
    if args.headline:
        block = benchmarking.render_headline(meta, records)
        _splice(args.headline, "--headline", block, (benchmarking.HEADLINE_START, benchmarking.HEADLINE_END))
    if args.demo_summary:
        try:
            summary = benchmarking.write_demo_summary(Path(args.demo_summary), meta, records)
        except (OSError, ValueError) as error:
            raise CLIError(f"--demo-summary: {error}") from error
        print(f"summary {args.demo_summary} ({len(summary['rows'])} fused rows for the demo)")
    return 0


def add_parsers(sub) -> None:
    b = sub.add_parser(
        "bench",
        help="benchmark fused against the original code, torch.compile and a copy",
        description="Benchmark matrix with providers side by side. On a machine without a GPU"
        " only the CPU-sized cases run.",
    )
    b.add_argument("--quick", action="store_true", help="small cases only, no torch.compile (under a minute on a CPU)")
    b.add_argument("--json", metavar="FILE", help="write the results (with GPU, versions and commit) to FILE")
    b.add_argument("--plot", metavar="FILE", help="write a PNG: time vs megapixels and vs box width (needs matplotlib)")
    b.add_argument("--markdown", metavar="FILE", help="write the tables as markdown")
    b.add_argument(
        "--case",
        action="append",
        metavar="SPEC",
        help="a case name (e.g. 1536x1024-g12, b4x768x768-was-20:bf16, grow-1024x1024-w33) or a"
        " pattern over the default cases (e.g. 'grow-*'); repeatable",
    )
    b.add_argument("--providers", metavar="LIST", help=f"comma-separated subset of {','.join(benchmarking.PROVIDERS)}")
    add_device_option(b)
    b.add_argument("--budget", type=float, metavar="S", help="timed seconds per measurement")
    b.add_argument("--time-limit", type=float, metavar="S", help="skip what is left after S seconds (recorded)")
    b.add_argument(
        "--progress",
        choices=("bar", "lines", "none"),
        default="bar",
        help="a progress bar (default), one line per measurement (for logs), or nothing",
    )
    b.set_defaults(run=bench)

    r = sub.add_parser(
        "report",
        help="tables and plots from results files",
        description="Merge results files (bench --json, or pytest-benchmark --benchmark-json of"
        " bench/) and print the tables; optionally write markdown, a plot and the README block.",
    )
    r.add_argument("files", nargs="*", metavar="JSON")
    r.add_argument("--markdown", metavar="FILE", help="write the markdown tables to FILE")
    r.add_argument("--plot", metavar="FILE", help="write the plots as a PNG (needs matplotlib)")
    r.add_argument(
        "--readme",
        metavar="FILE",
        help=f"replace the block between {benchmarking.README_START} and {benchmarking.README_END} in FILE"
        f" ({benchmarking.DIFFUSERS_START} ... with --diffusers)",
    )
    r.add_argument(
        "--headline",
        metavar="FILE",
        help=f"replace the block between {benchmarking.HEADLINE_START} and {benchmarking.HEADLINE_END} in FILE"
        " with the short table of headline cases",
    )
    r.add_argument(
        "--demo-summary",
        metavar="JSON",
        help="write the fused single-image rows of GPU results for `inpaint-fused demo` to compare with"
        f" (the package ships {benchmarking.PACKAGED_SUMMARY.relative_to(benchmarking.repo_root()).as_posix()})",
    )
    r.add_argument(
        "--diffusers",
        metavar="JSON",
        help="instead: the tables of a `pytest bench/bench_diffusers.py --benchmark-json` file",
    )
    r.set_defaults(run=report)
