"""Results files: the environment a run records (GPU, versions, commit, settings), saving a run's
JSON and merging results files (``inpaint-fused bench --json`` or pytest-benchmark's JSON of ``bench/``).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import torch

from .. import _backend
from .providers import fused_backend

SCHEMA = "inpaint-fused-bench/1"


def repo_root() -> Path:
    """The checkout (or site-packages directory) that holds the ``inpaint_fused`` package."""
    return Path(__file__).resolve().parents[2]


def git_commit() -> tuple[Optional[str], Optional[bool]]:
    """``(commit, dirty)`` of the checkout the package runs from; ``INPAINT_FUSED_COMMIT`` overrides
    (a copied work tree without ``.git``, as on the GPU machine)."""
    override = os.environ.get("INPAINT_FUSED_COMMIT")
    if override:
        return override, None
    if not (repo_root() / ".git").exists():  # an installed package: git would name some enclosing repository
        return None, None

    def git(*args: str) -> str:
        command = ["git", "-C", str(repo_root()), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=10, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, dirty


def source_hash() -> str:
    """SHA-256 over the package's and the kernels' Python sources: names the code where git cannot."""
    digest = hashlib.sha256()
    roots = [Path(__file__).resolve().parents[1]]
    with contextlib.suppress(Exception):
        roots.append(Path(_backend.load_kernels().__file__).resolve().parent)
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root.parent).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def available_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def environment(device: torch.device) -> dict[str, Any]:
    commit, dirty = git_commit()
    meta: dict[str, Any] = {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device.type,
        "gpu": None,
        "gpu_memory_gib": None,
        "cuda": torch.version.cuda,
        "cpu": _cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "triton": None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit,
        "commit_dirty": dirty,
        "source_hash": source_hash(),
        "fused_backend": fused_backend(device),
    }
    with contextlib.suppress(ImportError):
        import triton

        meta["triton"] = triton.__version__
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        meta["gpu"] = props.name
        meta["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
    return meta


def save_results(path: Path, meta: dict[str, Any], records: Sequence[dict[str, Any]]) -> None:
    """Write ``{"meta", "results"}`` atomically (a run killed mid-way leaves the last complete file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"meta": meta, "results": list(records)}, indent=1, default=str) + "\n")
    os.replace(tmp, path)


def load_results(paths: Sequence[Path | str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Merge results files: ``inpaint-fused bench --json`` output or pytest-benchmark's ``--benchmark-json``.

    Later files override earlier ones per (case, provider), except that a skipped or failed record
    never replaces a measured one. Files from different GPUs are refused.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: a file is not a results file, or the files come from different devices.
    """
    meta: dict[str, Any] = {}
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    sources = []
    for path in map(Path, paths):
        if not path.is_file():
            raise FileNotFoundError(f"no such results file: {path}")
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} is not a JSON results file: {error}") from error
        if isinstance(data, dict) and "benchmarks" in data:
            file_meta = data.get("inpaint_fused") or {}
            records = [b.get("extra_info", {}) for b in data["benchmarks"]]
            records = [r for r in records if "provider" in r and "id" in r]
        elif isinstance(data, dict) and isinstance(data.get("meta"), dict) and isinstance(data.get("results"), list):
            file_meta, records = data["meta"], data["results"]
        else:
            raise ValueError(f"{path} is neither an inpaint-fused results file nor a pytest-benchmark JSON")
        if file_meta.get("schema", SCHEMA) != SCHEMA:
            raise ValueError(f"{path}: results schema {file_meta.get('schema')!r}, this version reads {SCHEMA!r}")
        if meta and (file_meta.get("device"), file_meta.get("gpu")) != (meta.get("device"), meta.get("gpu")):
            raise ValueError(
                f"{path} was measured on {file_meta.get('gpu') or file_meta.get('device')}, the first file on"
                f" {meta.get('gpu') or meta.get('device')}: report them apart"
            )
        if not meta:
            meta = dict(file_meta, copy=dict(file_meta.get("copy") or {}))
        else:
            meta["copy"].update(file_meta.get("copy") or {})
            meta["complete"] = meta.get("complete", True) and file_meta.get("complete", True)
            if file_meta.get("commit") != meta.get("commit"):
                meta["commits_differ"] = True
        for rec in records:
            key = (rec["id"], rec["provider"])
            if rec.get("status") == "ok" or merged.get(key, {}).get("status") != "ok":
                merged[key] = rec
        sources.append(path.name)
    meta["sources"] = sources
    return meta, list(merged.values())
