"""Run the same tests on a GPU machine and, through Triton's interpreter, on a CPU-only one.

The interpreter must be switched on before ``triton`` is imported, hence at the top of this file.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(
        reason="needs a CUDA device; on a CPU-only machine the kernels run under the interpreter in the other tests"
    )
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def device() -> torch.device:
    """The device the kernels run on here: CUDA when present, else the CPU under the interpreter."""
    return DEVICE
