"""The mask growth alone by box width (1 to 257): fused ``grow_mask`` vs the seed's ``conv2d``,
``max_pool2d``, kornia's dilation (when installed and when its unfold fits) and a copy."""

import pytest

from inpaint_fused import benchmark as bm

GPU = pytest.mark.gpu
PAIRS = [
    pytest.param(case, provider, id=f"{case.id}-{provider}", marks=GPU if bm.needs_gpu(case, provider) else ())
    for case in bm.default_cases()
    if case.suite == "grow"
    for provider in bm.GROW_PROVIDERS
]


@pytest.mark.parametrize(("case", "provider"), PAIRS)
def test_grow(run_case, case, provider):
    run_case(case, provider)
