"""Training and evaluation loops shared by every project.

``fit`` trains a model for some epochs and returns a per-epoch history. It shows progress bars,
writes atomic checkpoints (safetensors + JSON) after each epoch, resumes exactly where an interrupted
run stopped, and runs unchanged under ``torchrun`` with DistributedDataParallel.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from vclib.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from vclib.checks import check_positive_int
from vclib.session import pick_device, progress_enabled

MetricFn = Callable[[torch.Tensor, torch.Tensor], float]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def progress(iterable: Iterable, enabled: bool | None = None, **kwargs: Any) -> Iterable:
    """A tqdm progress bar (a widget in notebooks), off in headless runs (``VCLIB_PROGRESS=0``)."""
    from tqdm.auto import tqdm

    show = progress_enabled() if enabled is None else enabled
    return tqdm(iterable, disable=not show, leave=False, **kwargs)


def to_device(value: Any, device: torch.device) -> Any:
    """Move a tensor, or tensors nested in tuples/lists/dicts, to ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, (tuple, list)):
        return type(value)(to_device(v, device) for v in value)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    return value


def forward(model: nn.Module, inputs: Any) -> torch.Tensor:
    """Call ``model(*inputs)`` when ``inputs`` is a tuple or list, else ``model(inputs)``."""
    return model(*inputs) if isinstance(inputs, (tuple, list)) else model(inputs)


def _split_batch(batch: Any) -> tuple[Any, torch.Tensor]:
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise ValueError(f"a batch must be (inputs, targets, *rest), got {type(batch).__name__}")
    return batch[0], batch[1]


# ----------------------------------------------------------------------------------------------
# Distributed helpers: a no-op in a plain process, DDP under torchrun.


def distributed_setup() -> tuple[int, int]:
    """Initialise the process group under ``torchrun`` (gloo on CPU, nccl on GPU); return (rank, world)."""
    if dist.is_available() and not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _distributed_loader(loader: DataLoader, rank: int, world: int, seed: int) -> DataLoader:
    """The same loader, reading only this rank's share of the dataset."""
    sampler = DistributedSampler(loader.dataset, num_replicas=world, rank=rank,
                                 shuffle=isinstance(loader.sampler, RandomSampler), seed=seed)
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler, num_workers=loader.num_workers,
                      collate_fn=loader.collate_fn, drop_last=loader.drop_last, pin_memory=loader.pin_memory)


