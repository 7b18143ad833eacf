"""Benchmark tooling behind ``inpaint-fused bench`` and ``report``, the pytest-benchmark files in
``bench/`` and the demo's timing, one job per module:

- :mod:`.cases`: case names, sizes, bytes moved, tiers, deterministic inputs;
- :mod:`.providers`: what runs for a case (fused, the original code eager/compiled, dilations, a copy),
  cuDNN autotuning, warm-ups;
- :mod:`.timing`: whole-call times (CUDA events, ``perf_counter``) and the GPU time alone (CUDA-graph replay);
- :mod:`.roofline`: GB/s and the device-to-device copy they are compared with;
- :mod:`.memory`: peak extra device memory of a call;
- :mod:`.runner`: measures (case, provider) pairs into records;
- :mod:`.results`: environment metadata, saving and merging results files;
- :mod:`.tables`, :mod:`.diffusers_tables`, :mod:`.plot`: reports; :mod:`.headline`: the README's
  short table; :mod:`.readme`: splicing generated blocks;
- :mod:`.summary`: the GPU reference shipped for the demo.

The README tables and plots are generated from results files by these modules, never typed by hand.
"""

from .cases import DEFAULT_CASES, PREPARE_OUTPUTS, RATIO, Case, default_cases, make_inputs, parse_case, select_cases
from .diffusers_tables import render_diffusers_markdown
from .headline import HEADLINE_END, HEADLINE_START, render_headline
from .memory import peak_extra_memory
from .plot import PlotUnavailable, plot
from .providers import (
    GROW_PROVIDERS,
    PREPARE_PROVIDERS,
    PROVIDERS,
    Prepared,
    Skip,
    cudnn_autotuning,
    fused_backend,
    needs_gpu,
    providers_for,
)
from .readme import DIFFUSERS_END, DIFFUSERS_START, README_END, README_START, update_readme
from .results import SCHEMA, available_cpus, environment, git_commit, load_results, repo_root, save_results
from .roofline import copy_bandwidth, gbps
from .runner import Runner, default_budget
from .summary import PACKAGED_SUMMARY, demo_summary, load_demo_summary, nearest_fused, write_demo_summary
from .tables import describe, format_time, radius_ratios, render_markdown, render_text, tables
from .timing import GpuOnly, time_cpu, time_cuda, time_cuda_graph, time_fn

__all__ = [
    "DEFAULT_CASES",
    "DIFFUSERS_END",
    "DIFFUSERS_START",
    "GROW_PROVIDERS",
    "HEADLINE_END",
    "HEADLINE_START",
    "PACKAGED_SUMMARY",
    "PREPARE_OUTPUTS",
    "PREPARE_PROVIDERS",
    "PROVIDERS",
    "RATIO",
    "README_END",
    "README_START",
    "SCHEMA",
    "Case",
    "GpuOnly",
    "PlotUnavailable",
    "Prepared",
    "Runner",
    "Skip",
    "available_cpus",
    "copy_bandwidth",
    "cudnn_autotuning",
    "default_budget",
    "default_cases",
    "demo_summary",
    "describe",
    "environment",
    "format_time",
    "fused_backend",
    "gbps",
    "git_commit",
    "load_demo_summary",
    "load_results",
    "make_inputs",
    "needs_gpu",
    "nearest_fused",
    "parse_case",
    "peak_extra_memory",
    "plot",
    "providers_for",
    "radius_ratios",
    "render_diffusers_markdown",
    "render_headline",
    "render_markdown",
    "render_text",
    "repo_root",
    "save_results",
    "select_cases",
    "tables",
    "time_cpu",
    "time_cuda",
    "time_cuda_graph",
    "time_fn",
    "update_readme",
    "write_demo_summary",
]
