"""The package's version, from one source: ``pyproject.toml``.

Installed (pip, editable or not), the metadata pip wrote from it answers; in a plain checkout (a
ComfyUI ``custom_nodes`` clone used without pip) the file itself is read.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

DISTRIBUTION = "inpaint-fused"


def version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        found = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.MULTILINE)
    except OSError:
        found = None
    return found.group(1) if found else "unknown"
