"""Running one evaluation over several processes with ``torch.distributed`` (``torchrun``).

``torchrun --nproc-per-node N [--nnodes M ...] -m comclip eval DATASET --data PATH --out OUT``
starts N×M processes; each sees ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``. Every process loads
the data, works out the same list of examples still to score, and takes its share
(``todo[rank::world_size]``), one GPU each (``cuda:LOCAL_RANK``; gloo on CPU). Each writes its
results to ``OUT/shards/rank-R.jsonl``; when all are done, rank 0 merges the shards into ONE
``OUT/examples.jsonl`` (in the examples' order) and writes the report from it — the same
counts, metrics and per-example scores as a single-process run — with ``"world_size"``.

Resume: the shards stay on disk until merged, so after a crash of any process, rerunning the
same command (with any number of processes) reads every shard and scores only what is missing.
``OUT`` must be one folder every process sees (a shared file system across nodes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch

#: how long a process waits at a barrier for the slowest one (COMCLIP_DIST_TIMEOUT_MIN, minutes)
DEFAULT_TIMEOUT_MIN = 12 * 60


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()

    def share(self, items: list) -> list:
        """This process's share of ``items`` (the same list in every process)."""
        return items[self.rank::self.size]

    def owns(self, number: int) -> bool:
        return number % self.size == self.rank


SINGLE = World()


def launched() -> bool:
    """Was this process started by ``torchrun`` (or another launcher) with more than one process?"""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start(device: str = "auto") -> tuple[World, str]:
    """Join the process group started by ``torchrun``; ``(world, device for this process)``.

    One GPU per process (``cuda:LOCAL_RANK``) with NCCL when CUDA is available and the device is
    ``auto``/``cuda``; otherwise gloo on CPU. A single process gets :data:`SINGLE` unchanged.
    """
    if not launched():
        return SINGLE, device
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and str(device) in ("auto", "cuda")
    if use_cuda:
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    elif str(device) == "auto":
        device = "cpu"
    if not torch.distributed.is_initialized():
        minutes = int(os.environ.get("COMCLIP_DIST_TIMEOUT_MIN", DEFAULT_TIMEOUT_MIN))
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo", timeout=timedelta(minutes=minutes))
    return World(rank, size, local), device


def stop(world: World) -> None:
    if world.distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
