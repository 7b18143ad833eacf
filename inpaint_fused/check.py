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


def check_float_tensor(tensor: object, name: str) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a float16/bfloat16/float32/float64 tensor, got {tensor.dtype}")
    return tensor


def mask_batch(mask: object, device: Optional[torch.device] = None) -> torch.Tensor:
    """A MASK ``(B, h, w)``, ``(h, w)`` or ``(B, 1, h, w)`` as ``(B, h, w)``, on ``device``."""
    mask = check_float_tensor(mask, "mask")
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
    if device is not None and mask.device != device:
        mask = mask.to(device, non_blocking=True)
    return mask
