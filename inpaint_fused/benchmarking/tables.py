"""Tables from records: plain text for a terminal, markdown for the README.

One table per suite with providers as columns: each provider's whole-call time, then (where any was
measured) its GPU time alone, fused's GB/s and share of the copy bandwidth, speed-ups, compile time
and memory; then the cost of the fused kernels against the radius, as measured ratios.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from .providers import GROW_PROVIDERS, PREPARE_PROVIDERS

# The radius ratios compare each grown or eroded case with the same case at this value (g6, was+6).
RADIUS_BASE = 6

Table = tuple[str, list[str], list[list[str]], dict[str, int]]


def format_time(ms: Optional[float]) -> str:
    if ms is None:
        return "—"
    if ms < 1:
        return f"{ms * 1e3:.3g} µs"
    if ms < 1e3:
        return f"{ms:.3g} ms"
    return f"{ms / 1e3:.3g} s"


def _ok(rec: Optional[dict[str, Any]]) -> bool:
    return rec is not None and rec.get("status") == "ok"


def _speedup(other: Optional[dict[str, Any]], fused: Optional[dict[str, Any]]) -> str:
    if not _ok(other) or not _ok(fused):
        return "—"
    ratio = other["median_ms"] / fused["median_ms"]
    return f"{ratio:.3g}×" if ratio < 1000 else f"{ratio:,.0f}×"


def _note(notes: dict[str, int], reason: str) -> int:
    return notes.setdefault(reason, len(notes) + 1)


def _cell(rec: Optional[dict[str, Any]], notes: dict[str, int]) -> str:
    if rec is None:
        return "—"
    if rec.get("status") == "ok":
        return format_time(rec["median_ms"])
    reason = f"{rec['provider']}: {rec.get('reason')}"
    return f"{rec.get('status')} ({_note(notes, reason)})"


def _gpu_cell(rec: Optional[dict[str, Any]], notes: dict[str, int]) -> str:
    if not _ok(rec):
        return "—"
    if rec.get("gpu_only_ms") is not None:
        return format_time(rec["gpu_only_ms"])
    reason = rec.get("gpu_only_reason")
    if not reason:
        return "—"
    return f"— ({_note(notes, rec['provider'] + ' GPU time: ' + reason)})"


def _fused_bandwidth(fused: dict[str, Any]) -> tuple[float, float]:
    """fused's GB/s and share of the copy bandwidth: by its GPU time alone where measured."""
    if fused.get("gpu_only_gbps") is not None:
        return fused["gpu_only_gbps"], fused["gpu_only_roofline_fraction"]
    return fused["gbps"], fused["roofline_fraction"]


def tables(records: Sequence[dict[str, Any]]) -> list[Table]:
    """One table per suite: ``(title, header, rows, notes)``; providers as columns, fused's figures after.

    A provider measured nowhere gets no column and one note saying why it did not run; a provider
    with a GPU time alone anywhere gets a ``<provider> GPU`` column next to its whole-call one.
    """
    out = []
    for suite, providers in (("prepare", PREPARE_PROVIDERS), ("grow", GROW_PROVIDERS)):
        recs = [r for r in records if r.get("suite") == suite]
        if not recs:
            continue
        by_case: dict[str, dict[str, dict[str, Any]]] = {}
        for rec in recs:
            by_case.setdefault(rec["id"], {})[rec["provider"]] = rec
        notes: dict[str, int] = {}
        shown, with_gpu = [], set()
        for p in providers:
            mine = [row[p] for row in by_case.values() if p in row]
            if any(_ok(r) for r in mine):
                shown.append(p)
                if any(r.get("gpu_only_ms") is not None for r in mine):
                    with_gpu.add(p)
            elif mine:
                for reason in dict.fromkeys(str(r.get("reason")) for r in mine):
                    _note(notes, f"{p} not run: {reason}")
        baselines = [p for p in shown if p not in ("fused", "copy")]
        columns = [c for p in shown for c in ((p, False), (p, True)) if not c[1] or p in with_gpu]
        header = ["case", "MP", *(f"{p} GPU" if gpu else p for p, gpu in columns), "fused GB/s", "% of copy"]
        header += [f"vs {p}" for p in baselines]
        if suite == "prepare":
            header += ["compile", "mem / budget"]
        rows = []
        for case_id, row in by_case.items():
            fused = row.get("fused")
            any_rec = next(iter(row.values()))
            cells = [case_id, f"{any_rec['megapixels']:.3g}"]
            cells += [(_gpu_cell if gpu else _cell)(row.get(p), notes) for p, gpu in columns]
            if _ok(fused):
                rate, fraction = _fused_bandwidth(fused)
                cells += [f"{rate:.3g}", f"{100 * fraction:.3g} %"]
            else:
                cells += ["—", "—"]
            cells += [_speedup(row.get(p), fused) for p in baselines]
            if suite == "prepare":
                compiled = row.get("torch.compile")
                cells.append(f"{compiled['compile_s']:.1f} s" if compiled and compiled.get("compile_s") else "—")
                peak = fused.get("peak_extra_bytes") if _ok(fused) else None
                cells.append(f"{peak / fused['memory_budget_bytes']:.2f}" if peak is not None else "—")
            rows.append(cells)
        title = "Whole preprocessing" if suite == "prepare" else "Mask growth alone (grow_mask) by box width"
        out.append((title, header, rows, notes))
    return out


