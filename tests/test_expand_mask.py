"""``expand_mask`` (ComfyUI GrowMask) against the stock node's scipy code, kernels and pure-torch path.

The reference is ``reference.grow_mask_node``, the stock node line for line; every comparison is
``torch.equal`` (values are selected, never computed). The kernels run on the GPU, or here under
Triton's interpreter on small shapes; the pure-torch path (``ops.expand_mask_torch``, what a
CPU-only ComfyUI runs) takes the full matrix of sizes and radii.
"""

import functools
from unittest import mock

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import inpaint_fused as ifd
from inpaint_fused import reference
from inpaint_fused.comfyui import masks, transfer
from inpaint_fused.ops import expand_mask as expand_op
from inpaint_fused.ops.expand_mask_torch import expand_mask_torch

SIZES = [(1, 1), (1, 7), (7, 1), (5, 9), (37, 53)]
EXPANDS = [0, 1, -1, 2, -2, 3, -3, 7, -7, 20, -20, 300, -300]


def _grey(batch: int, h: int, w: int, seed: int, dtype=torch.float32) -> torch.Tensor:
    """Grey values with flat regions (ties) and a few exact 0s and 1s, as masks from feathering have."""
    g = torch.Generator().manual_seed(seed)
    values = torch.rand(batch, h, w, generator=g)
    flat = torch.rand(batch, h, w, generator=g)
    values = torch.where(flat < 0.2, 0.0, torch.where(flat > 0.9, 1.0, values))
    return values.to(dtype)


def _binary(batch: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, h, w, generator=g) > 0.85).float()


def _stock(mask: torch.Tensor, expand: int, tapered: bool) -> torch.Tensor:
    """The stock node's result in the mask's dtype (numpy has no bfloat16 and scipy no float16: via float64)."""
    if mask.dtype in (torch.float32, torch.float64):
        return reference.grow_mask_node(mask.cpu(), expand, tapered)
    return reference.grow_mask_node(mask.cpu().double(), expand, tapered).to(mask.dtype)


def _poison_grid(value: float):
    """Patch the diamond's rotated-grid allocation to come back filled with ``value``: a pass that reads a
    cell the pass before did not write (outside the band it scans) puts ``value`` (NaN, an infinity) into
    the output."""
    allocate = expand_op._new_grid
    return mock.patch.object(expand_op, "_new_grid", lambda mask, half: allocate(mask, half).fill_(value))


@pytest.fixture
def poisoned_grid():
    with _poison_grid(float("nan")):
        yield


def _corner_extremes(h: int, w: int, seed: int, dtype=torch.float32) -> torch.Tensor:
    """A grey mask whose maxima and minima sit in the corners, the pixels the grid's band ends on."""
    mask = _grey(1, h, w, seed) * 0.5 + 0.25
    mask[0, 0, 0], mask[0, -1, -1] = 1.0, 0.875
    mask[0, 0, -1], mask[0, -1, 0] = 0.0, 0.125
    return mask.to(dtype)


# --- the reference itself, by hand


def test_reference_hand_checked_shapes_of_the_footprints():
    point = torch.zeros(1, 9, 9)
    point[0, 4, 4] = 1.0
    diamond = reference.grow_mask_node(point, 2, True)[0]
    rows, cols = torch.meshgrid(torch.arange(9), torch.arange(9), indexing="ij")
    assert torch.equal(diamond, ((rows - 4).abs() + (cols - 4).abs() <= 2).float())
    square = reference.grow_mask_node(point, 2, False)[0]
    assert torch.equal(square, (((rows - 4).abs() <= 2) & ((cols - 4).abs() <= 2)).float())


def test_reference_hand_checked_grey_row_and_border():
    row = torch.tensor([[[0.0, 0.25, 0.75, 0.5, 0.0]]])
    assert torch.equal(reference.grow_mask_node(row, 1, True), torch.tensor([[[0.25, 0.75, 0.75, 0.75, 0.5]]]))
    assert torch.equal(reference.grow_mask_node(row, -1, True), torch.tensor([[[0.0, 0.0, 0.25, 0.0, 0.0]]]))
    # The border neither grows nor shrinks a mask: outside the image never wins.
    ones = torch.ones(1, 4, 6)
    assert torch.equal(reference.grow_mask_node(ones, -3, False), ones)
    corner = torch.zeros(1, 4, 6)
    corner[0, 0, 0] = 0.5
    grown = reference.grow_mask_node(corner, 2, True)
    assert grown.shape == (1, 4, 6) and grown.dtype == torch.float32
    assert grown[0, :3, :3].tolist() == [[0.5, 0.5, 0.5], [0.5, 0.5, 0.0], [0.5, 0.0, 0.0]]
    assert torch.equal(reference.grow_mask_node(row[0], 0, True), row)  # (h, w) -> (1, h, w), unchanged


