"""One process or one per GPU under torchrun: rank, world, device, process group, reductions."""

from __future__ import annotations

import os

import torch

from .errors import PrecomputeError


class Distributed:
    """RANK/WORLD_SIZE/LOCAL_RANK from torchrun (one process otherwise); nccl on CUDA, gloo on the CPU."""

    def __init__(self, device_name: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device_name == "auto":
            device_name = "cuda" if torch.cuda.is_available() else "cpu"
        if device_name == "cuda":
            if not torch.cuda.is_available():
                raise PrecomputeError(f"--device cuda: no CUDA GPU is available to this torch ({torch.__version__})")
            self.device = torch.device("cuda", self.local_rank % torch.cuda.device_count())
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device(device_name)
        self.owns_group = False
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            self.owns_group = True

    def barrier(self) -> None:
        if self.world > 1:
            if self.device.type == "cuda":
                torch.distributed.barrier(device_ids=[self.device.index])
            else:
                torch.distributed.barrier()

    def total(self, values: list[float], op=None) -> list[float]:
        if self.world == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(tensor, op=op or torch.distributed.ReduceOp.SUM)
        return tensor.tolist()

    def close(self) -> None:
        if self.owns_group:
            torch.distributed.destroy_process_group()