def radius_ratios(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """fused's time at a large radius over its time at ``RADIUS_BASE`` for the same case otherwise.

    Prepare-suite cases only (``2048x2048-g64`` over ``2048x2048-g6``, ``was+128`` and ``was-128``
    over ``was+6``), per output. Uses the GPU time alone when both records have one, else the
    whole-call time; each row says which (``timer``).
    """
    fused = [r for r in records if _ok(r) and r.get("provider") == "fused" and r.get("suite") == "prepare"]

    def shape(rec: dict[str, Any]) -> tuple[Any, ...]:
        p = rec["params"]
        sizes = (p["batch"], p["height"], p["width"], p["mask_batch"], p["mask_height"], p["mask_width"])
        return (p["op"], rec["output"], *sizes)

    bases = {shape(r): r for r in fused if r["params"]["value"] == RADIUS_BASE}
    out = []
    for rec in fused:
        base = bases.get(shape(rec))
        if base is None or rec["params"]["window"] <= base["params"]["window"]:
            continue
        gpu_only = rec.get("gpu_only_ms") is not None and base.get("gpu_only_ms") is not None
        key = "gpu_only_ms" if gpu_only else "median_ms"
        out.append(
            {
                "id": rec["id"],
                "base": base["id"],
                "ms": rec[key],
                "base_ms": base[key],
                "ratio": rec[key] / base[key],
                "timer": "GPU alone" if gpu_only else "whole call",
            }
        )
    return out


def describe(meta: dict[str, Any]) -> str:
    """One line naming where and on what code the numbers were measured."""
    device = meta.get("gpu") or f"CPU only ({meta.get('cpu')})"
    commit = (meta.get("commit") or "unknown commit")[:10]
    if meta.get("commit_dirty"):
        commit += " (uncommitted changes)"
    if meta.get("commits_differ"):
        commit += " (files from several commits)"
    parts = [
        device,
        f"torch {meta.get('torch')}",
        f"triton {meta.get('triton')}",
        f"commit {commit}",
        f"source {meta.get('source_hash')}",
        f"CPU reference: {meta.get('cpu_threads')} threads of {meta.get('cpu')}",
    ]
    copy = meta.get("copy") or {}
    for dev, info in copy.items():
        parts.append(f"{dev} copy {info['gbps']:.0f} GB/s")
    if meta.get("device") == "cpu":
        parts.append(f"fused runs: {meta.get('fused_backend')}")
    if not meta.get("complete", True):
        parts.append("INCOMPLETE run")
    return " · ".join(parts)


def settings_line(meta: dict[str, Any]) -> str:
    """How the baselines were run: cuDNN autotuning, warm-ups, the two timers."""
    if meta.get("cudnn_benchmark"):
        return (
            "GPU baselines at their strongest: cuDNN autotuning on (`torch.backends.cudnn.benchmark = True`,"
            " cudnn_benchmark: true in the results), untimed warm-up calls first, torch.compile's compile time"
            " apart. `GPU` columns: the GPU time alone, the same calls replayed from a CUDA graph."
        )
    if meta.get("device") == "cuda":
        return (
            "These results do not record cuDNN autotuning: they predate its use for the GPU baselines, which"
            " ran with torch's default (`torch.backends.cudnn.benchmark = False`)."
        )
    return "CPU-only run: no GPU baselines, no CUDA graphs (records say so in gpu_only_reason)."


def _radius_lines(records: Sequence[dict[str, Any]]) -> list[str]:
    return [
        f"{r['id']} / {r['base']}: {r['ratio']:.2f} ({format_time(r['ms'])} / {format_time(r['base_ms'])},"
        f" {r['timer']})"
        for r in radius_ratios(records)
    ]


def render_text(meta: dict[str, Any], records: Sequence[dict[str, Any]]) -> str:
    """Aligned plain-text tables for a terminal."""
    lines = [describe(meta), ""]
    for title, header, rows, notes in tables(records):
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        lines.append(title)
        for cells in (header, *rows):
            padded = (c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
            lines.append("  ".join(padded))
        lines += [f"  ({n}) {reason}" for reason, n in notes.items()]
        lines.append("")
    lines += [settings_line(meta), ""]
    radius = _radius_lines(records)
    if radius:
        lines += ["Cost against the radius (fused, large over small):", *(f"  {line}" for line in radius), ""]
    return "\n".join(lines)


def render_markdown(meta: dict[str, Any], records: Sequence[dict[str, Any]], plot: Optional[str] = None) -> str:
    """Markdown tables (for the README) with the environment line, footnotes and an optional plot."""
    lines = [
        f"_Generated by `inpaint-fused report` from {', '.join(meta.get('sources', [])) or 'a run'};"
        " do not edit by hand._",
        "",
        describe(meta),
        "",
        "Times are medians of whole calls (CUDA events around eager calls, host overhead included) and,"
        " in `GPU` columns, of the GPU time alone (CUDA-graph replay); speed-ups are the other provider's"
        " whole call over fused's. `% of copy` is fused's GB/s (each input read once, each output written"
        " once; by its GPU time alone where measured) over a device-to-device copy's; `mem / budget` is"
        " fused's peak extra memory over its outputs plus 1 byte per pixel.",
        "",
    ]
    for title, header, rows, notes in tables(records):
        lines += [f"**{title}**", "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines += [""] + [f"{n}. {reason}" for reason, n in notes.items()]
        lines.append("")
    lines += [settings_line(meta), ""]
    radius = radius_ratios(records)
    if radius:
        lines += ["**Cost against the radius** (fused, large radius over the same case at 6)", ""]
        lines += ["| case | over | ratio | times | timer |", "|---|---|---:|---|---|"]
        lines += [
            f"| {r['id']} | {r['base']} | {r['ratio']:.2f} | {format_time(r['ms'])} / {format_time(r['base_ms'])}"
            f" | {r['timer']} |"
            for r in radius
        ]
        lines.append("")
    if plot:
        lines += [f"![benchmark plots]({plot})", ""]
    return "\n".join(lines).rstrip() + "\n"