# --- the pure-torch path: the whole matrix


@pytest.mark.parametrize("tapered", [True, False])
@pytest.mark.parametrize(("h", "w"), SIZES)
def test_torch_path_equals_stock(h, w, tapered):
    for i, expand in enumerate(EXPANDS):
        mask = _grey(2, h, w, seed=i) if i % 2 else _binary(2, h, w, seed=i)
        assert torch.equal(expand_mask_torch(mask, expand, tapered), _stock(mask, expand, tapered)), expand


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_torch_path_keeps_the_dtype(dtype):
    mask = _grey(2, 11, 13, seed=5, dtype=dtype)
    for expand, tapered in [(4, True), (-5, False), (-6, True)]:
        out = expand_mask_torch(mask, expand, tapered)
        assert out.dtype == dtype and torch.equal(out, _stock(mask, expand, tapered))


# --- the kernels (interpreter on a CPU): small shapes


@pytest.mark.parametrize(
    ("h", "w", "expands"),
    [
        (1, 1, [1, -300]),
        (1, 7, [2, -3]),
        (7, 1, [-2, 300]),
        (5, 9, [0, 1, -2, -7, 300]),
        (37, 53, [3, -2, -7, 20, 300]),
    ],
)
@pytest.mark.parametrize("tapered", [True, False])
def test_kernels_equal_stock(device, poisoned_grid, h, w, expands, tapered):
    for i, expand in enumerate(expands):
        mask = _grey(2, h, w, seed=10 + i) if i % 2 == 0 else _binary(2, h, w, seed=10 + i)
        out = ifd.expand_mask(mask.to(device), expand, tapered)
        assert out.shape == (2, h, w) and out.device.type == device.type and out.is_contiguous()
        assert torch.equal(out.cpu(), _stock(mask, expand, tapered)), expand


@pytest.mark.parametrize(("expand", "tapered"), [(2, True), (-5, True), (-12, False)])
def test_kernels_cross_tile_and_program_seams(device, monkeypatch, poisoned_grid, expand, tapered):
    """Small tiles and three programs per line: carries between tiles and runs meeting mid-window."""
    if device.type == "cuda":
        pytest.skip("the interpreter's launch settings only")
    small = expand_op.ScanConfig(16, 16, 1)
    config = expand_op.ExpandConfig(small, small, small, 16, 16, 1, 1, 3)
    monkeypatch.setattr(expand_op, "INTERPRETER_CONFIG", config)
    mask = _grey(1, 29, 41, seed=expand)
    assert torch.equal(ifd.expand_mask(mask, expand, tapered).cpu(), _stock(mask, expand, tapered))


# The diamond scans only a band of its rotated grid (ops.expand_mask: D(e, e, 2e) and D(e + 2m, e, 2e + 2m)); a
# grid filled with NaN shows any cell read that no pass wrote. Thin images and radii around their sides put
# the band's ends and corners everywhere: m = (radius - 1) // 2 below, at and above h, past h + w.
@pytest.mark.parametrize(
    ("h", "w", "expands"),
    [
        (3, 200, [6, -7, 9, 300]),
        (200, 3, [-6, 7, -9, -250]),
        (1, 97, [1, -2, 3, 96, -200]),
        (97, 1, [-1, 2, -95, 200]),
        (9, 11, [1, -2, 9, 10, -19, 30]),
    ],
)
def test_diamond_band_on_thin_images_and_radii_around_their_sides(device, poisoned_grid, h, w, expands):
    for i, expand in enumerate(expands):
        mask = _corner_extremes(h, w, seed=i + h).to(device)
        assert torch.equal(ifd.expand_mask(mask, expand, True).cpu(), _stock(mask.cpu(), expand, True)), expand