def _all_reduce_sum(values: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


# ----------------------------------------------------------------------------------------------


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule of ``model`` in eval mode, and restore each one's own mode afterwards.

    Dropout and batch-norm statistics must not change while the model is evaluated or attacked; restoring
    per submodule keeps mixed set-ups (a frozen, eval-mode backbone inside a training model) intact.
    """
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, device: torch.device | str | None = None,
            enabled: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Model outputs and targets over a whole loader, concatenated on the CPU.

    Returns:
        outputs ``(N, ...)`` and targets ``(N, ...)``.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    outputs, targets = [], []
    with eval_mode(model):
        for batch in progress(loader, enabled=enabled, desc="predict"):
            inputs, target = _split_batch(batch)
            outputs.append(forward(model, to_device(inputs, device)).float().cpu())
            targets.append(target.cpu())
    if not outputs:
        raise ValueError("loader must yield at least one batch")
    return torch.cat(outputs), torch.cat(targets)


def evaluate(model: nn.Module, loader: DataLoader, *, loss_fn: LossFn | None = F.cross_entropy,
             metrics: Mapping[str, MetricFn] | None = None, device: torch.device | str | None = None,
             enabled: bool | None = None) -> dict[str, float]:
    """Loss and metrics of ``model`` on a whole loader (metrics see all outputs at once)."""
    outputs, targets = predict(model, loader, device, enabled=enabled)
    results: dict[str, float] = {}
    if loss_fn is not None:
        results["loss"] = float(loss_fn(outputs, targets))
    for name, metric in (metrics or {}).items():
        results[name] = float(metric(outputs, targets))
    return results


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer | None = None,
    loss_fn: LossFn = F.cross_entropy,
    val_loader: DataLoader | None = None,
    metrics: Mapping[str, MetricFn] | None = None,
    scheduler: Any | None = None,
    scheduler_step: str = "epoch",
    device: torch.device | str | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress_bar: bool | None = None,
    desc: str = "train",
    seed: int = 0,
) -> list[dict[str, float]]:
    """Train ``model`` and return its history, one dict per epoch.

    Args:
        model: the module to train; moved to ``device``.
        train_loader: yields ``(inputs, targets, *rest)``; a tuple of inputs is unpacked into the model.
        epochs: total number of epochs (with ``resume``, the run continues up to this number).
        optimizer: defaults to ``Adam(lr=1e-3)`` over the model's parameters.
        loss_fn: ``loss_fn(outputs, targets) -> scalar``; cross-entropy by default.
        val_loader: evaluated after each epoch; its loss is ``val_loss``.
        metrics: name -> ``fn(outputs, targets)``, computed on the whole validation set as ``val_<name>``.
        scheduler: an LR scheduler, stepped once per epoch or, with ``scheduler_step="batch"``, per batch.
        device: defaults to cuda, then mps, then cpu (``cuda:LOCAL_RANK`` under torchrun).
        checkpoint_dir: write a checkpoint after every epoch here (rank 0 only).
        resume: continue from the latest checkpoint in ``checkpoint_dir`` if there is one.
        progress_bar: force progress bars on or off; default is on except in headless runs.
        desc: label of the progress bar.
        seed: seed of the distributed sampler's shuffling.

    Returns:
        History: dicts with ``epoch``, ``train_loss``, ``lr``, ``seconds`` and, with ``val_loader``,
        ``val_loss`` and ``val_<metric>``.
    """
    check_positive_int(epochs, "epochs")
    if scheduler_step not in ("epoch", "batch"):
        raise ValueError(f"scheduler_step must be 'epoch' or 'batch', got {scheduler_step!r}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir")
    rank, world = distributed_setup()
    if device is None:
        use_local_gpu = world > 1 and torch.cuda.is_available()
        device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}") if use_local_gpu else pick_device()
    device = torch.device(device)
    model.to(device)
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    history: list[dict[str, float]] = []
    start_epoch = 0
    if resume:
        state = load_checkpoint(checkpoint_dir, model, optimizer)
        if state is not None:
            start_epoch, history = state["epoch"], state["history"]
            if scheduler is not None and state.get("scheduler") is not None:
                scheduler.load_state_dict(state["scheduler"])
            set_rng_state(state["rng"])
            if train_loader.generator is not None and state.get("loader_rng") is not None:
                train_loader.generator.set_state(torch.tensor(state["loader_rng"], dtype=torch.uint8))
    train_model: nn.Module = model
    loader = train_loader
    if world > 1:
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
        loader = _distributed_loader(train_loader, rank, world, seed)
    show = (progress_enabled() if progress_bar is None else progress_bar) and rank == 0
    for epoch in range(start_epoch, epochs):
        started = time.perf_counter()
        if isinstance(loader.sampler, DistributedSampler):
            loader.sampler.set_epoch(epoch)
        train_model.train()
        loss_sum = torch.zeros(2, dtype=torch.float64)  # (sum of losses weighted by batch size, count)
        for batch in progress(loader, enabled=show, desc=f"{desc} {epoch + 1}/{epochs}"):
            inputs, targets = _split_batch(batch)
            inputs, targets = to_device(inputs, device), to_device(targets, device)
            outputs = forward(train_model, inputs)
            loss = loss_fn(outputs, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None and scheduler_step == "batch":
                scheduler.step()
            loss_sum += torch.tensor([loss.item() * len(targets), len(targets)], dtype=torch.float64)
        if scheduler is not None and scheduler_step == "epoch":
            scheduler.step()
        loss_sum = _all_reduce_sum(loss_sum, world)
        record: dict[str, float] = {"epoch": epoch + 1, "train_loss": (loss_sum[0] / loss_sum[1]).item(),
                                    "lr": optimizer.param_groups[0]["lr"]}
        if val_loader is not None:
            scores = evaluate(model, val_loader, loss_fn=loss_fn, metrics=metrics, device=device, enabled=False)
            record.update({f"val_{name}": value for name, value in scores.items()})
        record["seconds"] = time.perf_counter() - started
        history.append(record)
        if checkpoint_dir is not None and rank == 0:
            loader_rng = train_loader.generator.get_state().tolist() if train_loader.generator is not None else None
            extra = {
                "history": history,
                "rng": rng_state(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "loader_rng": loader_rng,
            }
            save_checkpoint(checkpoint_dir, epoch + 1, model, optimizer, extra)
        if world > 1:
            dist.barrier()
    return history
