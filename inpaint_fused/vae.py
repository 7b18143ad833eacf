"""Feeding a VAE: the fused preprocessing on the VAE's device, one encode path, streaming batched encode.

The encode paths see a VAE through :class:`Encoder` (ratio, device, dtype, two ways in). Two kinds of
VAE are recognised, each by an adapter that is imported on first use and is itself duck-typed, so
nothing here imports ComfyUI or diffusers:

- a ComfyUI ``VAE`` (:mod:`inpaint_fused.comfyui.vae`): ``encode`` takes an IMAGE ``(B, H, W, C)`` in
  [0, 1]; the latent comes back exactly as ``VAE.encode`` returns it (ComfyUI's intermediate device
  and dtype).
- a diffusers ``AutoencoderKL`` / ``AutoencoderTiny`` (:mod:`inpaint_fused.diffusers.vae`): NCHW input
  in [-1, 1] in the VAE's dtype and on its device; the latent is the posterior mode (KL) or the
  latents (Tiny), unscaled, on that device.

An :class:`Encoder` instance is accepted as the ``vae`` too. Raw pixels and mask go to the VAE's
device once (pinned, non-blocking); the fused kernel writes the VAE's input there, so a GPU-resident
VAE never waits on CPU-side masking, cropping, scaling or casting. The batched paths stream slices
through :mod:`inpaint_fused.streaming`.
"""

from __future__ import annotations

import importlib
import logging
from abc import ABC, abstractmethod
from typing import NamedTuple, Optional

import torch

from ._backend import uses_triton
from .api import prepare_inpaint, prepare_inpaint_was
from .check import check_float_tensor, check_image, check_int
from .streaming import Progress, stream, upload

__all__ = [
    "EncodedInpaint",
    "Encoder",
    "vae_downscale_ratio",
    "encode",
    "encode_for_inpaint",
    "encode_for_inpaint_was",
    "encode_batched",
    "encode_for_inpaint_batched",
]

logger = logging.getLogger(__name__)

# ComfyUI's WAS node crops to a multiple of 8 whatever the VAE (the VAE then crops to its own ratio).
WAS_RATIO = 8

# Modules with ``encoder_for(vae) -> Encoder | None``, asked in this order on first use.
_ADAPTERS = ("inpaint_fused.comfyui.vae", "inpaint_fused.diffusers.vae")


class EncodedInpaint(NamedTuple):
    """An inpainting encode: the latent and the noise mask ``(Bm, 1, x, y)`` float32 0/1."""

    samples: torch.Tensor
    noise_mask: torch.Tensor


