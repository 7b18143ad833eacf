"""The whole preprocessing, per case and output: fused vs the seed code on the GPU and on the CPU,
``torch.compile`` of the seed code, and a copy of the same byte count (the roofline)."""

import pytest

from inpaint_fused import benchmark as bm

GPU = pytest.mark.gpu
PAIRS = [
    pytest.param(case, provider, id=f"{case.id}-{provider}", marks=GPU if bm.needs_gpu(case, provider) else ())
    for case in bm.default_cases()
    if case.suite == "prepare"
    for provider in bm.PREPARE_PROVIDERS
]


@pytest.mark.parametrize(("case", "provider"), PAIRS)
def test_prepare(run_case, case, provider):
    run_case(case, provider)
