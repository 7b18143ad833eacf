"""Drop-in subclasses of the diffusers SD, SDXL and Flux inpaint pipelines that run the fused mask step.

They change nothing but where the preprocessing runs: the stock ``__call__`` runs as is (prompt
encoding, schedulers, callbacks, ``padding_mask_crop``); its ``image_processor`` and
``mask_processor`` do their PIL steps (crop, resize, conversion) on the CPU as before and the rest
on the execution device, from the uploaded bytes (``_BytesToDevice``); and ``prepare_mask_latents``
receives the VAE input from ``prepare_masked_image`` instead of from ``init_image * (mask < 0.5)``
on the host (Flux Fill: ``init_image * (1 - mask)``). The VAE encodes in the same place, with the
same generator, so a seeded run consumes its random draws in the stock order and gives the same
image.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import PIL.Image
import torch
from diffusers import (
    FluxFillPipeline,
    FluxInpaintPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionXLInpaintPipeline,
)

from ..check import check_int
from ._api import prepare_masked_image

__all__ = [
    "FusedFluxFillPipeline",
    "FusedFluxInpaintPipeline",
    "FusedStableDiffusionInpaintPipeline",
    "FusedStableDiffusionXLInpaintPipeline",
]


class _FusedMaskedImage:
    """Passed as ``masked_image_latents`` to the stock ``__call__``: "compute it in prepare_mask_latents".

    The SD, SDXL and Flux inpaint code hands ``masked_image_latents`` through to
    ``prepare_mask_latents`` untouched and skips its host-side ``init_image * (mask < 0.5)`` when it
    is not None.
    """

    def __repr__(self) -> str:
        return "<fused masked image>"


_FUSED = _FusedMaskedImage()


@dataclass
class _CallState:
    grow_mask_by: int
    mask_image: Any = None
    latents_args: dict[str, Any] = field(default_factory=dict)  # prepare_latents' arguments, image uploaded

    @property
    def init_image(self) -> Any:
        return self.latents_args.get("image")


def _bytes_to_unit_floats(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """``array.astype(float32) / 255`` computed on ``device`` after uploading ``array`` as it is (bytes).

    One kernel: the bytes are promoted to float32 inside the division. The divisor is a 0-d tensor
    filled on the device (no transfer): CUDA divides by a CPU scalar as a multiply by its
    reciprocal, which is not numpy's division for 126 of the 256 byte values.
    """
    pixels = torch.from_numpy(array).to(device, non_blocking=True)
    return torch.div(pixels, torch.full((), 255.0, dtype=torch.float32, device=pixels.device))


class _BytesToDevice:
    """One of a pipeline's ``VaeImageProcessor`` for the length of a call, sending PIL images as bytes.

    ``preprocess`` of PIL images runs the stock PIL steps on the CPU as the stock method does (crop,
    resize with the stock resampling, RGB / grayscale conversion, all in uint8), uploads the bytes
    (3 per pixel for RGB, 1 for a mask, against 6 of the stock fp16 masked image) and does the rest
    on the device with the processor's own methods: the division by 255 of ``pil_to_numpy``, the
    layout of ``numpy_to_pt`` (a ``(B, C, H, W)`` view of ``(B, H, W, C)``), ``normalize`` and
    ``binarize``. Same values and strides as the stock result, so the VAE sees the same tensor.
    Float numpy arrays and CPU tensors already at the processed size are uploaded as given and the
    stock method finishes on the device. Anything else (a resize of a numpy array or tensor, PIL
    images that do not read as 8-bit) goes to the stock method unchanged; every other attribute is
    the processor's.

    ``resize_on_device``: PIL images (in the default resize mode) and numpy arrays are uploaded
    before any resizing and the stock method resizes them as tensors on the device.
    """

    def __init__(self, processor: Any, device: torch.device, resize_on_device: bool = False) -> None:
        self._processor = processor
        self._device = device
        self._resize_on_device = resize_on_device

    def __getattr__(self, name: str) -> Any:
        return getattr(self._processor, name)

    def preprocess(self, image: Any, height=None, width=None, resize_mode: str = "default", crops_coords=None):
        processor, config = self._processor, self._processor.config
        stock = {"height": height, "width": width, "resize_mode": resize_mode, "crops_coords": crops_coords}
        if isinstance(image, (np.ndarray, torch.Tensor)):
            uploaded = self._upload_array(image, height, width)
            return processor.preprocess(image if uploaded is None else uploaded, **stock)
        images = image if isinstance(image, list) else [image]
        if not images or not all(isinstance(i, PIL.Image.Image) for i in images):
            return processor.preprocess(image, **stock)
        if crops_coords is not None:
            images = [i.crop(crops_coords) for i in images]
        # The stock tensor resize knows only the default mode: the others stay PIL's.
        resize_here = config.do_resize and (not self._resize_on_device or resize_mode != "default")
        if resize_here:
            height, width = processor.get_default_height_width(images[0], height, width)
            # At its own size the stock resize is PIL's copy (Image.resize returns self.copy()): skipped.
            images = [
                i
                if resize_mode == "default" and i.size == (width, height)
                else processor.resize(i, height, width, resize_mode=resize_mode)
                for i in images
            ]
        if config.do_convert_rgb:
            images = [processor.convert_to_rgb(i) for i in images]
        elif config.do_convert_grayscale:
            images = [processor.convert_to_grayscale(i) for i in images]
        arrays = [np.array(i) for i in images]
        if any(a.dtype not in (np.uint8, np.bool_) for a in arrays):
            return processor.preprocess(image, **stock)  # 16-bit or float pictures: the stock float path
        batch = arrays[0][None] if len(arrays) == 1 else np.stack(arrays, axis=0)
        pixels = _bytes_to_unit_floats(batch, self._device)
        if pixels.dim() == 3:
            pixels = pixels[..., None]
        pixels = pixels.permute(0, 3, 1, 2)
        if config.do_resize and not resize_here:  # opted in: the stock tensor path resizes on the device
            return processor.preprocess(pixels, height=height, width=width)
        if config.do_normalize:  # values in [0, 1]: the stock check for [-1, 1] input does not apply
            pixels = processor.normalize(pixels)
        if config.do_binarize:
            pixels = processor.binarize(pixels)
        return pixels

    def _upload_array(self, image: Any, height: Optional[int], width: Optional[int]) -> Optional[torch.Tensor]:
        """A float numpy array or CPU tensor on the device, laid out as the stock code would lay it out.

        The stock tensor path then finishes on the device what it would have done on the CPU: at
        the processed size its resize is a copy, and normalising and binarising are exact
        elementwise. None, for the stock path on the CPU, where a resize is needed (unless
        ``resize_on_device``) or the tensor path would differ from the numpy one (it returns an
        input with as many channels as the latents untouched).
        """
        config = self._processor.config
        if isinstance(image, torch.Tensor):
            if image.device == self._device or image.dim() != 4 or not image.is_floating_point():
                return None
            view = image
        else:
            if image.dtype not in (np.float32, np.float64):
                return None
            # The stock numpy steps: grayscale expansion, stacking, numpy_to_pt's (B, C, H, W) view.
            if config.do_convert_grayscale and image.ndim == 3:
                image = image[None] if image.shape[-1] == 1 else image[..., None]
            if image.ndim == 2:
                image = image[None, :, :, None]
            elif image.ndim == 3:
                image = image[None]
            if image.ndim != 4:
                return None
            view = torch.from_numpy(image).permute(0, 3, 1, 2)
        if view.shape[1] == config.vae_latent_channels:
            return None
        if not self._resize_on_device:
            if tuple(self._processor.get_default_height_width(view, height, width)) != tuple(view.shape[-2:]):
                return None
        return view.to(self._device)


class _FusedInpaintMixin:
    """``__call__`` / ``prepare_latents`` / ``prepare_mask_latents`` around the stock pipeline's."""

    _fused_state: Optional[_CallState] = None

    def __call__(self, *args: Any, grow_mask_by: int = 0, resize_on_device: bool = False, **kwargs: Any):
        """The stock ``__call__`` with the fused mask step; the same arguments, plus two.

        PIL images and masks are cropped, resized and converted by the stock processors' PIL steps
        on the CPU and go to the execution device as bytes; scaling, normalising, binarising and
        masking happen there (see ``_BytesToDevice``), with the stock results.

        ``grow_mask_by``: ``g >= 2`` grows the binarised mask by a ``g x g`` box (ComfyUI's
        ``grow_mask_by``: asymmetric for even ``g``) before it masks the image and becomes the
        latent mask; as passing the grown mask to the stock pipeline. 0 (default) and 1: no growth.

        ``resize_on_device``: upload ``image`` and ``mask_image`` (PIL or numpy) before any
        resizing and let the stock processors resize them as tensors on the device (nearest), not
        as PIL images (Lanczos): faster for large pictures, different from stock when a resize is
        needed (the same otherwise). The ``fill`` / ``crop`` resize modes (``padding_mask_crop``
        uses ``fill``) exist for PIL only and stay on the CPU.

        Raises:
            TypeError: ``grow_mask_by`` is not an int.
            ValueError: ``grow_mask_by < 0``, or growth asked for together with
                ``masked_image_latents`` or an image given as latents.
        """
        if "preprocess_on_device" in kwargs:  # the stock __call__ would swallow it in **kwargs, silently
            raise TypeError("preprocess_on_device is now resize_on_device (PIL inputs go up as bytes anyway)")
        return self._fused_call(args, kwargs, grow_mask_by, resize_on_device)

    def _fused_call(self, args: tuple, kwargs: dict[str, Any], grow_mask_by: int, resize_on_device: bool):
        call = super().__call__
        bound = inspect.signature(call).bind(*args, **kwargs)
        grow = check_int(grow_mask_by, "grow_mask_by", 0)
        if bound.arguments.get("masked_image_latents") is None:
            bound.arguments["masked_image_latents"] = self._fused_marker(bound.arguments)
        elif grow > 1:
            raise ValueError("grow_mask_by cannot grow the mask of a masked_image_latents computed elsewhere")
        device = self._execution_device
        self._fused_state = _CallState(grow, bound.arguments.get("mask_image"))
        processors = {name: getattr(self, name) for name in ("image_processor", "mask_processor")}
        try:
            for name, processor in processors.items():
                setattr(self, name, _BytesToDevice(processor, device, resize_on_device))
            return call(*bound.args, **bound.kwargs)
        finally:
            for name, processor in processors.items():
                setattr(self, name, processor)
            self._fused_state = None

    def prepare_latents(self, *args: Any, **kwargs: Any):
        state = self._fused_state
        if state is None:
            return super().prepare_latents(*args, **kwargs)
        bound = inspect.signature(super().prepare_latents).bind(*args, **kwargs)
        image = bound.arguments.get("image")
        if isinstance(image, torch.Tensor):
            # One upload of the full-precision image serves the VAE (as the stock .to(device, dtype)
            # would: same values) and the fused mask step.
            bound.arguments["image"] = image.to(bound.arguments["device"])
        state.latents_args = dict(bound.arguments)
        return super().prepare_latents(*bound.args, **bound.kwargs)

    def _fused_marker(self, call_arguments: dict[str, Any]) -> Any:
        """What ``__call__`` passes as ``masked_image_latents`` when the user gave none."""
        return _FUSED

    def _stock_masked_image(self, init_image: torch.Tensor, mask: torch.Tensor) -> Optional[torch.Tensor]:
        # The image may be on the device already and the mask not (a numpy mask that needed resizing).
        return init_image * (mask.to(init_image.device) < 0.5)

    def _latent_size(self, height: int, width: int) -> tuple[int, int]:
        """The latent mask's size in ``prepare_mask_latents`` for a ``height x width`` image."""
        return height // self.vae_scale_factor, width // self.vae_scale_factor

    def _fusable_vae(self) -> bool:
        # The stock code takes a 4-channel "masked image" for latents; 3-channel pixels never are.
        return self.vae.config.latent_channels == 4

    def prepare_mask_latents(self, *args: Any, **kwargs: Any):
        stock = super().prepare_mask_latents
        bound = inspect.signature(stock).bind(*args, **kwargs)
        if not isinstance(bound.arguments["masked_image"], _FusedMaskedImage):
            return stock(*args, **kwargs)
        state = self._fused_state
        init_image, mask = state.init_image, bound.arguments["mask"]
        fusable = (
            isinstance(init_image, torch.Tensor)
            and init_image.dim() == 4
            and init_image.shape[1] == 3
            and mask.shape[-2:] == init_image.shape[-2:]
            and self._latent_size(*mask.shape[-2:]) == tuple(s // self.vae_scale_factor for s in mask.shape[-2:])
            and self._fusable_vae()
        )
        if not fusable:
            if state.grow_mask_by > 1:
                raise ValueError("grow_mask_by needs the image as pixels (B, 3, H, W), not as latents")
            bound.arguments["masked_image"] = self._stock_masked_image(init_image, mask)
            return stock(*bound.args, **bound.kwargs)
        fused = prepare_masked_image(
            init_image.to(bound.arguments["device"]),
            mask,
            vae_scale_factor=self.vae_scale_factor,
            dtype=bound.arguments["dtype"],
            grow_mask_by=state.grow_mask_by,
        )
        # The stock code resizes the mask (an identity now), encodes the masked image with the same
        # generator at the same point, and repeats both for the batch (and for CFG).
        bound.arguments["mask"] = fused.mask
        bound.arguments["masked_image"] = fused.masked_image
        return stock(*bound.args, **bound.kwargs)


class FusedStableDiffusionInpaintPipeline(_FusedInpaintMixin, StableDiffusionInpaintPipeline):
    """``StableDiffusionInpaintPipeline`` whose mask step runs fused on the execution device.

    Build it like the stock one (``from_pretrained``, ``from_single_file``) or from a loaded
    pipeline without copying weights: ``FusedStableDiffusionInpaintPipeline.from_pipe(pipe)``.
    ``__call__`` takes the stock arguments plus ``grow_mask_by`` and ``resize_on_device``
    (see ``_FusedInpaintMixin.__call__``); with neither, images equal the stock pipeline's for the
    same seed: the VAE gets the same input tensors and the generator is drawn in the same order.

    Example:
        >>> pipe = FusedStableDiffusionInpaintPipeline.from_pipe(stock_pipe)
        >>> image = pipe(prompt, image=init, mask_image=mask, generator=torch.Generator().manual_seed(0)).images[0]
    """


class FusedStableDiffusionXLInpaintPipeline(_FusedInpaintMixin, StableDiffusionXLInpaintPipeline):
    """``StableDiffusionXLInpaintPipeline`` whose mask step runs fused on the execution device.

    As :class:`FusedStableDiffusionInpaintPipeline`. An image given as latents keeps the stock
    behaviour (no masked image).
    """

    def _stock_masked_image(self, init_image: torch.Tensor, mask: torch.Tensor) -> Optional[torch.Tensor]:
        return None if init_image.shape[1] == 4 else init_image * (mask.to(init_image.device) < 0.5)


class FusedFluxInpaintPipeline(_FusedInpaintMixin, FluxInpaintPipeline):
    """``FluxInpaintPipeline`` whose mask step runs fused on the execution device.

    As :class:`FusedStableDiffusionInpaintPipeline`: build it like the stock one or with
    ``FusedFluxInpaintPipeline.from_pipe(pipe)``; ``__call__`` takes the stock arguments plus
    ``grow_mask_by`` and ``resize_on_device``. The latent mask is the stock one,
    ``2 * (size // (2 * f))`` per side (the image processor makes the size a multiple of ``2 * f``).
    """

    def _latent_size(self, height: int, width: int) -> tuple[int, int]:
        factor = 2 * self.vae_scale_factor
        return 2 * (height // factor), 2 * (width // factor)

    def _fusable_vae(self) -> bool:
        # The stock code takes a 16-channel "masked image" for latents; 3-channel pixels never are.
        return True


class _FillLatents(_FusedMaskedImage):
    """Passed as ``masked_image_latents`` to ``FluxFillPipeline.__call__``, which does not compute them
    when given and calls ``masked_image_latents.to(device)`` where it would have: that call runs
    the fused step there, after ``prepare_latents``, so the generator is drawn in the stock order.
    """

    def __init__(self, pipe: FusedFluxFillPipeline) -> None:
        self._pipe = pipe

    def to(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self._pipe._fused_fill_latents()

    def __repr__(self) -> str:
        return "<fused Flux Fill masked image latents>"


class FusedFluxFillPipeline(_FusedInpaintMixin, FluxFillPipeline):
    """``FluxFillPipeline`` whose mask step runs fused on the execution device.

    The stock pipeline forms ``init_image * (1 - mask)`` on the host and hands the full-size
    binarised mask to ``prepare_mask_latents``, which folds it into ``f * f`` channels; here one
    kernel writes both on the device (``formula="image * (1 - mask)"``, ``vae_scale_factor=1``) and
    the stock ``prepare_mask_latents`` encodes, packs and concatenates them at the same point.
    Same extra arguments as :class:`FusedStableDiffusionInpaintPipeline`; ``grow_mask_by`` grows the
    mask that is folded into the latents too.
    """

    def _fused_marker(self, call_arguments: dict[str, Any]) -> Any:
        # Without an image the stock code has nothing to mask (and says so).
        return _FillLatents(self) if call_arguments.get("image") is not None else None

    def check_inputs(self, *args: Any, **kwargs: Any):
        stock = super().check_inputs
        bound = inspect.signature(stock).bind(*args, **kwargs)
        if isinstance(bound.arguments.get("masked_image_latents"), _FillLatents):
            bound.arguments["masked_image_latents"] = None
        return stock(*bound.args, **bound.kwargs)

    def _fused_fill_latents(self) -> torch.Tensor:
        """Step 6 of the stock ``__call__`` ("Prepare mask and masked image latents"), fused."""
        state = self._fused_state
        args, init_image = state.latents_args, state.init_image
        device, dtype, generator = args["device"], args["dtype"], args["generator"]
        mask = self.mask_processor.preprocess(state.mask_image, height=args["height"], width=args["width"])
        fusable = (
            isinstance(init_image, torch.Tensor)
            and init_image.dim() == 4
            and init_image.shape[1] == 3
            and mask.shape[-2:] == init_image.shape[-2:]
        )
        if fusable:
            fused = prepare_masked_image(
                init_image.to(device),
                mask,
                vae_scale_factor=1,
                dtype=dtype,
                grow_mask_by=state.grow_mask_by,
                formula="image * (1 - mask)",
            )
            mask, masked_image = fused.mask, fused.masked_image
        elif state.grow_mask_by > 1:
            raise ValueError("grow_mask_by needs the image as pixels (B, 3, H, W), not as latents")
        else:
            masked_image = (init_image * (1 - mask.to(init_image.device))).to(device=device, dtype=dtype)
        height, width = init_image.shape[-2:]
        # prepare_latents got batch_size * num_images_per_prompt; prepare_mask_latents uses only the product.
        mask, masked_image_latents = self.prepare_mask_latents(
            mask,
            masked_image,
            args["batch_size"],
            args["num_channels_latents"],
            1,
            height,
            width,
            dtype,
            device,
            generator,
        )
        return torch.cat((masked_image_latents, mask), dim=-1)