def test_diamond_band_across_small_tiles(device, monkeypatch, poisoned_grid):
    """Lines of four: program bands that are unions of a few lines, most programs outside the band."""
    if device.type == "cuda":
        pytest.skip("the interpreter's launch settings only")
    small = expand_op.ScanConfig(8, 4, 1)
    monkeypatch.setattr(expand_op, "INTERPRETER_CONFIG", expand_op.ExpandConfig(small, small, small, 8, 8, 1, 1, 3))
    for h, w, expand in [(3, 40, 5), (40, 3, -8), (6, 7, 12)]:
        mask = _corner_extremes(h, w, seed=expand)
        assert torch.equal(ifd.expand_mask(mask, expand, True), _stock(mask, expand, True)), (h, w, expand)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_diamond_band_keeps_the_dtype(device, poisoned_grid, dtype):
    mask = _corner_extremes(5, 31, seed=7, dtype=dtype).to(device)
    for expand in (4, -7):
        out = ifd.expand_mask(mask, expand, True)
        assert out.dtype == dtype and torch.equal(out.cpu(), _stock(mask.cpu(), expand, True)), expand


def test_diamond_band_nan_with_infinite_poison(device):
    """NaN in the mask, the grid poisoned with the value the op would pick (``+inf`` growing, ``-inf`` eroding)."""
    mask = _corner_extremes(6, 23, seed=1)
    mask[0, 0, 22] = float("nan")
    mask[0, 3, 5] = float("nan")
    nan_at = torch.isnan(mask).float()
    for expand in (3, -6):
        with _poison_grid(float("inf") if expand > 0 else float("-inf")):
            out = ifd.expand_mask(mask.to(device), expand, True).cpu()
        window_has_nan = reference.grow_mask_node(nan_at, abs(expand), True) > 0
        assert torch.equal(torch.isnan(out), window_has_nan)
        expected = _stock(torch.nan_to_num(mask, nan=float("-inf") if expand > 0 else float("inf")), expand, True)
        assert torch.equal(out[~window_has_nan], expected[~window_has_nan])


