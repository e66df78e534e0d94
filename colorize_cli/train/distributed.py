"""Multi-process training through torchrun: process group, DDP wrapping and the few collectives train needs.

Without torchrun (WORLD_SIZE unset or 1) every function here is a cheap no-op for a single process.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass
class Processes:
    """This process's place among the training processes, and the device it trains on."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes files and validates."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def wrap(self, module: nn.Module) -> nn.Module:
        """DistributedDataParallel around `module` when there are several processes."""
        if not self.distributed:
            return module
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=device_ids)

    def any(self, flag: bool) -> bool:
        """True on every process when `flag` is true on any: stops all ranks at the same step."""
        if not self.distributed:
            return flag
        tensor = torch.tensor([float(flag)], device=self._collective_device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return bool(tensor.item())

    def gather(self, obj) -> list:
        """`obj` of every rank, in rank order (pickled by torch.distributed between our own processes)."""
        if not self.distributed:
            return [obj]
        gathered = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    @property
    def _collective_device(self):
        # NCCL moves CUDA tensors only; gloo works on the CPU.
        return self.device if self.device.type == "cuda" else torch.device("cpu")


def start(device: torch.device) -> Processes:
    """Join the torchrun process group when WORLD_SIZE > 1 (NCCL on CUDA, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Processes(device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Processes(device, dist.get_rank(), world_size)


def stop() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_initialized():
        dist.destroy_process_group()
