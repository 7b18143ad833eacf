"""Feeding a VAE: the fused preprocessing on the VAE's device, one encode path, streaming batched encode.

Two kinds of VAE are accepted, both duck-typed (nothing here imports ComfyUI or diffusers):

- a ComfyUI ``VAE`` (``comfy.sd.VAE``): ``encode`` takes an IMAGE ``(B, H, W, C)`` in [0, 1]; its
  spatial ratio comes from ``spacial_compression_encode()`` (new versions) or ``downscale_ratio``
  (old ones; a tuple's last entry for video VAEs); ``device``, ``vae_dtype``, ``process_input``.
  The latent comes back exactly as ``VAE.encode`` returns it (ComfyUI's intermediate device and dtype).
- a diffusers ``AutoencoderKL`` / ``AutoencoderTiny``: NCHW input in [-1, 1] in the VAE's dtype and on
  its device; the latent is the posterior mode (KL) or the latents (Tiny), unscaled, on that device.

Raw pixels and mask go to the VAE's device once (pinned, non-blocking); the fused kernel writes the
VAE's input there, so a GPU-resident VAE never waits on CPU-side masking, cropping, scaling or casting.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple, Optional

import torch

from . import reference
from ._backend import uses_triton
from .api import prepare_inpaint, prepare_inpaint_was
from .check import VAE_DTYPES

__all__ = [
    "EncodedInpaint",
    "vae_downscale_ratio",
    "encode",
    "encode_for_inpaint",
    "encode_for_inpaint_was",
    "encode_batched",
    "encode_for_inpaint_batched",
]

logger = logging.getLogger(__name__)

OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
Progress = Callable[[int], None]

# ComfyUI's WAS node crops to a multiple of 8 whatever the VAE (the VAE then crops to its own ratio).
WAS_RATIO = 8


class EncodedInpaint(NamedTuple):
    """An inpainting encode: the latent and the noise mask ``(Bm, 1, x, y)`` float32 0/1."""

    samples: torch.Tensor
    noise_mask: torch.Tensor


def _ratio_value(value: object) -> int:
    if isinstance(value, (tuple, list)):
        value = value[-1]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TypeError(f"vae: the spatial downscale ratio must be a positive int, got {value!r}")
    return value


def vae_downscale_ratio(vae: object) -> int:
    """The VAE's spatial downscale ratio (8 for SD/SDXL/Flux VAEs).

    ComfyUI: ``spacial_compression_encode()``, else ``downscale_ratio`` (a tuple's last entry is the
    spatial ratio of a video VAE). diffusers: ``2 ** (len(config.block_out_channels) - 1)``.

    Raises:
        TypeError: an object that is neither kind of VAE, or a ratio that is not a positive int.

    Example:
        >>> from diffusers import AutoencoderKL
        >>> vae_downscale_ratio(AutoencoderKL(block_out_channels=(32, 32, 32, 32), norm_num_groups=32))
        8
    """
    return _as_encoder(vae).ratio


class _Encoder:
    """What the encode paths need of a VAE: ratio, device, dtype and two ways in."""

    ratio: int
    device: torch.device
    dtype: torch.dtype
    takes_vae_input: bool  # encode_input() accepts the fused kernel's NCHW ``2p - 1`` output

    def encode_input(self, vae_input: torch.Tensor) -> torch.Tensor:
        """Encode ``(N, 3, x, y)``: ``2p - 1`` in ``dtype`` on ``device``, cropped to the ratio."""
        raise NotImplementedError

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Encode an IMAGE ``(N, x, y, C)`` in [0, 1] on ``device``, cropped to the ratio."""
        raise NotImplementedError


def _identity(image: torch.Tensor) -> torch.Tensor:
    return image


def _is_two_p_minus_one(process_input: object) -> bool:
    if not callable(process_input):
        return False
    probe = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
    try:
        out = process_input(probe)
    except Exception:  # an audio or video transform that does not take this probe is not 2p - 1
        return False
    return isinstance(out, torch.Tensor) and torch.equal(out, probe * 2.0 - 1.0)