@pytest.mark.parametrize(("h", "w"), [(1, 1), (3, 200), (200, 3), (37, 53), (64, 64), (5, 129)])
@pytest.mark.parametrize("m", [0, 1, 6, 40])
def test_band_length_bounds_the_lines_of_a_program(h, w, m):
    """``_band_lengths`` (how many cells the programs of one line block cover) is at least the union of any
    ``block_l`` consecutive lines' intervals of the band, counted here cell by cell on the grid; its
    average is within a block's slack of the band's cells per line."""
    half = -(-(h + w + 3) // 2)
    for reach in (1, 2):
        for out in ((reach + 2 * m, reach, 2 * reach + 2 * m), (reach, reach, 2 * reach)):
            a_x, a_y, b = out
            for parity in (0, 1):
                x = 2 * torch.arange(half)[:, None] + parity
                y = 2 * torch.arange(half)[None, :] + (parity + w + 1) % 2
                inside = (
                    (x >= 2 - a_x)
                    & (x <= h + w + a_x)
                    & (y >= 2 - a_y)
                    & (y <= h + w + a_y)
                    & (x + y >= w + 3 - b)
                    & (x + y <= 2 * h + w + 1 + b)
                    & (x - y >= 1 - w - b)
                    & (x - y <= w - 1 + b)
                )
                for block_l in (1, 4, 32):
                    bound, mean = expand_op._band_lengths(expand_op.Band(h, w, out, (0, 0, 0)), half, block_l)
                    assert int(inside.sum()) / half <= mean <= int(inside.sum()) / half + block_l + 2 * b + 3
                    for start in range(0, half, block_l):
                        cells = inside[start : start + block_l].any(0).nonzero()
                        if len(cells):
                            assert cells[-1] - cells[0] + 1 <= bound, (parity, block_l, start)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_kernels_keep_the_dtype(device, dtype):
    mask = _grey(1, 9, 14, seed=3, dtype=dtype)
    for expand, tapered in [(3, True), (-4, False)]:
        out = ifd.expand_mask(mask.to(device), expand, tapered)
        assert out.dtype == dtype and torch.equal(out.cpu(), _stock(mask, expand, tapered))


def test_kernels_take_strided_views(device):
    base = _grey(2, 15, 11, seed=8).to(device)
    views = {"transposed": base.mT, "sliced": base[:, 3:14:2, 1:], "channel": base[:1].unsqueeze(1)}
    for name, view in views.items():
        for expand, tapered in [(4, True), (-3, False)]:
            expected = _stock(view.cpu().contiguous(), expand, tapered)
            assert torch.equal(ifd.expand_mask(view, expand, tapered).cpu(), expected), name


def test_nan_propagates(device):
    mask = _grey(1, 12, 15, seed=2)
    mask[0, 3, 4] = float("nan")
    mask[0, 10, 14] = float("nan")
    nan_at = torch.isnan(mask).float()
    for expand, tapered in [(2, True), (-3, False)]:
        for out in (ifd.expand_mask(mask.to(device), expand, tapered).cpu(), expand_mask_torch(mask, expand, tapered)):
            window_has_nan = reference.grow_mask_node(nan_at, abs(expand), tapered) > 0
            assert torch.equal(torch.isnan(out), window_has_nan)
            fill = float("-inf") if expand > 0 else float("inf")
            expected = _stock(torch.nan_to_num(mask, nan=fill), expand, tapered)
            assert torch.equal(out[~window_has_nan], expected[~window_has_nan])


def test_registered_op(device):
    mask = _grey(2, 3, 5, seed=4).to(device)
    torch.library.opcheck(torch.ops.inpaint_fused.expand_mask.default, (mask[:, :, 1:], -2, False))


def test_torch_compile_fullgraph(device):
    torch._dynamo.reset()
    # aot_eager: dynamo and AOT tracing through the fake (inductor adds a minute of C++ builds on a CPU).
    compiled = torch.compile(lambda m: ifd.expand_mask(m, 3, True), fullgraph=True, dynamic=True, backend="aot_eager")
    for h, w in ((8, 10), (6, 13)):
        mask = _grey(1, h, w, seed=6).to(device)
        assert torch.equal(compiled(mask).cpu(), _stock(mask.cpu(), 3, True))


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 24),
    w=st.integers(1, 24),
    expand=st.integers(-60, 60),
    tapered=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_fuzz_torch_path(h, w, expand, tapered, seed):
    mask = _grey(1, h, w, seed)
    assert torch.equal(expand_mask_torch(mask, expand, tapered), _stock(mask, expand, tapered))


@settings(max_examples=6, deadline=None)
@given(
    h=st.integers(1, 20),
    w=st.integers(1, 20),
    expand=st.integers(-30, 30),
    tapered=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_fuzz_kernels(h, w, expand, tapered, seed):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    mask = _grey(1, h, w, seed)
    with _poison_grid(float("nan")):
        out = ifd.expand_mask(mask.to(device), expand, tapered).cpu()
    assert torch.equal(out, _stock(mask, expand, tapered))


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (([[0.5]], 1), TypeError, "mask must be a torch.Tensor"),
        ((torch.ones(4, 4, dtype=torch.int64), 1), TypeError, "mask must be a float16/bfloat16/float32/float64"),
        ((torch.ones(4), 1), ValueError, r"mask must be \(B, h, w\)"),
        ((torch.ones(0, 4, 4), 1), ValueError, "mask must not be empty"),
        ((torch.ones(4, 4), 1.5), TypeError, "expand must be an int"),
        ((torch.ones(4, 4), True), TypeError, "expand must be an int"),
        ((torch.ones(4, 4), 16385), ValueError, "expand must be <= 16384"),
        ((torch.ones(4, 4), -16385), ValueError, "expand must be >= -16384"),
        ((torch.ones(4, 4), 1, 1), TypeError, "tapered_corners must be a bool"),
    ],
)
def test_bad_input_names_the_argument(args, error, match):
    with pytest.raises(error, match=match):
        ifd.expand_mask(*args)
    with pytest.raises(error, match=match):
        masks.grow_mask(*args, *(() if len(args) > 2 else (True,)))


def test_api_refuses_a_mask_of_several_channels():
    with pytest.raises(ValueError, match=r"mask of rank 4 must be \(B, 1, h, w\)"):
        ifd.expand_mask(torch.ones(2, 3, 4, 4), 1)


# --- the ComfyUI node's boundary


