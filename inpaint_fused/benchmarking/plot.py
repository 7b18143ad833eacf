"""Plots from records: time against megapixels (whole preprocessing) and against box width (mask growth)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .providers import GROW_PROVIDERS, PREPARE_PROVIDERS, PROVIDERS
from .tables import describe


class PlotUnavailable(RuntimeError):
    """matplotlib is missing: plots are an optional extra."""


def plot(meta: dict[str, Any], records: Sequence[dict[str, Any]], path: Path) -> None:
    """Two panels into one PNG: time vs megapixels (core node, grow 6, provider lines; solid bf16 VAE
    output, dashed f32) and time vs box width (mask growth alone).

    Raises:
        PlotUnavailable: matplotlib is not installed.
        ValueError: no measured record to plot.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise PlotUnavailable("plots need matplotlib: pip install 'inpaint-fused[plot]'") from error
    ok = [r for r in records if r.get("status") == "ok"]
    if not ok:
        raise ValueError("no measured result to plot")
    colors = {p: f"C{i}" for i, p in enumerate(PROVIDERS)}
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2))
    sized = [
        r
        for r in ok
        if r["suite"] == "prepare"
        and r["params"]["op"] == "core"
        and r["params"]["value"] == 6
        and (r["params"]["mask_height"], r["params"]["mask_width"]) == (r["params"]["height"], r["params"]["width"])
    ]
    for provider in PREPARE_PROVIDERS:
        for output, style in (("bf16", "-"), ("f32", "--")):
            pts = sorted(
                (r["megapixels"], r["median_ms"]) for r in sized if r["provider"] == provider and r["output"] == output
            )
            if pts:
                left.plot(
                    *zip(*pts, strict=True),
                    style,
                    marker="o",
                    color=colors[provider],
                    label=f"{provider} ({output})",
                    alpha=1.0 if output == "bf16" else 0.6,
                )
    left.set(
        xscale="log",
        yscale="log",
        xlabel="megapixels (batch × crop)",
        ylabel="median whole-call time (ms)",
        title="Whole preprocessing, grow_mask_by=6",
    )
    grown = [r for r in ok if r["suite"] == "grow"]
    sizes = sorted({(r["params"]["height"], r["params"]["width"]) for r in grown}, key=lambda s: s[0] * s[1])
    size = sizes[-1] if sizes else None
    for provider in GROW_PROVIDERS:
        pts = sorted(
            (r["params"]["window"], r["median_ms"])
            for r in grown
            if r["provider"] == provider and (r["params"]["height"], r["params"]["width"]) == size
        )
        if pts:
            right.plot(*zip(*pts, strict=True), marker="o", color=colors[provider], label=provider)
    right.set(
        xscale="log",
        yscale="log",
        xlabel="box width (pixels)",
        ylabel="median whole-call time (ms)",
        title=f"Mask growth alone, {size[0]}×{size[1]}" if size else "Mask growth alone",
    )
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(describe(meta).split(" · source")[0], fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
