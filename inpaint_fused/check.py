"""Input checks shared by every public entry point: each error names the argument it is about.

Public to the package (the API, the VAE layer, the adapters and the new ops all call these), so
one rule is written once and says the same thing everywhere.
"""

from __future__ import annotations

from typing import Optional

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
VAE_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def check_int(value: object, name: str, minimum: Optional[int] = None, maximum: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def check_image(pixels: object, name: str = "pixels", min_channels: int = 3) -> torch.Tensor:
    """A ComfyUI IMAGE ``(B, H, W, C)``, float, with ``C >= min_channels`` and something in it.

    Channels-first input is recognised and named with its fix (``movedim(1, -1)``).
    """
    pixels = no_grad_input(check_float_tensor(pixels, name), name)
    if pixels.dim() != 4:
        raise ValueError(f"{name} must be an IMAGE (B, H, W, C), got shape {tuple(pixels.shape)}")
    batch, height, width, channels = pixels.shape
    if channels > 4 and height in (3, 4):
        raise ValueError(
            f"{name} of shape {tuple(pixels.shape)} looks channels-first (B, C, H, W); a ComfyUI IMAGE is "
            f"(B, H, W, C): pass {name}.movedim(1, -1)"
        )
    if channels < min_channels:
        raise ValueError(f"{name} must have at least {min_channels} channels (B, H, W, C), got C={channels}")
    if batch == 0:
        raise ValueError(f"{name} must hold at least one frame, got batch 0")
    if pixels.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(pixels.shape)}")
    return pixels


def check_float_tensor(tensor: object, name: str) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a float16/bfloat16/float32/float64 tensor, got {tensor.dtype}")
    return tensor


def no_grad_input(tensor: torch.Tensor, name: str) -> torch.Tensor:
    """The one autograd policy of every op: the preprocessing is not differentiable.

    Rounding a mask has no useful gradient, so no path records one. Under grad mode a tensor that
    requires grad is refused (a silently detached result would be a wrong gradient); under
    ``torch.no_grad()``/``torch.inference_mode()`` (how pipelines and ComfyUI run) it is read as data,
    ``nn.Parameter`` included.
    """
    if tensor.requires_grad:
        if torch.is_grad_enabled():
            raise ValueError(
                f"{name} requires grad, but inpaint-fused's preprocessing is not differentiable (it rounds the "
                f"mask): pass {name}.detach(), or call it under torch.no_grad()"
            )
        tensor = tensor.detach()
    return tensor


def move_to(tensor: torch.Tensor, device: torch.device, name: str, to_name: str) -> torch.Tensor:
    """``tensor`` on ``device`` (non-blocking), or an error naming ``name`` when it cannot get there."""
    if tensor.device == device:
        return tensor
    if tensor.device.type == "meta" or device.type == "meta":
        raise ValueError(
            f"{name} is on {tensor.device} and {to_name} on {device}: a meta tensor holds no data, so both must "
            "be meta (shape tracing) or neither"
        )
    return tensor.to(device, non_blocking=True)


def mask_batch(mask: object, device: Optional[torch.device] = None, to_name: str = "pixels") -> torch.Tensor:
    """A MASK ``(B, h, w)``, ``(h, w)`` or ``(B, 1, h, w)`` as ``(B, h, w)``, on ``device`` (that of ``to_name``)."""
    mask = no_grad_input(check_float_tensor(mask, "mask"), "mask")
    if mask.dim() == 2:
        mask = mask.unsqueeze(0)
    elif mask.dim() == 4:
        if mask.shape[1] != 1:
            raise ValueError(f"mask of rank 4 must be (B, 1, h, w), got shape {tuple(mask.shape)}")
        mask = mask.squeeze(1)
    elif mask.dim() != 3:
        raise ValueError(f"mask must be (B, h, w), (h, w) or (B, 1, h, w), got shape {tuple(mask.shape)}")
    if mask.numel() == 0:
        raise ValueError(f"mask must not be empty, got shape {tuple(mask.shape)}")
    return mask if device is None else move_to(mask, device, "mask", to_name)


def check_number(value: object, name: str, minimum: float, maximum: float) -> float:
    """A real number (int or float, not bool) in ``[minimum, maximum]``, as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must lie in [{minimum}, {maximum}], got {value}")
    return float(value)


def mask_planes(mask: object, name: str = "mask") -> torch.Tensor:
    """A MASK of rank >= 2 as ``(N, h, w)`` (leading dims flattened, as ComfyUI's mask nodes reshape it)."""
    mask = no_grad_input(check_float_tensor(mask, name), name)
    if mask.dim() < 2:
        raise ValueError(f"{name} must be (h, w), (B, h, w) or (B, 1, h, w), got shape {tuple(mask.shape)}")
    if mask.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(mask.shape)}")
    return mask if mask.dim() == 3 else mask.reshape((-1, mask.shape[-2], mask.shape[-1]))


def values_in_unit_range(tensor: torch.Tensor, name: str) -> torch.Tensor:
    """Every value in [0, 1] (NaN fails); one reduction and, on a GPU, one synchronisation."""
    low, high = (float(v) for v in torch.aminmax(tensor))  # NaN propagates into both
    if not (low >= 0 and high <= 1):
        raise ValueError(f"{name} values must lie in [0, 1] (no NaN), got min {low} and max {high}")
    return tensor
