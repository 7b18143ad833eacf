"""What every subcommand shares: the error shown to the user and the choice of device."""

from __future__ import annotations

import torch


class CLIError(Exception):
    """A problem with the command's input, shown to the user as ``inpaint-fused: error: ...``."""


def add_device_option(parser) -> None:
    """``--device auto|cuda|cpu``, the same on every subcommand (``resolve_device`` reads it)."""
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto", help="default: CUDA if available")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise CLIError(f"--device cuda: no CUDA GPU is available to this torch ({torch.__version__})")
    return torch.device(name)
