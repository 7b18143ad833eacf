"""``inpaint-fused precompute``: sources, masks, VAE loading, shards, resumption and the torchrun split.

Everything runs on the CPU with a tiny random-weight AutoencoderKL (4 levels: ratio 8, like SD).
The shards are checked against an independent recomputation: Pillow decode, the mask family,
``inpaint_fused.prepare_inpaint`` and ``vae.encode(...).latent_dist.mode()`` of the same batches.
Most runs use the pure-torch path of the preparation (``TRITON_INTERPRET=0``: the same bits as the
kernels, see test_prepare.py); one run goes through the kernels under the interpreter.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

pytest.importorskip("safetensors")
pytest.importorskip("diffusers")

from diffusers import AutoencoderKL  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

import inpaint_fused as ifd  # noqa: E402
from inpaint_fused.cli import main  # noqa: E402
from inpaint_fused.precompute import (  # noqa: E402
    MaskFamily,
    PrecomputeConfig,
    PrecomputeError,
    batch_params,
    decode_image,
    list_sources,
    load_vae,
    masks_for,
    rasterize,
    run,
)
from inpaint_fused.precompute import masks as masks_module  # noqa: E402

SIZE = 32
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"  # set by conftest before triton is imported, on CPU machines
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """One intra-op thread (the tiny VAE is slower with two on a shared 2-core runner); the torch path."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    yield
    torch.set_num_threads(threads)


def _tiny_vae() -> AutoencoderKL:
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=(32, 32, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        norm_num_groups=32,
        latent_channels=4,
        scaling_factor=0.5,
        shift_factor=0.25,
    )
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, parameter in vae.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.copy_(1 + 0.1 * noise if "norm" in name and name.endswith("weight") else 0.1 * noise)
    return vae.eval()