class _ComfyEncoder(_Encoder):
    """A ComfyUI ``VAE``: everything runs through its own ``encode`` (memory management, batching,
    tiled fallback, output device and dtype stay ComfyUI's).

    When ``encode`` maps pixels with its own ``process_input = 2p - 1``, a shallow copy whose
    ``process_input`` is the identity takes the fused kernel's output as is: the first stage receives
    the very values (and, through a channels-last view, the very memory layout) that the stock path
    hands it, without the float32 round trip.
    """

    def __init__(self, vae: object):
        spacial = getattr(vae, "spacial_compression_encode", None)
        self.ratio = _ratio_value(spacial() if callable(spacial) else vae.downscale_ratio)
        self.vae = vae
        self.device = torch.device(getattr(vae, "device", "cpu"))
        dtype = getattr(vae, "vae_dtype", torch.float32)
        self.dtype = dtype
        self.takes_vae_input = (
            dtype in VAE_DTYPES and "process_input" in vars(vae) and _is_two_p_minus_one(vars(vae)["process_input"])
        )

    def encode_input(self, vae_input: torch.Tensor) -> torch.Tensor:
        feeder = copy.copy(self.vae)
        feeder.process_input = _identity
        # ComfyUI hands its first stage ``movedim(-1, 1)`` of an IMAGE: NCHW in channels-last memory.
        return feeder.encode(vae_input.contiguous(memory_format=torch.channels_last).movedim(1, -1))

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(pixels[..., :3])


