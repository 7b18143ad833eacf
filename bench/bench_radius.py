"""The mask growth alone by box width (1 to 257): fused ``grow_mask`` vs the seed's ``conv2d``,
``max_pool2d``, kornia's dilation (when installed and when its unfold fits) and a copy."""

from inpaint_fused import benchmarking as bm

SUITE, PROVIDERS = "grow", bm.GROW_PROVIDERS  # parametrized by conftest.pytest_generate_tests


def test_grow(run_case, case, provider):
    run_case(case, provider)
