"""``_backend.Launcher``: Triton's own launch for the first call of a specialization, the compiled kernel's
launcher after it, with every argument (constexprs too) in the kernel's order. A stand-in kernel records the
calls; the GPU tests run the real one on every op."""

import pytest
import torch

from inpaint_fused import _backend


class _Compiled:
    function = "function"
    packed_metadata = "packed"

    def __init__(self):
        self.runs = []

    def launch_metadata(self, grid, stream, *args):
        return ("metadata", grid, stream, args)

    def run(self, *args):
        self.runs.append(args)


class _Kernel:
    arg_names = ["x_ptr", "n", "scale", "BLOCK", "FLAG"]

    def __init__(self):
        self.jit_calls = []
        self.compiled = []

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.jit_calls.append((grid, args, kwargs))
            self.compiled.append(_Compiled())
            return self.compiled[-1]

        return launch


@pytest.fixture
def launcher(monkeypatch):
    monkeypatch.setattr(_backend.Launcher, "cached", staticmethod(lambda device: True))
    monkeypatch.setattr(_backend.Launcher, "stream", staticmethod(lambda: 7))
    monkeypatch.setattr(_backend.Launcher, "hooks", staticmethod(lambda: ("enter", "exit")))
    return _backend.Launcher(_Kernel())


def test_second_call_runs_the_compiled_kernel_with_all_arguments_in_order(launcher):
    x = torch.zeros(64)
    launcher((4, 2), x, 32, 0.5, BLOCK=16, FLAG=True, options={"num_warps": 4})
    assert launcher.kernel.jit_calls == [((4, 2), (x, 32, 0.5), {"BLOCK": 16, "FLAG": True, "num_warps": 4})]
    launcher((5, 3), x, 48, 0.25, BLOCK=16, FLAG=True, options={"num_warps": 4})
    assert len(launcher.kernel.jit_calls) == 1
    (run,) = launcher.kernel.compiled[0].runs
    full = (x, 48, 0.25, 16, True)
    assert run == (5, 3, 1, 7, "function", "packed", ("metadata", (5, 3), 7, full), "enter", "exit", *full)


@pytest.mark.parametrize(
    "changed",
    [
        {"n": 33},  # no longer divisible by 16
        {"n": 1},  # equal to 1
        {"n": 2**31 + 16},  # 64-bit
        {"x": torch.zeros(64)[1:]},  # not 16-byte aligned
        {"x": torch.zeros(64, dtype=torch.float16)},  # another dtype
        {"BLOCK": 32},  # another constexpr
        {"num_warps": 8},  # another option
    ],
)
def test_what_triton_specializes_on_compiles_again(launcher, changed):
    args = {"x": torch.zeros(64), "n": 32, "BLOCK": 16, "num_warps": 4}
    launcher((1,), args["x"], args["n"], 1.0, BLOCK=args["BLOCK"], FLAG=False, options={"num_warps": 4})
    args.update(changed)
    launcher((1,), args["x"], args["n"], 1.0, BLOCK=args["BLOCK"], FLAG=False, options={"num_warps": args["num_warps"]})
    assert len(launcher.kernel.jit_calls) == 2
    assert launcher.kernel.compiled[0].runs == []


def test_cpu_tensors_always_take_tritons_own_launch(monkeypatch):
    launcher = _backend.Launcher(_Kernel())
    x = torch.zeros(64)
    for _ in range(3):
        launcher((1,), x, 32, 1.0, BLOCK=16, FLAG=False)
    assert len(launcher.kernel.jit_calls) == 3