def _to_original(state: dict) -> dict:
    """diffusers AutoencoderKL keys -> original (LDM) keys, written independently of diffusers' converter."""
    levels = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"decoder\.up_blocks\.(\d+)\.", k)))
    out = {}
    for key, value in state.items():
        new = key.replace("conv_shortcut", "nin_shortcut").replace("conv_norm_out", "norm_out")
        new = re.sub(r"encoder\.down_blocks\.(\d+)\.resnets\.", r"encoder.down.\1.block.", new)
        new = re.sub(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.", r"encoder.down.\1.downsample.", new)
        new = re.sub(r"\.mid_block\.resnets\.(\d+)\.", lambda m: f".mid.block_{int(m.group(1)) + 1}.", new)
        up = re.match(r"decoder\.up_blocks\.(\d+)\.(resnets|upsamplers\.0)\.", new)
        if up:
            kind = "block" if up.group(2) == "resnets" else "upsample"
            new = new.replace(up.group(0), f"decoder.up.{levels - 1 - int(up.group(1))}.{kind}.")
        if ".mid_block.attentions.0." in new:
            new = new.replace(".mid_block.attentions.0.", ".mid.attn_1.")
            for old, ldm in (
                ("group_norm", "norm"),
                ("to_q", "q"),
                ("to_k", "k"),
                ("to_v", "v"),
                ("to_out.0", "proj_out"),
            ):
                new = new.replace(f".{old}.", f".{ldm}.")
            if value.dim() == 2:
                value = value[:, :, None, None]
        out[f"first_stage_model.{new}"] = value.clone()
    return out


@pytest.fixture(scope="module")
def vae_files(tmp_path_factory):
    base = tmp_path_factory.mktemp("vae")
    vae = _tiny_vae()
    vae.save_pretrained(base / "diffusers")
    save_file(_to_original(vae.state_dict()), str(base / "original.safetensors"))
    return base / "diffusers", base / "original.safetensors", vae


def _random_image(rng, height, width):
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """26 images of assorted sizes (PNG, JPEG, one gray, one RGBA) in nested folders, one corrupt file."""
    src = tmp_path_factory.mktemp("src")
    rng = np.random.default_rng(0)
    for i in range(26):
        folder = src / ("a" if i % 2 else "b/c")
        folder.mkdir(parents=True, exist_ok=True)
        image = _random_image(rng, 33 + 3 * i, 70 - i)
        if i == 5:
            image = image.convert("L")
        if i == 7:
            image = image.convert("RGBA")
        image.save(folder / f"img{i:02d}.{'jpg' if i % 3 == 0 else 'png'}")
    (src / "a" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (src / "notes.txt").write_text("ignored")
    return src


def _decode(data, size=SIZE) -> torch.Tensor:
    """Independent decode: Pillow, JPEG draft, shorter side bicubic, centre crop -> (size, size, 3) float."""
    image = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
    image.draft("RGB", (size, size))
    image = ImageOps.exif_transpose(image).convert("RGB")
    scale = size / min(image.size)
    target = (max(size, round(image.width * scale)), max(size, round(image.height * scale)))
    if target != image.size:
        image = image.resize(target, Image.Resampling.BICUBIC)
    left, top = (target[0] - size) // 2, (target[1] - size) // 2
    array = np.asarray(image.crop((left, top, left + size, top + size)))
    return torch.from_numpy(array.copy()).to(torch.float32) / 255.0


def _config(src, vae, out, **kwargs) -> PrecomputeConfig:
    options = dict(size=SIZE, batch_size=4, shard_size=6, workers=0, device="cpu", progress=False)
    options.update(kwargs)
    return PrecomputeConfig(source=src, vae=vae, out=out, **options)


def _shards(out: Path) -> list[tuple[dict, dict]]:
    index = json.loads((out / "index.json").read_text())
    shards = []
    for entry in index["shards"]:
        path = out / entry["file"]
        with safe_open(str(path), "pt") as handle:
            meta = json.loads(handle.metadata()["inpaint_fused"])
        shards.append((load_file(str(path)), meta))
    return shards


def _batches(all_ids: list[str], shard: int, shard_size: int, batch_size: int, kept: list[str]) -> list[list[str]]:
    """The shard's kept ids grouped as the run batches them: planned batches of the shard, minus skipped ids."""
    start = shard * shard_size
    planned = all_ids[start : start + shard_size]
    groups = [[i for i in planned[b : b + batch_size] if i in kept] for b in range(0, len(planned), batch_size)]
    assert [i for g in groups for i in g] == kept
    return [g for g in groups if g]


def _expected(vae, groups, load_pixels, load_masks, grow, keep_original=False, device="cpu", dtype=torch.float32):
    """Direct recomputation of one shard: fused preparation and ``vae.encode``, batch by batch as planned."""
    masked, original, latent_masks = [], [], []
    for ids in groups:
        p, m = torch.stack([load_pixels(i) for i in ids]).to(device), load_masks(ids).to(device)
        prepared = ifd.prepare_inpaint(p, m, grow, vae_dtype=dtype)
        with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True):
            masked.append((vae.encode(prepared.pixels).latent_dist.mode() - 0.25) * 0.5)
            if keep_original:
                vae_input = (p.movedim(-1, 1) * 2.0 - 1.0).to(dtype).contiguous()
                original.append((vae.encode(vae_input).latent_dist.mode() - 0.25) * 0.5)
        latent_masks.append(F.max_pool2d(prepared.noise_mask, 8).to(torch.uint8))
    cat = lambda parts: torch.cat(parts).cpu()  # noqa: E731
    return cat(masked), cat(original) if keep_original else None, cat(latent_masks)


def _random_masks(ids):
    return masks_for(ids, MaskFamily(), SIZE, torch.device("cpu"))


# ---------------------------------------------------------------------------------------------- masks


def _segment_mask_float(segments, size):
    """Reference: float64 distance of each pixel centre to each segment, in pixels; ties flagged."""
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    inside = np.zeros((size, size), bool)
    tie = np.zeros((size, size), bool)
    for ax, ay, bx, by, r in segments:
        a, b, radius = np.array([ax, ay]) / 2, np.array([bx, by]) / 2, r / 2
        d = b - a
        length2 = float(d @ d)
        t = np.zeros_like(xs) if length2 == 0 else np.clip(((xs - a[0]) * d[0] + (ys - a[1]) * d[1]) / length2, 0, 1)
        dist2 = (xs - a[0] - t * d[0]) ** 2 + (ys - a[1] - t * d[1]) ** 2
        inside |= dist2 <= radius**2
        tie |= np.abs(dist2 - radius**2) < 1e-9 * max(1.0, radius**2)
    return inside, tie


def test_masks_match_float_geometry_and_shapes():
    """Each kind against plain geometry: capsules (float64 distances), boxes, outpaint borders."""
    family = MaskFamily(stroke_count=(1, 3), stroke_vertices=(2, 5))
    size, seen = 40, set()
    for i in range(60):
        sample_id = f"geometry/{i}.png"
        kind, segments, boxes, keep = masks_module.draw(sample_id, family, size)
        seen.add(kind)
        got = masks_for([sample_id], family, size, torch.device("cpu"))[0].bool().numpy()
        if kind == "strokes":
            want, tie = _segment_mask_float(segments, size)
            assert not np.any((got != want) & ~tie), sample_id
            assert got.any()
        elif kind == "boxes":
            want = np.zeros((size, size), bool)
            for x0, y0, x1, y1 in boxes:
                want[y0:y1, x0:x1] = True
            assert np.array_equal(got, want)
        else:
            x0, y0, x1, y1 = keep
            want = np.ones((size, size), bool)
            want[y0:y1, x0:x1] = False
            assert np.array_equal(got, want) and want.any() and (x0, y0, x1, y1) != (0, 0, size, size)
    assert seen == {"strokes", "boxes", "outpaint"}


def test_masks_depend_on_id_and_seed_only():
    """A sample's mask is the same alone, in any batch, any padding, any chunking; seed and id change it."""
    family = MaskFamily()
    ids = [f"x/{i}.jpg" for i in range(9)]
    together = masks_for(ids, family, SIZE, torch.device("cpu"))
    alone = torch.cat([masks_for([i], family, SIZE, torch.device("cpu")) for i in ids])
    assert torch.equal(together, alone)
    padded = rasterize(batch_params(ids[::-1], family, SIZE, rows=12), SIZE, rows_per_chunk=5)
    assert torch.equal(padded[:9], together.flip(0)) and not padded[9:].any()
    assert 0.02 < float(together.mean()) < 0.9
    reseeded = masks_for(ids, MaskFamily(seed=1), SIZE, torch.device("cpu"))
    assert not torch.equal(reseeded, together)
    assert len({tuple(m.flatten().tolist()) for m in together}) == 9


def test_mask_family_rejects_bad_ranges():
    with pytest.raises(ValueError, match="stroke_vertices"):
        MaskFamily(stroke_vertices=(1, 3))
    with pytest.raises(ValueError, match="outpaint_margin"):
        MaskFamily(outpaint_margin=(0.1, 0.7))
    with pytest.raises(ValueError, match="weights"):
        MaskFamily(weights=(0.0, 0.0, 0.0))


# ------------------------------------------------------------------------------------------------ VAE


def test_original_format_vae_loads_the_same_weights(vae_files):
    folder, original, vae = vae_files
    from_folder = load_vae(folder, torch.device("cpu"))
    from_file = load_vae(original, torch.device("cpu"), scaling_factor=0.5, shift_factor=0.25)
    assert from_file.vae.config.block_out_channels == from_folder.vae.config.block_out_channels
    assert from_file.vae.config.layers_per_block == 1 and from_file.ratio == from_folder.ratio == 8
    reference_state = vae.state_dict()
    for loaded in (from_folder, from_file):
        state = loaded.vae.state_dict()
        assert state.keys() == reference_state.keys()
        assert all(torch.equal(state[k], reference_state[k]) for k in state)
    assert (from_folder.scaling_factor, from_folder.shift_factor) == (0.5, 0.25)
    x = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    assert torch.equal(from_file.encode(x), from_folder.encode(x))
    with pytest.raises(PrecomputeError, match="--scaling-factor"):
        load_vae(original, torch.device("cpu"))
    with pytest.raises(PrecomputeError, match="does not exist"):
        load_vae(folder / "nope", torch.device("cpu"))


# --------------------------------------------------------------------------------------------- runs


def test_folder_run_equals_direct_encode(dataset, vae_files, tmp_path):
    folder, _, vae = vae_files
    out = tmp_path / "out"
    summary = run(_config(dataset, folder, out, keep_original=True, full_mask=True, workers=2, grow=3))
    assert (summary.images, summary.skipped, summary.shards_written) == (26, 1, 5)
    assert summary.skipped_ids == ["a/broken.jpg"] and summary.index == out / "index.json"
    sources = list_sources(dataset)
    assert sources.ids[:2] == ["a/broken.jpg", "a/img01.png"] and len(sources) == 27
    index = json.loads((out / "index.json").read_text())
    assert [s["count"] for s in index["shards"]] == [5, 6, 6, 6, 3]
    assert index["shards"][0]["skipped"][0]["id"] == "a/broken.jpg"
    assert index["settings"]["vae"]["latent"] == "posterior mode"
    for shard, (tensors, meta) in enumerate(_shards(out)):
        ids = meta["ids"]
        groups = _batches(sources.ids, shard, 6, 4, ids)
        load = lambda i: _decode(dataset / i)  # noqa: E731
        masked, original, latent_mask = _expected(vae, groups, load, _random_masks, 3, keep_original=True)
        assert torch.equal(tensors["masked_latent"], masked)
        assert torch.equal(tensors["latent"], original)
        assert torch.equal(tensors["latent_mask"], latent_mask)
        grown = ifd.grow_mask(_random_masks(ids), 3)[:, None].to(torch.uint8)
        assert torch.equal(tensors["mask"], grown)
        assert tensors["masked_latent"].shape == (len(ids), 4, SIZE // 8, SIZE // 8)
        assert not torch.equal(tensors["masked_latent"], tensors["latent"])


@pytest.mark.skipif(
    not INTERPRETED, reason="Triton's interpreter is off (a GPU machine): the GPU test runs the compiled kernels"
)
def test_kernels_under_the_interpreter_give_the_same_shard(dataset, vae_files, tmp_path, monkeypatch):
    """The Triton kernels (interpreted) and the torch path write the same bytes (WAS preparation).

    The VAE comes from the original-format file here, and equals the folder's run but for the header.
    """
    folder, original, _ = vae_files
    outputs = []
    for interpret in ("0", "1"):
        monkeypatch.setenv("TRITON_INTERPRET", interpret)
        out = tmp_path / interpret
        config = _config(dataset, original, out, was_offset=-2, shard_size=4, batch_size=4, max_shards=1)
        config.scaling_factor, config.shift_factor = 0.5, 0.25
        run(config)
        outputs.append((out / "shard-000000.safetensors").read_bytes())
    assert outputs[0] == outputs[1]
    run(_config(dataset, folder, tmp_path / "folder", was_offset=-2, shard_size=4, batch_size=4, max_shards=1))
    from_folder = load_file(str(tmp_path / "folder" / "shard-000000.safetensors"))
    from_file = load_file(str(tmp_path / "1" / "shard-000000.safetensors"))
    assert from_folder.keys() == from_file.keys() and all(torch.equal(from_folder[k], from_file[k]) for k in from_file)


def test_decode_turns_by_exif_and_crops_the_centre(tmp_path):
    rng = np.random.default_rng(7)
    array = rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    Image.fromarray(array).save(tmp_path / "turned.png", exif=exif)
    got = decode_image(tmp_path / "turned.png", 48)
    upright = np.rot90(array, k=-1)  # (80, 48, 3): already 48 wide, so only the centre crop of the height
    assert got.shape == (48, 48, 3) and np.array_equal(got, upright[16:64])


def test_parquet_sources_struct_and_binary(vae_files, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    folder, _, vae = vae_files
    rng = np.random.default_rng(3)
    blobs = []
    for i in range(7):
        buffer = io.BytesIO()
        _random_image(rng, 40 + i, 36).save(buffer, format="JPEG" if i % 2 else "PNG")
        blobs.append(buffer.getvalue())
    blobs[4] = b"garbage"
    src = tmp_path / "hf"
    (src / "data").mkdir(parents=True)
    struct = pa.array([{"bytes": b, "path": f"{i}.png"} for i, b in enumerate(blobs)])
    pq.write_table(
        pa.table({"image": struct, "label": list(range(7))}), src / "data" / "train.parquet", row_group_size=3
    )
    pq.write_table(pa.table({"jpg": pa.array(blobs[:3], pa.binary())}), tmp_path / "flat.parquet")

    flat = list_sources(tmp_path / "flat.parquet", "jpg")
    assert flat.ids == ["flat.parquet/0", "flat.parquet/1", "flat.parquet/2"]
    with pytest.raises(PrecomputeError, match="no column 'image'"):
        list_sources(tmp_path / "flat.parquet")

    out = tmp_path / "out"
    summary = run(_config(src, folder, out, shard_size=4, batch_size=3))
    assert (summary.images, summary.skipped) == (6, 1)
    assert summary.skipped_ids == ["data/train.parquet/4"]
    all_ids = [f"data/train.parquet/{i}" for i in range(7)]
    for shard, (tensors, meta) in enumerate(_shards(out)):
        ids = meta["ids"]
        load = lambda i: _decode(blobs[int(i.rpartition("/")[2])])  # noqa: E731
        masked, _, latent_mask = _expected(vae, _batches(all_ids, shard, 4, 3, ids), load, _random_masks, 6)
        assert torch.equal(tensors["masked_latent"], masked)
        assert torch.equal(tensors["latent_mask"], latent_mask)
        assert set(tensors) == {"masked_latent", "latent_mask"}


def test_mask_files_matched_by_stem_and_missing_one_fails_first(dataset, vae_files, tmp_path, capsys):
    folder, _, vae = vae_files
    sources = list_sources(dataset)
    masks_dir = tmp_path / "masks"
    rng = np.random.default_rng(5)
    for index in range(len(sources)):
        path = masks_dir / f"{sources.mask_key(index)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((rng.random((40, 40)) > 0.7).astype(np.uint8) * 255).save(path)
    missing = masks_dir / "b/c/img04.png"
    missing.rename(tmp_path / "aside.png")
    out = tmp_path / "out"
    code = main(
        [
            "precompute",
            str(dataset),
            "--vae",
            str(folder),
            "--out",
            str(out),
            "--masks",
            str(masks_dir),
            "--device",
            "cpu",
        ]
    )
    assert code == 2 and not out.exists()
    assert "--masks: no mask" in capsys.readouterr().err
    with pytest.raises(PrecomputeError, match=r"no mask .* for 1 of 27 samples .*'b/c/img04'"):
        run(_config(dataset, folder, out, masks_dir=masks_dir))
    (tmp_path / "aside.png").rename(missing)
    run(_config(dataset, folder, out, masks_dir=masks_dir, shard_size=9, batch_size=9, max_shards=1))
    tensors = load_file(str(out / "shard-000000.safetensors"))
    with safe_open(str(out / "shard-000000.safetensors"), "pt") as handle:
        ids = json.loads(handle.metadata()["inpaint_fused"])["ids"]
    groups = _batches(sources.ids, 0, 9, 9, ids)

    def load_masks(group):
        return torch.stack([_decode(masks_dir / f"{i.rpartition('.')[0]}.png")[..., 0] for i in group])

    masked, _, latent_mask = _expected(vae, groups, lambda i: _decode(dataset / i), load_masks, 6)
    assert torch.equal(tensors["masked_latent"], masked) and torch.equal(tensors["latent_mask"], latent_mask)


def test_resume_skips_finished_shards_and_matches_a_fresh_run(dataset, vae_files, tmp_path):
    folder = vae_files[0]
    fresh, resumed = tmp_path / "fresh", tmp_path / "resumed"
    run(_config(dataset, folder, fresh))
    first = run(_config(dataset, folder, resumed, max_shards=2))
    assert first.shards_written == 2 and first.index is None and not (resumed / "index.json").exists()
    done = resumed / "shard-000000.safetensors"
    stamp = done.stat().st_mtime_ns
    # A crash in flight: a half-written temporary file, a shard file whose record never came.
    (resumed / "shard-000002.safetensors.tmp-99999").write_bytes(b"partial")
    (resumed / "shard-000003.safetensors").write_bytes(b"not finished")
    moved = tmp_path / "moved"  # another mount point of the same data (another node, a restart elsewhere)
    shutil.copytree(dataset, moved)
    second = run(_config(moved, folder, resumed))
    assert (second.shards_written, second.shards_done_before) == (3, 2)
    assert done.stat().st_mtime_ns == stamp
    assert not list(resumed.glob("*.tmp-*"))
    for shard in sorted(fresh.glob("shard-*.safetensors")):
        assert (resumed / shard.name).read_bytes() == shard.read_bytes()
    resumed_index, fresh_index = (json.loads((d / "index.json").read_text()) for d in (resumed, fresh))
    assert resumed_index.pop("paths")["source"] == str(moved) and fresh_index.pop("paths")["source"] == str(dataset)
    assert resumed_index == fresh_index
    with pytest.raises(PrecomputeError, match="other settings .*size"):
        run(_config(dataset, folder, resumed, size=40))


def test_missing_extra_names_it(monkeypatch, dataset, vae_files, tmp_path):
    installed = sys.modules["safetensors"]
    monkeypatch.setitem(sys.modules, "safetensors", None)  # what an environment without it imports
    with pytest.raises(PrecomputeError, match=r"pip install 'inpaint-fused\[precompute\]'"):
        run(_config(dataset, vae_files[0], tmp_path / "out"))
    monkeypatch.setitem(sys.modules, "safetensors", installed)
    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(PrecomputeError, match=r"loading a VAE needs diffusers.*inpaint-fused\[diffusers\]"):
        load_vae(vae_files[0], torch.device("cpu"))


def test_torchrun_two_processes_equal_one(dataset, vae_files, tmp_path):
    """``torchrun --nproc-per-node 2`` (gloo) writes the same shards, bit for bit, as one process."""
    folder = vae_files[0]
    single, double = tmp_path / "one", tmp_path / "two"
    run(_config(dataset, folder, single, keep_original=True))
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "TRITON_INTERPRET": "0", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "inpaint_fused", "precompute", str(dataset), "--vae", str(folder), "--out", str(double),
        "--size", str(SIZE), "--batch-size", "4", "--shard-size", "6", "--workers", "0", "--device", "cpu",
        "--keep-original", "--no-progress",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=170, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "images   26 encoded, 1 skipped" in done.stdout
    names = sorted(p.name for p in single.glob("shard-*.safetensors"))
    assert names == sorted(p.name for p in double.glob("shard-*.safetensors")) and len(names) == 5
    for name in names:
        assert (single / name).read_bytes() == (double / name).read_bytes(), name
    assert json.loads((double / "index.json").read_text()) == json.loads((single / "index.json").read_text())


@pytest.mark.gpu
def test_cuda_run_equals_direct_encode_and_compiled_masks_equal_cpu(dataset, vae_files, tmp_path):
    """On the GPU: bf16 VAE, Triton preparation, Triton rasterizer; masks bit-equal to the CPU's."""
    folder = vae_files[0]
    cuda = torch.device("cuda")
    out = tmp_path / "gpu"
    summary = run(_config(dataset, folder, out, device="cuda", keep_original=True, workers=2))
    assert (summary.images, summary.skipped) == (26, 1)
    vae = load_vae(folder, cuda)
    assert vae.dtype == torch.bfloat16
    sources = list_sources(dataset)
    for shard, (tensors, meta) in enumerate(_shards(out)):
        ids = meta["ids"]
        groups = _batches(sources.ids, shard, 6, 4, ids)
        for group in groups:
            compiled = rasterize(
                masks_module.MaskParams(*(t.to(cuda) for t in batch_params(group, MaskFamily(), SIZE, 4))), SIZE
            )
            assert torch.equal(compiled[: len(group)].cpu(), _random_masks(group))
            assert torch.equal(masks_for(group, MaskFamily(), SIZE, cuda).cpu(), _random_masks(group))
        load = lambda i: _decode(dataset / i)  # noqa: E731
        masked, original, latent_mask = _expected(
            vae.vae, groups, load, _random_masks, 6, keep_original=True, device=cuda, dtype=torch.bfloat16
        )
        assert tensors["masked_latent"].dtype == torch.bfloat16
        assert torch.equal(tensors["masked_latent"], masked)
        assert torch.equal(tensors["latent"], original)
        assert torch.equal(tensors["latent_mask"], latent_mask)


def test_cli_parses_ranges_and_kinds(capsys):
    from inpaint_fused.cli import _parser

    args = _parser().parse_args(
        ["precompute", "src", "--vae", "v", "--out", "o", "--mask-kinds", "boxes=2,outpaint", "--stroke-count", "3"]
    )
    assert args.mask_kinds == (0.0, 2.0, 1.0) and args.stroke_count == (3, 3) and args.box_size == (0.1, 0.5)
    for bad, said in ((["--mask-kinds", "blobs=1"], "'blobs' is not one of"), (["--box-size", "a:b"], "LOW:HIGH")):
        with pytest.raises(SystemExit):
            _parser().parse_args(["precompute", "src", "--vae", "v", "--out", "o", *bad])
        assert said in capsys.readouterr().err
    assert main(["precompute", "src", "--vae", "v", "--out", "o", "--stroke-vertices", "1:2"]) == 2
    assert "stroke_vertices" in capsys.readouterr().err


def test_readme_block_renderer(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import precompute_table
    finally:
        sys.path.remove(str(ROOT / "bench"))
    result = {
        "environment": {"gpu": "NVIDIA H200", "torch": "2.9", "diffusers": "0.35", "commit": "0123456789abcdef"},
        "config": {"images": 2048, "size": 512, "batch_size": 32, "workers": 12, "keep_original": True, "vae": "SD"},
        "results": {
            "vae_ceiling_img_s": 400.0, "vae_ceiling_autotuned_img_s": 420.0, "pipeline_img_s": 380.0,
            "pipeline_fraction_of_ceiling": 0.95, "standard_img_s": 190.0, "pipeline_vs_standard": 2.0,
            "masks": {
                "gpu_us_per_image": 3.0, "pil_us_per_image": 1500.0, "speedup": 500.0, "params_us_per_image": 40.0,
            },
        },
    }  # fmt: skip
    block = precompute_table.render(result)
    assert block.startswith(precompute_table.START) and block.endswith(precompute_table.END)
    assert "| 380 | 95 % of (a) |" in block and "2.00x" in block and "**500x**" in block and "0123456789" in block
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{precompute_table.START}\nold\n{precompute_table.END}\nrest\n")
    assert precompute_table.main([str(_write_json(tmp_path, result)), "--readme", str(readme)]) == 0
    assert readme.read_text() == f"intro\n{block}\nrest\n"


def test_readme_block_renders_the_mask_generator_line():
    """Results since issue #14: ids -> masks on the GPU vs the same draw on the CPU + Pillow."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import precompute_table
    finally:
        sys.path.remove(str(ROOT / "bench"))
    masks = {
        "batch_size": 64, "gpu_us_per_image": 4.25, "gpu_draw_us_per_image": 0.5, "gpu_raster_us_per_image": 1.5,
        "cpu_us_per_image": 280.0, "cpu_params_us_per_image": 25.0, "pil_us_per_image": 255.0, "speedup": 65.9,
    }  # fmt: skip
    line = precompute_table._mask_line(masks, 512)
    assert "batches of 64" in line and "4.2 µs per mask" in line and "(parameter draw 0.5, rasterizer 1.5)" in line
    assert "280 µs" in line and "CPU tensors 25, Pillow ImageDraw 255" in line and "**66x**" in line


def _write_json(folder: Path, data: dict) -> Path:
    path = folder / "result.json"
    path.write_text(json.dumps(data))
    return path
