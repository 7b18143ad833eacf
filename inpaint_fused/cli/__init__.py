"""The ``inpaint-fused`` command (also ``python -m inpaint_fused``), one module per subcommand.

``demo`` runs the preprocessing on a picture and a mask (a bundled sample by default), prints its
time next to the original nodes' code and writes a preview; ``bench`` runs the benchmark matrix;
``report`` turns results files into tables, plots and the README block.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Optional

from . import bench, demo, precompute
from .common import CLIError

__all__ = ["CLIError", "main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inpaint-fused",
        description="Fused Triton preprocessing for inpainting VAE encoders: try it, benchmark it, report it.",
    )
    sub = parser.add_subparsers(dest="command", required=True, title="commands")
    demo.add_parser(sub)
    bench.add_parsers(sub)
    precompute.add_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status (2 for a usage or input error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if not argv:  # `inpaint-fused` and `python -m inpaint_fused` alone list the commands
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return args.run(args)
    except CLIError as error:
        print(f"inpaint-fused: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
