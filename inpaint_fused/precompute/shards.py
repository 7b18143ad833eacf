"""The output folder: shard plan, atomic shard files, per-shard records, run settings and the index.

Layout of ``--out DIR``::

    run.json                      settings of the run (a restart must match them)
    shard-000000.safetensors      stacked tensors of one shard, sample ids in the header
    progress/shard-000000.json    written after its shard file is in place: the shard is finished
    index.json                    every shard, its ids and skipped samples, the settings (written last)

The plan cuts the sorted sample list into consecutive ranges of ``shard_size``; shard ``i`` always
holds the readable samples of range ``i``, whatever the ranks or restarts. A shard is written to a
temporary name and ``os.replace``d into place when complete, then its record is written the same
way: a crash leaves at most a temporary file (removed on restart) or a shard without a record
(redone), never a partial shard that looks finished.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from .errors import PrecomputeError, require_extra

FORMAT = "inpaint-fused-precompute/1"
METADATA_KEY = "inpaint_fused"  # the safetensors header metadata: one JSON string (ids, skipped, settings)


@dataclass(frozen=True)
class Shard:
    """Samples ``[start, stop)`` of the sorted list."""

    index: int
    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"shard-{self.index:06d}.safetensors"


def plan_shards(total: int, shard_size: int) -> list[Shard]:
    """Consecutive ranges of ``shard_size`` samples (the last one shorter)."""
    if shard_size < 1:
        raise PrecomputeError(f"--shard-size must be >= 1, got {shard_size}")
    return [Shard(i, start, min(start + shard_size, total)) for i, start in enumerate(range(0, total, shard_size))]


def fingerprint(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def ids_digest(ids: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for sample_id in ids:
        digest.update(sample_id.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class OutputDir:
    """The output folder of one run (see the module docstring for its layout)."""

    def __init__(self, path: Path, settings: dict, paths: Optional[dict] = None):
        self.path = Path(path)
        self.settings = settings
        self.paths = paths or {}
        self.fingerprint = fingerprint(settings)
        self.progress = self.path / "progress"

    def check(self) -> None:
        """Refuse a folder that holds another run's output (before any work; each rank checks alike).

        Raises:
            PrecomputeError: ``run.json`` exists with other settings, or the path is a file.
        """
        if self.path.exists() and not self.path.is_dir():
            raise PrecomputeError(f"--out: {self.path} exists and is not a folder")
        run = self.path / "run.json"
        if run.is_file():
            previous = json.loads(run.read_text())
            if previous.get("fingerprint") != self.fingerprint:
                changed = sorted(
                    key
                    for key in set(previous.get("settings", {})) | set(self.settings)
                    if previous.get("settings", {}).get(key) != self.settings.get(key)
                )
                raise PrecomputeError(
                    f"--out: {self.path} holds a run with other settings (differing: {', '.join(changed)});"
                    " use another folder or the same settings to resume"
                )

    def start(self) -> None:
        """Create the folder and its ``run.json`` (rank 0, after every rank's :meth:`check`)."""
        self.progress.mkdir(parents=True, exist_ok=True)
        run = self.path / "run.json"
        if not run.is_file():
            body = {"format": FORMAT, "fingerprint": self.fingerprint, "settings": self.settings, "paths": self.paths}
            _write_atomic(run, json.dumps(body, indent=1, sort_keys=True).encode())

    def record_path(self, shard: Shard) -> Path:
        return self.progress / f"shard-{shard.index:06d}.json"

    def record(self, shard: Shard) -> Optional[dict]:
        """The shard's record if the shard is finished (its file in place, the size it was written with)."""
        try:
            record = json.loads(self.record_path(shard).read_text())
            size = (self.path / shard.name).stat().st_size
        except (OSError, ValueError):
            return None
        if record.get("fingerprint") != self.fingerprint or record.get("bytes") != size:
            return None
        return record

    def remove_partial(self, shards: Iterable[Shard]) -> None:
        """Delete temporary files an interrupted run left for these shards (a shard without a record is rewritten)."""
        for shard in shards:
            for leftover in self.path.glob(f"{shard.name}.tmp-*"):
                leftover.unlink(missing_ok=True)
            for leftover in self.progress.glob(f"shard-{shard.index:06d}.json.tmp-*"):
                leftover.unlink(missing_ok=True)

    def write(
        self, shard: Shard, tensors: dict[str, torch.Tensor], ids: list[str], skipped: list[tuple[str, str]]
    ) -> dict:
        """Write one finished shard: safetensors file to a temporary name, ``os.replace``, then its record."""
        save_file = require_extra("safetensors.torch", "writing shards").save_file
        # One key: safetensors writes its metadata map in an arbitrary order, one entry keeps files reproducible.
        header = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "shard": shard.index,
            "ids": ids,
            "skipped": [sample_id for sample_id, _ in skipped],
            "settings": self.settings,
        }
        metadata = {METADATA_KEY: json.dumps(header, sort_keys=True)}
        final = self.path / shard.name
        temporary = final.with_name(f"{final.name}.tmp-{os.getpid()}")
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(temporary), metadata=metadata)
        os.replace(temporary, final)
        record = {
            "fingerprint": self.fingerprint,
            "shard": shard.index,
            "file": shard.name,
            "bytes": final.stat().st_size,
            "ids": ids,
            "skipped": [{"id": sample_id, "reason": reason} for sample_id, reason in skipped],
        }
        _write_atomic(self.record_path(shard), json.dumps(record).encode())
        return record

    def write_index(self, plan: list[Shard]) -> dict:
        """``index.json``: the settings and every finished shard in plan order (rank 0, after all ranks).

        Raises:
            PrecomputeError: a planned shard has no valid record (a rank did not finish).
        """
        shards = []
        for shard in plan:
            record = self.record(shard)
            if record is None:
                raise PrecomputeError(f"--out: shard {shard.index} ({shard.name}) is not finished; run again to resume")
            shards.append({key: record[key] for key in ("file", "ids", "skipped")} | {"count": len(record["ids"])})
        index = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "settings": self.settings,
            "paths": self.paths,
            "samples": sum(s["count"] for s in shards),
            "skipped": sum(len(s["skipped"]) for s in shards),
            "shards": shards,
        }
        _write_atomic(self.path / "index.json", json.dumps(index, indent=1).encode())
        return index
