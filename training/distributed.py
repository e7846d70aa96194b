"""One or more training processes: threads, the device, and under torchrun the process group
(NCCL on GPUs, one per process by LOCAL_RANK; gloo on CPUs), and the agreements between processes."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from carousel.errors import UserError
from carousel.model.precision import resolve_device
from carousel.training.config import TrainConfig


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_process(config: TrainConfig) -> Distributed:
    """Threads from the machine, the device, and under torchrun the process group: NCCL when
    training on GPUs (one per process, by LOCAL_RANK), gloo on CPUs."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    cores = os.cpu_count() or 1
    threads = config.training.threads or max(1, cores // world_size)
    torch.set_num_threads(threads)
    try:
        device = resolve_device(config.training.device)
    except ValueError as error:
        raise UserError(f"training.device: {error}") from None
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
        torch.cuda.set_device(device)
        # TF32 tensor cores for float32 matrix products (cuDNN's LSTMs use them already): the fp32
        # recipe at several times the speed, with the rounding of bf16-era training.
        torch.backends.cuda.matmul.allow_tf32 = True
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr,
    )
    return Distributed(rank=rank, world_size=world_size, device=device)


def agree(flag: bool, dist_info: Distributed) -> bool:
    """All processes stop together: any process's stop becomes everyone's."""
    if dist_info.world_size == 1:
        return flag
    tensor = torch.tensor([1 if flag else 0], device=dist_info.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())
