"""Data-parallel training of a small seeded model across a pool's members (torch.distributed).

Every member builds the same model from the seed, takes its equal shard of each global batch,
and averages gradients with ``all_reduce`` over the gloo backend, so the run follows the
single-process run on the same global batch. ``train`` joins any process group named by an
``init_method`` (``tcp://host:port``), so the same code runs across machines; ``train_local``
starts the members as processes on this machine over loopback.
"""

import multiprocessing as mp
import os
import queue
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from offchain.workers.seeded import seeded_init
from offchain.workers.workload_errors import InvalidInput


@dataclass(frozen=True)
class TrainConfig:
    """A small classification task and its training schedule."""

    seed: int = 0
    samples: int = 512
    features: int = 16
    hidden: int = 32
    classes: int = 4
    global_batch: int = 64
    steps: int = 12
    lr: float = 0.2


def make_dataset(cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Return seeded features and the labels a hidden linear map assigns them."""
    generator = torch.Generator().manual_seed(cfg.seed)
    x = torch.randn(cfg.samples, cfg.features, generator=generator)
    teacher = torch.randn(cfg.features, cfg.classes, generator=generator)
    return x, (x @ teacher).argmax(dim=1)


def build_model(cfg: TrainConfig) -> nn.Module:
    """Return the seeded two-layer network that every member starts from."""
    model = nn.Sequential(
        nn.Linear(cfg.features, cfg.hidden), nn.Tanh(), nn.Linear(cfg.hidden, cfg.classes)
    )
    return seeded_init(model, cfg.seed + 1).train()


def batch_indices(cfg: TrainConfig, step: int) -> torch.Tensor:
    """Return the sample indices of global batch ``step``."""
    generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    return torch.randperm(cfg.samples, generator=generator)[: cfg.global_batch]


def train(
    rank: int,
    world_size: int,
    cfg: TrainConfig,
    init_method: str | None = None,
    on_done: Callable[[list[float]], None] | None = None,
) -> list[float]:
    """Return the global loss before each step, training as member ``rank`` of ``world_size``.

    ``on_done(losses)`` runs before the process group is torn down: where the member that
    hosts the group's store (rank 0) waits for the others to leave first.
    """
    if cfg.global_batch % world_size:
        raise InvalidInput("the global batch must split evenly across the members")
    distributed = init_method is not None
    if distributed:
        dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world_size)
    try:
        x, y = make_dataset(cfg)
        model = build_model(cfg)
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr)
        per = cfg.global_batch // world_size
        losses = []
        for step in range(cfg.steps):
            shard = batch_indices(cfg, step)[rank * per : (rank + 1) * per]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x[shard]), y[shard])
            loss.backward()
            total = loss.detach().clone()
            if distributed:
                for param in model.parameters():
                    dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)
                    param.grad /= world_size
                dist.all_reduce(total, op=dist.ReduceOp.SUM)
                total /= world_size
            optimizer.step()
            losses.append(float(total))
        if on_done is not None:
            on_done(losses)
        return losses
    finally:
        if distributed:
            dist.destroy_process_group()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _member_main(
    rank: int, world_size: int, cfg: TrainConfig, init_method: str, out, others_gone, wait_s: float
) -> None:
    """Run one local member; rank 0 reports its losses and leaves last.

    Rank 0 hosts the group's TCP store. A member still tearing down its process group when
    the store goes away aborts in gloo's C++ (``terminate called without an active
    exception``, SIGABRT), so rank 0 keeps the store up until the others have exited.
    """
    torch.set_num_threads(1)

    def done(losses: list[float]) -> None:
        if rank == 0:
            out.put(losses)
            others_gone.wait(wait_s)

    train(rank, world_size, cfg, init_method, on_done=done)


def train_local(world_size: int, cfg: TrainConfig, timeout_s: float = 120.0) -> list[float]:
    """Return rank 0's losses from ``world_size`` member processes on loopback."""
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    others_gone = ctx.Event()
    init_method = f"tcp://127.0.0.1:{free_port()}"
    procs = [
        ctx.Process(
            target=_member_main,
            args=(rank, world_size, cfg, init_method, out, others_gone, timeout_s),
        )
        for rank in range(world_size)
    ]
    for proc in procs:
        proc.start()
    try:
        losses = _wait_for_losses(out, procs, timeout_s)
    finally:
        # The others first, then rank 0, whose store they use until they have left.
        for proc in procs[1:]:
            proc.join(timeout=timeout_s)
        others_gone.set()
        for proc in procs:
            proc.join(timeout=timeout_s)
            if proc.is_alive():
                proc.kill()
    failed = [proc.exitcode for proc in procs if proc.exitcode != 0]
    if failed:
        raise RuntimeError(f"pool training members exited with {failed}")
    return losses


def _wait_for_losses(out, procs: list, timeout_s: float) -> list[float]:
    """Return rank 0's losses, or raise as soon as a member dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            return out.get(timeout=0.2)
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"pool training members exited with {dead}") from None
    raise TimeoutError(f"pool training took longer than {timeout_s} s")
