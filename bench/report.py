"""Tables, plots and the README block from benchmark results: ``python bench/report.py FILES... [options]``.

The same as ``inpaint-fused report`` (see ``--help``), for a checkout where the entry point is not
installed.
"""

import sys

from inpaint_fused.cli import main

if __name__ == "__main__":
    sys.exit(main(["report", *sys.argv[1:]]))