class _DiffusersEncoder(_Encoder):
    """A diffusers ``AutoencoderKL`` (posterior mode) or ``AutoencoderTiny`` (latents), unscaled."""

    takes_vae_input = True

    def __init__(self, vae: torch.nn.Module):
        self.vae = vae
        self.ratio = _ratio_value(2 ** (len(vae.config.block_out_channels) - 1))
        self.device = vae.device
        self.dtype = vae.dtype

    def encode_input(self, vae_input: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = self.vae.encode(vae_input)
        if hasattr(out, "latent_dist"):
            return out.latent_dist.mode()
        return out.latents

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.encode_input(reference.vae_input(pixels, self.dtype).contiguous())


def _as_encoder(vae: object) -> _Encoder:
    if isinstance(vae, _Encoder):
        return vae
    config = getattr(vae, "config", None)
    if isinstance(vae, torch.nn.Module) and hasattr(config, "block_out_channels"):
        encoder = _DiffusersEncoder(vae)
    elif callable(getattr(vae, "encode", None)) and (
        hasattr(vae, "spacial_compression_encode") or hasattr(vae, "downscale_ratio")
    ):
        encoder = _ComfyEncoder(vae)
    else:
        raise TypeError(
            "vae must be a ComfyUI VAE (encode + spacial_compression_encode/downscale_ratio) or a diffusers "
            f"AutoencoderKL/AutoencoderTiny, got {type(vae).__name__}"
        )
    _note_fallback(encoder.device)
    return encoder


_FALLBACK_NOTED: set[str] = set()


def _note_fallback(device: torch.device) -> None:
    """Say once per device type that the preprocessing runs the pure-torch reference there."""
    if uses_triton(device) or device.type in _FALLBACK_NOTED:
        return
    _FALLBACK_NOTED.add(device.type)
    logger.info(
        "inpaint-fused: the VAE is on %s, where the Triton kernels do not run; the preprocessing uses the "
        "pure-torch reference path (same results)",
        device,
    )


def _check_tensor(tensor: object, name: str) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    return tensor


def _check_per_batch(per_batch: object) -> int:
    if isinstance(per_batch, bool) or not isinstance(per_batch, int):
        raise TypeError(f"per_batch must be an int, got {type(per_batch).__name__}")
    if per_batch < 1:
        raise ValueError(f"per_batch must be >= 1, got {per_batch}")
    return per_batch


def _upload(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """One copy to ``device``; from the CPU to a GPU through pinned memory, not blocking the host."""
    if tensor.device == device:
        return tensor
    if device.type == "cuda" and tensor.device.type == "cpu":
        if not tensor.is_pinned():
            staged = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            tensor = staged.copy_(tensor)
        return tensor.to(device, non_blocking=True)
    return tensor.to(device)


def _check_pixels(pixels: object) -> torch.Tensor:
    pixels = _check_tensor(pixels, "pixels")
    if pixels.dim() != 4 or pixels.shape[-1] < 3:
        raise ValueError(f"pixels must be an IMAGE (B, H, W, C) with C >= 3, got shape {tuple(pixels.shape)}")
    return pixels


def _encode_prepared(encoder: _Encoder, prepared: torch.Tensor) -> torch.Tensor:
    return encoder.encode_input(prepared) if encoder.takes_vae_input else encoder.encode_pixels(prepared)


def _inpaint(vae, pixels, mask, value: int, was: bool) -> EncodedInpaint:
    encoder = _as_encoder(vae)
    pixels = _check_pixels(pixels)
    mask = _check_tensor(mask, "mask")
    prepare = prepare_inpaint_was if was else prepare_inpaint
    ratio = WAS_RATIO if was else encoder.ratio
    prepared = prepare(
        _upload(pixels, encoder.device),
        _upload(mask, encoder.device),
        value,
        downscale_ratio=ratio,
        vae_dtype=encoder.dtype if encoder.takes_vae_input else None,
    )
    samples = _encode_prepared(encoder, prepared.pixels)
    return EncodedInpaint(samples, prepared.noise_mask.to(mask.device))


def encode_for_inpaint(vae: object, pixels: torch.Tensor, mask: torch.Tensor, grow_mask_by: int = 6) -> EncodedInpaint:
    """ComfyUI "VAE Encode (for Inpainting)" with the fused preprocessing on the VAE's device.

    Pixels and mask go to the VAE's device once; the fused kernel crops to the VAE's ratio, grows the
    mask, fills gray and writes the VAE's input; the VAE encodes it. The VAE sees bit for bit what it
    sees behind the stock node (see :func:`inpaint_fused.prepare_inpaint` for the one tolerance).

    Shape:
        - pixels: IMAGE ``(B, H, W, C)``, C >= 3, on any device.
        - mask: ``(Bm, h, w)``, ``(h, w)`` or ``(Bm, 1, h, w)``; ``Bm`` is 1, ``B``, or any when ``B == 1``.
        - samples: the VAE's latent of ``max(B, Bm)`` images (ComfyUI: as ``VAE.encode`` returns it).
        - noise_mask: ``(Bm, 1, x, y)`` float32 0/1 on the mask's device, ``x = H // r * r``.

    Raises:
        TypeError: an unknown VAE, non-tensor or non-float inputs, a non-int ``grow_mask_by``.
        ValueError: as :func:`inpaint_fused.prepare_inpaint` (ranks, channels, batches, sizes).

    Example:
        >>> out = encode_for_inpaint(vae, image, mask, grow_mask_by=6)
        >>> latent = {"samples": out.samples, "noise_mask": out.noise_mask}
    """
    return _inpaint(vae, pixels, mask, grow_mask_by, was=False)


def encode_for_inpaint_was(
    vae: object, pixels: torch.Tensor, mask: torch.Tensor, mask_offset: int = 6
) -> EncodedInpaint:
    """WAS "Inpainting VAE Encode (WAS)" with the fused preprocessing on the VAE's device.

    As the seed node: the crop and the mask work at a multiple of 8 (the VAE then crops to its own
    ratio, as ComfyUI's ``VAE.encode`` does behind the stock node), dilation for ``mask_offset > 0``,
    erosion for ``< 0``, the gray fill uses the modified mask.

    Shape, Raises: as :func:`encode_for_inpaint`; ``mask_offset`` may be any int.

    Example:
        >>> out = encode_for_inpaint_was(vae, image, mask, mask_offset=-4)
    """
    return _inpaint(vae, pixels, mask, mask_offset, was=True)


def encode(vae: object, pixels: torch.Tensor) -> torch.Tensor:
    """ComfyUI "VAE Encode": centre crop to the VAE's ratio, drop alpha, encode, all on the VAE's device.

    Only the cropped RGB part of the image is uploaded.

    Shape:
        pixels: IMAGE ``(B, H, W, C)``, C >= 3 -> the VAE's latent of ``B`` images.

    Raises:
        TypeError: an unknown VAE or a non-tensor ``pixels``.
        ValueError: a wrong rank or fewer than 3 channels.

    Example:
        >>> latent = {"samples": encode(vae, image)}
    """
    encoder = _as_encoder(vae)
    pixels = _check_pixels(pixels)
    cropped = reference.vae_encode_crop_pixels(pixels[..., :3], encoder.ratio)
    return encoder.encode_pixels(_upload(cropped, encoder.device))


class _Staging:
    """Uploads slices of a CPU tensor to a GPU on a side stream through two reused pinned buffers.

    Slot ``k`` of the pinned buffers is refilled only after its previous copy has finished (its event);
    the device copy is allocated on the side stream and handed to the compute stream with an event
    and ``record_stream``, so the upload of the next slice runs while the current one is encoded.
    """

    def __init__(self, source: torch.Tensor, rows: int, device: torch.device, stream: torch.cuda.Stream):
        self.source = source
        self.device = device
        self.stream = stream
        shape = (rows, *source.shape[1:])
        self.buffers = [torch.empty(shape, dtype=source.dtype, pin_memory=True) for _ in range(2)]
        self.copied: list[Optional[torch.cuda.Event]] = [None, None]
        self.slot = 0

    def upload(self, start: int, stop: int) -> tuple[torch.Tensor, torch.cuda.Event]:
        slot, self.slot = self.slot, 1 - self.slot
        if self.copied[slot] is not None:
            self.copied[slot].synchronize()
        n = stop - start
        if n > self.buffers[slot].shape[0]:
            self.buffers[slot] = torch.empty((n, *self.source.shape[1:]), dtype=self.source.dtype, pin_memory=True)
        staged = self.buffers[slot][:n]
        staged.copy_(self.source[start:stop])
        with torch.cuda.stream(self.stream):
            on_device = staged.to(self.device, non_blocking=True)
            done = torch.cuda.Event()
            done.record(self.stream)
        self.copied[slot] = done
        return on_device, done


class _Chunk(NamedTuple):
    start: int
    stop: int
    parts: tuple[Optional[torch.Tensor], ...]  # per source: its rows of this chunk on the device, or None
    ready: Optional[torch.cuda.Event]


class _Uploader:
    """Per-frame sources (sliced with the frames) and whole sources (uploaded once) on the device."""

    def __init__(self, sources: list[tuple[torch.Tensor, bool]], rows: int, device: torch.device):
        self.device = device
        self.sources = sources
        self.streaming = device.type == "cuda"
        self.stream = torch.cuda.Stream(device) if self.streaming else None
        self.whole = [None if sliced else _upload(tensor, device) for tensor, sliced in sources]
        self.staging = [
            _Staging(tensor, rows, device, self.stream)
            if self.streaming and sliced and tensor.device.type == "cpu"
            else None
            for tensor, sliced in sources
        ]

    def upload(self, start: int, stop: int) -> _Chunk:
        parts: list[Optional[torch.Tensor]] = []
        ready = None
        for (tensor, sliced), staging in zip(self.sources, self.staging, strict=True):
            if not sliced:
                parts.append(None)
            elif staging is not None:
                part, ready = staging.upload(start, stop)
                parts.append(part)
            else:
                parts.append(_upload(tensor[start:stop], self.device))
        return _Chunk(start, stop, tuple(parts), ready)

    def take(self, chunk: _Chunk) -> list[torch.Tensor]:
        """The chunk's tensors, usable on the current stream."""
        if chunk.ready is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(chunk.ready)
            for part in chunk.parts:
                if part is not None:
                    part.record_stream(current)
        return [whole if part is None else part for part, whole in zip(chunk.parts, self.whole, strict=True)]

    def finish(self) -> None:
        if self.stream is not None:
            self.stream.synchronize()


@contextmanager
def _progress_bar(total: int, progress: Optional[Progress]) -> Iterator[Progress]:
    if progress is not None:
        yield progress
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:
        yield lambda n: None
        return
    with tqdm(total=total, unit="frame", desc="VAE encode") as bar:
        yield bar.update


def _stream(
    encoder: _Encoder,
    total: int,
    per_batch: int,
    sources: list[tuple[torch.Tensor, bool]],
    encode_slice: Callable[[list[torch.Tensor], int, int], torch.Tensor],
    progress: Optional[Progress],
) -> list[torch.Tensor]:
    """Encodes ``total`` frames in slices: upload of slice i + 1 overlaps the encode of slice i.

    ``encode_slice(tensors, lo, hi)`` encodes rows ``lo:hi`` of the current chunk's device tensors.
    On out-of-memory the slice is halved and retried, down to one frame, whose failure is raised.
    """
    uploader = _Uploader(sources, per_batch, encoder.device)
    size = per_batch
    outputs: list[torch.Tensor] = []
    try:
        with _progress_bar(total, progress) as report:
            chunk = uploader.upload(0, min(size, total))
            while chunk is not None:
                tensors = uploader.take(chunk)
                following = chunk.stop
                upcoming = uploader.upload(following, min(following + size, total)) if following < total else None
                position = chunk.start
                while position < chunk.stop:
                    n = min(size, chunk.stop - position)
                    lo = position - chunk.start
                    out_of_memory = False
                    try:
                        outputs.append(encode_slice(tensors, lo, lo + n))
                    except OUT_OF_MEMORY:
                        if n == 1:
                            raise
                        out_of_memory = True
                    if out_of_memory:
                        # Out of the except block, so the failed attempt's tensors are freed first.
                        size = n // 2
                        if encoder.device.type == "cuda":
                            torch.cuda.empty_cache()
                        logger.warning("inpaint-fused: out of memory encoding %d frames; retrying with %d", n, size)
                        continue
                    position += n
                    report(n)
                chunk = upcoming
    finally:
        uploader.finish()
    return outputs


def encode_batched(
    vae: object, pixels: torch.Tensor, per_batch: int = 16, *, progress: Optional[Progress] = None
) -> torch.Tensor:
    """VideoHelperSuite "VAE Encode Batched", streaming: slices of ``per_batch`` frames.

    Each slice is cropped to the VAE's ratio (RGB only) on the CPU side as a view, uploaded through
    pinned buffers on a second CUDA stream while the previous slice encodes, and encoded on the
    device. A slice that runs out of memory is halved and retried (down to one frame). The latents
    are concatenated in frame order: equal to encoding the slices one by one with the stock node.

    Args:
        progress: called with the number of frames after each slice (ComfyUI: a ``ProgressBar``'s
            ``update``, where a cancel is raised). ``None``: a ``tqdm`` bar when tqdm is installed.

    Shape:
        pixels: IMAGE ``(B, H, W, C)`` -> the VAE's latent of ``B`` images.

    Raises:
        TypeError, ValueError: an unknown VAE, a bad IMAGE, ``per_batch`` not an int >= 1.
        torch.OutOfMemoryError: when even one frame does not fit.

    Example:
        >>> latent = encode_batched(vae, video, per_batch=16)
    """
    encoder = _as_encoder(vae)
    pixels = _check_pixels(pixels)
    per_batch = _check_per_batch(per_batch)
    cropped = reference.vae_encode_crop_pixels(pixels[..., :3], encoder.ratio)

    def encode_slice(tensors: list[torch.Tensor], lo: int, hi: int) -> torch.Tensor:
        return encoder.encode_pixels(tensors[0][lo:hi])

    return torch.cat(_stream(encoder, cropped.shape[0], per_batch, [(cropped, True)], encode_slice, progress), dim=0)


def encode_for_inpaint_batched(
    vae: object,
    pixels: torch.Tensor,
    mask: torch.Tensor,
    grow_mask_by: int = 6,
    per_batch: int = 16,
    *,
    progress: Optional[Progress] = None,
) -> EncodedInpaint:
    """:func:`encode_for_inpaint` over a video in slices, streamed as :func:`encode_batched`.

    Masks pair with frames as in :func:`encode_for_inpaint`: one mask for all frames, one per frame,
    or one image under many masks. Each slice runs the fused kernel on the device and encodes; the
    result equals :func:`encode_for_inpaint` on the whole clip slice by slice.

    Shape:
        - pixels ``(B, H, W, C)``, mask ``(Bm, h, w)`` / ``(h, w)`` / ``(Bm, 1, h, w)``.
        - samples: latent of ``max(B, Bm)`` images; noise_mask ``(Bm, 1, x, y)`` on the mask's device.

    Raises:
        TypeError, ValueError: as :func:`encode_for_inpaint`, and ``per_batch`` not an int >= 1.
        torch.OutOfMemoryError: when even one frame does not fit.

    Example:
        >>> out = encode_for_inpaint_batched(vae, video, masks, grow_mask_by=6, per_batch=8)
    """
    encoder = _as_encoder(vae)
    pixels = _check_pixels(pixels)
    mask = _check_tensor(mask, "mask")
    per_batch = _check_per_batch(per_batch)
    if mask.dim() not in (2, 3, 4):
        raise ValueError(f"mask must be (B, h, w), (h, w) or (B, 1, h, w), got shape {tuple(mask.shape)}")
    image_batch, mask_batch = pixels.shape[0], 1 if mask.dim() == 2 else mask.shape[0]
    total = max(image_batch, mask_batch)
    if image_batch == 0 or image_batch not in (1, total) or mask_batch not in (1, total):
        raise ValueError(
            f"mask batch {mask_batch} does not fit pixels batch {image_batch}: it must be 1, {image_batch}, "
            "or pixels batch 1"
        )
    per_frame_image = image_batch == total > 1
    per_frame_mask = mask_batch == total > 1
    vae_dtype = encoder.dtype if encoder.takes_vae_input else None
    noise_masks: list[torch.Tensor] = []

    def encode_slice(tensors: list[torch.Tensor], lo: int, hi: int) -> torch.Tensor:
        frames, masks = tensors
        prepared = prepare_inpaint(
            frames[lo:hi] if per_frame_image else frames,
            masks[lo:hi] if per_frame_mask else masks,
            grow_mask_by,
            downscale_ratio=encoder.ratio,
            vae_dtype=vae_dtype,
        )
        samples = _encode_prepared(encoder, prepared.pixels)
        if per_frame_mask or not noise_masks:
            noise_masks.append(prepared.noise_mask.to(mask.device))
        return samples

    sources = [(pixels, per_frame_image), (mask, per_frame_mask)]
    samples = _stream(encoder, total, per_batch, sources, encode_slice, progress)
    return EncodedInpaint(torch.cat(samples, dim=0), torch.cat(noise_masks, dim=0))
