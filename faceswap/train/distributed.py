"""Multi-process training under torchrun: process group set-up, which rank does what, agreeing on when to stop."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from faceswap.errors import UserError
from faceswap.utils import resolve_device


@dataclass
class DistInfo:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Only the main rank writes checkpoints, previews and logs."""
        return self.rank == 0


def setup(device_name: str = "auto") -> DistInfo:
    """Read torchrun's RANK/WORLD_SIZE/LOCAL_RANK; start NCCL on CUDA, gloo on CPU. A plain run is world 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(0, 1, 0, resolve_device(device_name))
    try:
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError):
        raise UserError("WORLD_SIZE is set but RANK is not; launch multi-process training with torchrun") from None
    device = resolve_device(device_name)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UserError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA devices; "
                            "use --nproc_per_node <= the number of GPUs")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")  # gloo has no MPS support: several CPU ranks
        backend = "gloo"
    if not dist.is_initialized():
        kwargs = {"device_id": device} if backend == "nccl" else {}
        dist.init_process_group(backend=backend, rank=rank, world_size=world, **kwargs)
    return DistInfo(rank, world, local_rank, device)


def sync_flags(flags: list[bool], values: torch.Tensor, info: DistInfo) -> tuple[list[bool], list[float]]:
    """One collective per step: stop flags (true if any rank raised one) and ``values`` (mean over ranks).

    All ranks must stop at the same step, or the next gradient all-reduce would wait forever. The values
    (the step's losses) also come back to the host here: this is the step's one device synchronisation.
    """
    t = torch.cat([torch.tensor([float(f) for f in flags], device=values.device), values.detach().float().reshape(-1)])
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    out = t.tolist()
    k = len(flags)
    return [f > 0 for f in out[:k]], [v / info.world for v in out[k:]]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def teardown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


__all__ = ["DistInfo", "setup", "sync_flags", "barrier", "teardown"]
