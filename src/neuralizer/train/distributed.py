"""DistributedDataParallel under ``torchrun``: gloo on CPU, NCCL on CUDA. Nothing home-made."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup() -> Context:
    """Join the process group when started by torchrun (WORLD_SIZE > 1), else a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return Context(rank, world_size, torch.device("cuda", local))
    return Context(rank, world_size, torch.device("cpu"))


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    if dist.is_initialized():
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def max_parameter_spread(model: torch.nn.Module) -> float:
    """Largest difference of any parameter between ranks (0.0 when replicas are in sync)."""
    flat = torch.cat([p.detach().flatten().float() for p in model.parameters()])
    if not dist.is_initialized():
        return 0.0
    high, low = flat.clone(), flat.clone()
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    return float((high - low).max())


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
