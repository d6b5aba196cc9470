"""Work split across processes with torch.distributed, as launched by ``torchrun``.

The library never starts a process group itself: the caller does (``start_from_environment``, used
by the command line), and training, embedding and scoring use one when it is there. Every helper
below is a no-op in a single process, so the same code runs with and without ``torchrun``."""

from __future__ import annotations

import os
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and all(v in os.environ for v in LAUNCHER_VARIABLES)


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main_process() -> bool:
    return rank() == 0


def start_from_environment(device: str = "auto", timeout_minutes: float = 30.0) -> bool:
    """Join the process group ``torchrun`` describes in the environment: NCCL when this process
    computes on a GPU, gloo otherwise. Returns whether there is more than one process."""
    if not launched_by_torchrun() or active():
        return active()
    use_gpu = device in ("auto", "cuda") and torch.cuda.is_available()
    if use_gpu:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]) % torch.cuda.device_count())
    dist.init_process_group("nccl" if use_gpu else "gloo", timeout=timedelta(minutes=timeout_minutes))
    return True


def stop(wait: bool = True) -> None:
    """Leave the process group. ``wait`` (the normal end): first wait until every process gets
    here, since a gloo process destroying its group while its peer still works aborted the peer
    ("terminate called without an active exception") in 3 of 12 runs of the DDP test, and in none
    of 20 with the wait. Not after an error, when a peer may never arrive."""
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def local_device(device: torch.device) -> torch.device:
    """Under torchrun every process takes its own GPU (the one ``start_from_environment`` set)."""
    if active() and device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def barrier() -> None:
    if active():
        dist.barrier()


def from_main(value):
    """The first process's ``value`` (any JSON-like object) on every process, whatever the others
    pass: a choice made from measurements, which differ between processes, is made once."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sum_across(values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum of ``values`` over all processes (float64 on the wire for exact totals)."""
    if not active():
        return values
    device = values.device if dist.get_backend() == "nccl" else torch.device("cpu")
    total = values.detach().to(device, torch.float64).clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total.to(values.device, values.dtype)


def my_part_of_batch(batch: slice) -> slice:
    """This process's share of one global batch (a slice of the epoch's order): every
    world_size-th sample, so that the ranks together see exactly the batch a single process would,
    and DDP's gradient average equals the single-process gradient when the shares are equal."""
    return slice(batch.start + rank(), batch.stop, world_size()) if active() else batch


def _share_bounds(n: int) -> np.ndarray:
    """Where each process's contiguous block of ``n`` rows starts, then ``n``; blocks differ by at most one."""
    return np.linspace(0, n, world_size() + 1).round().astype(int)


def contiguous_share(n: int) -> tuple[int, int]:
    """[start, stop) of this process's contiguous block of ``n`` rows."""
    bounds = _share_bounds(n)
    return int(bounds[rank()]), int(bounds[rank() + 1])


def _batch_bounds(n: int, batch_size: int) -> np.ndarray:
    n_batches = -(-n // batch_size)
    return np.minimum(np.linspace(0, n_batches, world_size() + 1).round().astype(int) * batch_size, n)


def batch_share(n: int, batch_size: int) -> tuple[int, int]:
    """[start, stop) of this process's contiguous block of whole batches of ``n`` rows: the batches
    are those a single process would make, so per-batch random draws can be the same."""
    bounds = _batch_bounds(n, batch_size)
    return int(bounds[rank()]), int(bounds[rank() + 1])


def batch_generator(seed: int, first_row: int) -> torch.Generator:
    """A CPU generator for the batch that starts at row ``first_row``, the same in any process."""
    state = np.random.SeedSequence([seed, first_row]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


def gather_rows(block: torch.Tensor, n: int, batch_size: int | None = None) -> torch.Tensor:
    """Concatenate every process's block of rows (its ``contiguous_share``, or its ``batch_share``
    when ``batch_size`` is given), in rank order, on every process."""
    if not active():
        return block
    sizes = np.diff(_share_bounds(n) if batch_size is None else _batch_bounds(n, batch_size)).tolist()
    wire = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    padded = torch.zeros((max(sizes), *block.shape[1:]), dtype=block.dtype, device=wire)
    padded[: len(block)] = block.to(wire)
    pieces = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(pieces, padded)
    return torch.cat([piece[:size] for piece, size in zip(pieces, sizes)]).to(block.device)


def gather_batches(blocks: list, n: int, batch_size: int, empty: torch.Tensor) -> torch.Tensor:
    """This process's per-batch results of its ``batch_share`` concatenated (``empty``, with the row
    shape, when it has none), then every process's, in order, on every process."""
    return gather_rows(torch.cat(blocks) if blocks else empty, n, batch_size)