@pytest.mark.parametrize(("expand", "tapered"), [(0, True), (5, True), (-4, True), (6, False), (-9, False)])
def test_node_equals_stock_on_cpu(expand, tapered):
    mask = _grey(3, 21, 34, seed=expand + 40)
    out = masks.grow_mask(mask, expand, tapered, device=torch.device("cpu"))
    stock = reference.grow_mask_node(mask, expand, tapered)
    assert out.device == stock.device and out.dtype == stock.dtype and torch.equal(out, stock)


def test_node_flattens_leading_dims_as_stock():
    mask = _grey(6, 5, 7, seed=9).view(2, 3, 5, 7)
    assert torch.equal(masks.grow_mask(mask, 2, False, device="cpu"), reference.grow_mask_node(mask, 2, False))


def test_node_outside_comfyui_runs_and_returns_on_the_cpu():
    mask = _grey(1, 10, 12, seed=1)[0]  # (h, w) -> (1, h, w), as the stock node
    out = masks.grow_mask(mask, -2, True)
    assert out.shape == (1, 10, 12) and out.device.type == "cpu"
    assert torch.equal(out, reference.grow_mask_node(mask, -2, True))


@pytest.mark.gpu
@pytest.mark.parametrize("expand", [1, 16, -16, 64, -64])
@pytest.mark.parametrize("tapered", [True, False])
def test_gpu_node_and_kernels_on_larger_masks(poisoned_grid, expand, tapered):
    mask = _grey(2, 509, 767, seed=abs(expand))
    stock = reference.grow_mask_node(mask, expand, tapered)
    node = masks.grow_mask(mask, expand, tapered, device=torch.device("cuda"), output_device=torch.device("cpu"))
    assert node.device.type == "cpu" and torch.equal(node, stock)
    on_gpu = mask.cuda()
    assert torch.equal(ifd.expand_mask(on_gpu, expand, tapered), expand_mask_torch(on_gpu, expand, tapered))
    half = on_gpu.half()[:, ::3, 1::2]
    assert torch.equal(ifd.expand_mask(half, expand, tapered), expand_mask_torch(half, expand, tapered))


@pytest.mark.gpu
@pytest.mark.parametrize(("h", "w"), [(1024, 1024), (3, 1500), (1500, 3), (1, 777), (640, 96)])
def test_gpu_diamond_band_at_the_gpu_launch_settings(poisoned_grid, h, w):
    """The GPU's tiles and runs (program bands that are unions of 32 lines, several runs per line block) on a
    NaN-poisoned grid, radii of every class (no column pass, odd and even taps, past the image)."""
    mask = _corner_extremes(h, w, seed=h + w).expand(2, h, w).contiguous().cuda()
    for expand in (1, 2, 5, -6, 64, -129, min(h, w) + 1, h + w):
        got = ifd.expand_mask(mask, expand, True)
        assert torch.equal(got, expand_mask_torch(mask, expand, True)), (h, w, expand)


@pytest.mark.gpu
def test_gpu_kernels_equal_the_torch_path_over_random_shapes_dtypes_nan_and_radii():
    """The GPU scan (``tl.associative_scan``; the interpreter runs Hillis-Steele steps instead) against the
    pure-torch path: odd shapes across tile seams, every float dtype, NaN, radii from 1 to past the image; the
    diamond's grid poisoned with infinities (the value the op would pick: a cell read outside its band shows)."""
    generator = torch.Generator().manual_seed(5)
    for trial in range(40):
        batch = int(torch.randint(1, 4, (1,), generator=generator))
        h, w = (int(v) for v in torch.randint(1, 300, (2,), generator=generator))
        dtype = (torch.float32, torch.float16, torch.bfloat16, torch.float64)[trial % 4]
        mask = torch.rand((batch, h, w), generator=generator).to(dtype)
        if trial % 5 == 0:
            mask.view(-1)[int(torch.randint(0, mask.numel(), (1,), generator=generator))] = float("nan")
        expand = int(torch.randint(-(h + w), h + w + 1, (1,), generator=generator))
        for tapered in (True, False):
            on_gpu = mask.cuda()
            with _poison_grid(float("inf") if expand > 0 else float("-inf")):
                got = ifd.expand_mask(on_gpu, expand, tapered)
            want = expand_mask_torch(on_gpu, expand, tapered)
            assert torch.equal(got.isnan(), want.isnan()), (trial, batch, h, w, dtype, expand, tapered)
            assert torch.equal(got.nan_to_num(), want.nan_to_num()), (trial, batch, h, w, dtype, expand, tapered)


