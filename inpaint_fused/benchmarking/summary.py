"""The GPU reference the demo compares with: a few fused rows of a GPU run, shipped in the package.

``inpaint-fused report RESULTS... --demo-summary inpaint_fused/data/gpu_reference.json`` writes it
from committed GPU results; ``inpaint-fused demo`` on a machine without a GPU reads it (installed as
package data, so it exists after ``pip install``) and names the case it compares with.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

SUMMARY_SCHEMA = "inpaint-fused-gpu-reference/1"
PACKAGED_SUMMARY = Path(__file__).resolve().parents[1] / "data" / "gpu_reference.json"


def demo_summary(meta: dict[str, Any], records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The fused prepare-suite records of single images with one mask, reduced to what the demo reads.

    Raises:
        ValueError: the records hold no such measured record.
    """
    rows = []
    for rec in records:
        params = rec.get("params") or {}
        if (
            rec.get("status") == "ok"
            and rec.get("provider") == "fused"
            and rec.get("suite") == "prepare"
            and params.get("batch") == 1
            and params.get("mask_batch") == 1
        ):
            rows.append(
                {
                    "id": rec["id"],
                    "op": params["op"],
                    "value": params["value"],
                    "output": rec["output"],
                    "height": params["height"],
                    "width": params["width"],
                    "megapixels": rec["megapixels"],
                    "median_ms": rec["median_ms"],
                    "gpu_only_ms": rec.get("gpu_only_ms"),
                }
            )
    if not rows:
        raise ValueError("no measured fused record of a single image to summarise")
    keys = ("device", "gpu", "torch", "triton", "commit", "created", "sources")
    return {"schema": SUMMARY_SCHEMA, **{k: meta.get(k) for k in keys}, "rows": rows}


def write_demo_summary(path: Path, meta: dict[str, Any], records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Write :func:`demo_summary` of GPU results to ``path`` and return it.

    Raises:
        ValueError: the results were not measured on a CUDA GPU, or hold no fused record to keep.
    """
    if meta.get("device") != "cuda":
        raise ValueError(f"the demo compares with GPU results; these were measured on {meta.get('device')}")
    summary = demo_summary(meta, records)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def load_demo_summary(path: Path = PACKAGED_SUMMARY) -> Optional[dict[str, Any]]:
    """The summary at ``path``, or None when there is none or it is not one."""
    try:
        summary = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(summary, dict) or summary.get("schema") != SUMMARY_SCHEMA or not summary.get("rows"):
        return None
    return summary


def nearest_fused(
    rows: Sequence[dict[str, Any]], megapixels: float, op: str, value: int, output: str = "f32"
) -> Optional[dict[str, Any]]:
    """The summary row that is most like a call of ``op`` with ``value`` on ``megapixels``.

    Like with like first: the same op, and the same grow or offset value when any row has it; then
    the closest size (log scale), then the same ``output``. The row's ``id`` names the case, so a
    caller can say what it compares with. None when no row has ``op``.
    """
    same_op = [r for r in rows if r["op"] == op]
    same_value = [r for r in same_op if r["value"] == value]
    candidates = same_value or same_op
    if not candidates:
        return None
    return min(candidates, key=lambda r: (abs(math.log(r["megapixels"] / megapixels)), r["output"] != output))