class Encoder(ABC):
    """What the encode paths need of a VAE: its spatial ratio, device, dtype and two ways in.

    ``takes_vae_input``: :meth:`encode_input` accepts the fused kernel's output, so the kernel writes
    the VAE's input (``2p - 1`` in ``dtype``); otherwise the kernel writes an IMAGE for
    :meth:`encode_pixels`.
    """

    ratio: int
    device: torch.device
    dtype: torch.dtype
    takes_vae_input: bool

    @abstractmethod
    def encode_input(self, vae_input: torch.Tensor) -> torch.Tensor:
        """Encode ``(N, 3, x, y)``: ``2p - 1`` in ``dtype`` on ``device``, cropped to the ratio."""

    @abstractmethod
    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Encode an IMAGE ``(N, x, y, C)`` in [0, 1] on ``device``, cropped to the ratio."""


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


def _as_encoder(vae: object) -> Encoder:
    if isinstance(vae, Encoder):
        encoder = vae
    else:
        for name in _ADAPTERS:
            encoder = importlib.import_module(name).encoder_for(vae)
            if encoder is not None:
                break
        else:
            raise TypeError(
                "vae must be a ComfyUI VAE (encode + spacial_compression_encode/downscale_ratio) or a diffusers "
                f"AutoencoderKL/AutoencoderTiny, got {type(vae).__name__}"
            )
    ratio = encoder.ratio
    if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
        raise TypeError(f"vae: the spatial downscale ratio must be a positive int, got {ratio!r}")
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


def _cropped_rgb(pixels: torch.Tensor, ratio: int) -> torch.Tensor:
    """ComfyUI's ``vae_encode_crop_pixels`` of the RGB channels: centred crop to a multiple of ``ratio``, a view."""
    height, width = pixels.shape[1:3]
    if height < ratio or width < ratio:
        raise ValueError(
            f"pixels of {height}x{width} are smaller than the VAE's downscale ratio {ratio}: nothing is left after "
            "the crop"
        )
    pixels = pixels[..., :3]
    for dim in (1, 2):
        size = pixels.shape[dim]
        if size % ratio:
            pixels = pixels.narrow(dim, size % ratio // 2, size - size % ratio)
    return pixels


def _encode_prepared(encoder: Encoder, prepared: torch.Tensor) -> torch.Tensor:
    return encoder.encode_input(prepared) if encoder.takes_vae_input else encoder.encode_pixels(prepared)


def _inpaint(vae, pixels, mask, value: int, was: bool) -> EncodedInpaint:
    encoder = _as_encoder(vae)
    pixels = check_image(pixels)
    mask = check_float_tensor(mask, "mask")
    prepare = prepare_inpaint_was if was else prepare_inpaint
    ratio = WAS_RATIO if was else encoder.ratio
    prepared = prepare(
        upload(pixels, encoder.device),
        upload(mask, encoder.device),
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

    As the original node: the crop and the mask work at a multiple of 8 (the VAE then crops to its own
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
        TypeError: an unknown VAE, a non-tensor or non-float ``pixels``.
        ValueError: a wrong rank, fewer than 3 channels, no frame, or smaller than the VAE's ratio.

    Example:
        >>> latent = {"samples": encode(vae, image)}
    """
    encoder = _as_encoder(vae)
    pixels = check_image(pixels)
    cropped = _cropped_rgb(pixels, encoder.ratio)
    return encoder.encode_pixels(upload(cropped, encoder.device))


def encode_batched(
    vae: object, pixels: torch.Tensor, per_batch: int = 16, *, progress: Optional[Progress] = None
) -> torch.Tensor:
    """VideoHelperSuite "VAE Encode Batched", streaming: slices of ``per_batch`` frames.

    Each slice is cropped to the VAE's ratio (RGB only) on the CPU side as a view, uploaded through
    pinned buffers on a second CUDA stream while the previous slice encodes, and encoded on the
    device. A slice that runs out of memory is halved (with ceiling) and retried, down to one frame;
    after a run of successful slices the size doubles back towards ``per_batch`` (see
    :class:`inpaint_fused.streaming.SliceSizes`). The latents are concatenated in frame order: equal
    to encoding the slices one by one with the stock node.

    Args:
        progress: called with the number of frames after each slice (ComfyUI: a ``ProgressBar``'s
            ``update``, where a cancel is raised). ``None``: a ``tqdm`` bar when tqdm is installed.

    Shape:
        pixels: IMAGE ``(B, H, W, C)`` -> the VAE's latent of ``B`` images.

    Raises:
        TypeError, ValueError: an unknown VAE, a bad IMAGE (as :func:`encode`), ``per_batch`` not an
            int >= 1.
        torch.OutOfMemoryError: when even one frame does not fit (the VAE's own error chained).

    Example:
        >>> latent = encode_batched(vae, video, per_batch=16)
    """
    encoder = _as_encoder(vae)
    pixels = check_image(pixels)
    per_batch = check_int(per_batch, "per_batch", 1)
    cropped = _cropped_rgb(pixels, encoder.ratio)

    def encode_slice(tensors: list[torch.Tensor], lo: int, hi: int) -> torch.Tensor:
        return encoder.encode_pixels(tensors[0][lo:hi])

    latents = stream(encoder.device, cropped.shape[0], per_batch, [(cropped, True)], encode_slice, progress)
    return torch.cat(latents, dim=0)


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
        torch.OutOfMemoryError: when even one frame does not fit (the VAE's own error chained).

    Example:
        >>> out = encode_for_inpaint_batched(vae, video, masks, grow_mask_by=6, per_batch=8)
    """
    encoder = _as_encoder(vae)
    pixels = check_image(pixels)
    mask = check_float_tensor(mask, "mask")
    per_batch = check_int(per_batch, "per_batch", 1)
    if mask.dim() not in (2, 3, 4):
        raise ValueError(f"mask must be (B, h, w), (h, w) or (B, 1, h, w), got shape {tuple(mask.shape)}")
    image_batch, mask_batch = pixels.shape[0], 1 if mask.dim() == 2 else mask.shape[0]
    total = max(image_batch, mask_batch)
    if image_batch not in (1, total) or mask_batch not in (1, total):
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
    samples = stream(encoder.device, total, per_batch, sources, encode_slice, progress)
    return EncodedInpaint(torch.cat(samples, dim=0), torch.cat(noise_masks, dim=0))
