"""The whole preprocessing, per case and output: fused vs the seed code on the GPU and on the CPU,
``torch.compile`` of the seed code, and a copy of the same byte count (the roofline)."""

from inpaint_fused import benchmarking as bm

SUITE, PROVIDERS = "prepare", bm.PREPARE_PROVIDERS  # parametrized by conftest.pytest_generate_tests


def test_prepare(run_case, case, provider):
    run_case(case, provider)