# --- the chunked transfer pipeline of large CPU masks (comfyui/transfer.py)


def test_chunks_are_whole_frames_within_the_budget():
    mask = torch.zeros(81, 48, 80)  # 15360 bytes a frame
    assert transfer.frames_per_chunk(mask, 15360 * 10) == 10
    assert transfer.frames_per_chunk(mask, 15360 * 10 + 15359) == 10
    assert transfer.frames_per_chunk(mask, 100) == 1  # at least one frame
    assert transfer.frames_per_chunk(mask, 2**40) == 81  # at most the batch
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert transfer.uses_pipeline(torch.empty(1), cuda, cpu)  # the default: every size (faster on the H200)


def test_pipeline_threshold(monkeypatch):
    monkeypatch.setattr(transfer, "PIPELINE_MIN_BYTES", 4096)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    big = torch.empty(1024)
    small = torch.empty(1023)
    assert transfer.uses_pipeline(big, cuda, cpu)
    assert not transfer.uses_pipeline(small, cuda, cpu)
    assert not transfer.uses_pipeline(big, cpu, cpu) and not transfer.uses_pipeline(big, cuda, cuda)


@pytest.mark.parametrize(("chunk", "expand", "tapered"), [(1, 3, True), (2, -2, False), (3, 5, False), (7, -4, True)])
def test_chunked_frames_equal_stock_across_seams(chunk, expand, tapered):
    """The chunk loop (on the CPU: the kernels under the interpreter) gives the stock values at every seam."""
    mask = _grey(7, 13, 18, seed=chunk + 70)[:, :, 1:]  # a strided view, as a sliced batch would be
    grow = functools.partial(expand_op.expand_mask, expand=expand, tapered_corners=tapered)
    out = transfer.map_frames(grow, mask, torch.device("cpu"), chunk)
    stock = reference.grow_mask_node(mask, expand, tapered)
    assert out.is_contiguous() and out.dtype == stock.dtype and torch.equal(out, stock)


@pytest.mark.gpu
@pytest.mark.parametrize("pinned", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize(("expand", "tapered"), [(16, True), (-16, False), (0, True)])
def test_gpu_node_pipeline_equals_stock(monkeypatch, pinned, dtype, expand, tapered):
    """Small chunks and threshold: every stream handoff runs many times, against the stock node per frame."""
    monkeypatch.setattr(transfer, "PIPELINE_MIN_BYTES", 1)
    monkeypatch.setattr(transfer, "CHUNK_BYTES", 3 * 61 * 97 * dtype.itemsize)
    monkeypatch.setattr(transfer, "PINNED_OUTPUT", pinned)
    mask = _grey(11, 61, 97, seed=abs(expand) + 5, dtype=dtype)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert transfer.uses_pipeline(mask, cuda, cpu) and transfer.frames_per_chunk(mask) == 3
    out = masks.grow_mask(mask, expand, tapered, device=cuda, output_device=cpu)
    assert out.device.type == "cpu" and out.is_pinned() == pinned and out.dtype == dtype
    assert torch.equal(out, _stock(mask, expand, tapered))
    if pinned:  # a pinned output fed back in goes up without staging: the same values again
        again = masks.grow_mask(out, -expand, not tapered, device=cuda, output_device=cpu)
        assert torch.equal(again, _stock(out, -expand, not tapered))


@pytest.mark.gpu
def test_gpu_node_pipeline_on_a_video_batch():
    """81 frames of 480x832 (the issue's case) through the default pipeline equal the kernels on the GPU."""
    mask = _grey(81, 480, 832, seed=3)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert transfer.uses_pipeline(mask, cuda, cpu)
    for expand, tapered in ((16, True), (16, False), (-7, True)):
        out = masks.grow_mask(mask, expand, tapered, device=cuda, output_device=cpu)
        assert torch.equal(out, ifd.expand_mask(mask.cuda(), expand, tapered).cpu())
    assert torch.equal(out[:2], reference.grow_mask_node(mask[:2], -7, True))
