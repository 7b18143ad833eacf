"""``python -m inpaint_fused``: the ``inpaint-fused`` command line."""

import sys

from .cli import main

sys.exit(main())
