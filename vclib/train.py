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
from vclib.checks import check_choice, check_positive_int
from vclib.session import progress_enabled

MetricFn = Callable[[torch.Tensor, torch.Tensor], float]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def progress(iterable: Iterable, progress_bar: bool | None = None, **kwargs: Any) -> Iterable:
    """A tqdm progress bar (a widget in notebooks); ``progress_bar=None`` is on unless ``VCLIB_PROGRESS=0``.

    Without a bar the iterable is returned unchanged. (``tqdm.auto``'s bar calls ``iter()`` on its
    iterable twice when it is created; for a shuffling DataLoader each call draws from the loader's
    generator, so the batches, and the trained weights, would depend on whether a bar is shown.)
    """
    show = progress_enabled() if progress_bar is None else progress_bar
    if not show:
        return iterable
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # autonotebook's "notebook mode" notice
        from tqdm.autonotebook import tqdm
    return tqdm(iterable, leave=False, **kwargs)


def model_device(model: nn.Module, device: torch.device | str | None = None) -> torch.device:
    """``device`` when given; else the device of the model's first parameter (then buffer), the CPU for a
    model without any. Every ``device=None`` argument in vclib means this."""
    if device is not None:
        return torch.device(device)
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


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


def _mean_over_ranks(value: float, world: int) -> float:
    """The mean of ``value`` over all ranks (every rank sees the same number of samples per epoch)."""
    if world == 1:
        return value
    total = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total.item() / world


def _wrap_distributed(model: nn.Module, loader: DataLoader, device: torch.device, seed: int
                      ) -> tuple[nn.Module, DataLoader, int, int]:
    """Under torchrun: the DDP-wrapped model and this rank's loader; otherwise both unchanged."""
    rank, world = distributed_setup()
    if world == 1:
        return model, loader, rank, world
    ddp_model = nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    return ddp_model, _distributed_loader(loader, rank, world, seed), rank, world


# ----------------------------------------------------------------------------------------------
# Checkpoints: safetensors + JSON after every epoch, and an exact resume.


def _save_epoch(checkpoint_dir: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                loader: DataLoader, history: list[dict[str, float]]) -> None:
    extra = {
        "history": history,
        "rng": rng_state(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "loader_rng": loader.generator.get_state().tolist() if loader.generator is not None else None,
    }
    save_checkpoint(checkpoint_dir, len(history), model, optimizer, extra)


def _resume(checkpoint_dir: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
            loader: DataLoader) -> list[dict[str, float]]:
    """Load the latest checkpoint (if any) into model, optimizer, scheduler and RNGs; return its history."""
    state = load_checkpoint(checkpoint_dir, model, optimizer)
    if state is None:
        return []
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    if loader.generator is not None and state.get("loader_rng") is not None:
        loader.generator.set_state(torch.tensor(state["loader_rng"], dtype=torch.uint8))
    return state["history"]


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
def predict(model: nn.Module, loader: DataLoader, *, device: torch.device | str | None = None,
            progress_bar: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Model outputs and targets over a whole loader, concatenated on the CPU.

    Args:
        model: evaluated in eval mode (each submodule's mode is restored afterwards).
        loader: yields ``(inputs, targets, *rest)``.
        device: where the inputs go; ``None`` is the device of the model's first parameter.
        progress_bar: ``None`` shows a bar unless ``VCLIB_PROGRESS=0``.

    Returns:
        outputs ``(N, ...)`` and targets ``(N, ...)``.
    """
    device = model_device(model, device)
    outputs, targets = [], []
    with eval_mode(model):
        for batch in progress(loader, progress_bar=progress_bar, desc="predict"):
            inputs, target = _split_batch(batch)
            outputs.append(forward(model, to_device(inputs, device)).float().cpu())
            targets.append(target.cpu())
    if not outputs:
        raise ValueError("loader must yield at least one batch")
    return torch.cat(outputs), torch.cat(targets)


def evaluate(model: nn.Module, loader: DataLoader, *, loss_fn: LossFn | None = F.cross_entropy,
             metrics: Mapping[str, MetricFn] | None = None, device: torch.device | str | None = None,
             progress_bar: bool | None = None) -> dict[str, float]:
    """Loss and metrics of ``model`` on a whole loader (metrics see all outputs at once); arguments as
    :func:`predict`, plus ``loss_fn(outputs, targets) -> scalar`` and ``metrics``: name -> ``fn(outputs, targets)``."""
    outputs, targets = predict(model, loader, device=device, progress_bar=progress_bar)
    results: dict[str, float] = {}
    if loss_fn is not None:
        results["loss"] = float(loss_fn(outputs, targets))
    for name, metric in (metrics or {}).items():
        results[name] = float(metric(outputs, targets))
    return results


def train_one_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                    loss_fn: LossFn = F.cross_entropy, *, scheduler: Any | None = None,
                    device: torch.device | str | None = None, progress_bar: bool | None = None,
                    desc: str = "train") -> float:
    """One pass over ``loader``: forward, loss, backward, step (and ``scheduler.step()`` per batch).

    Returns the mean training loss over the samples.
    """
    device = model_device(model, device)
    model.train()
    loss_sum, count = 0.0, 0
    for batch in progress(loader, progress_bar=progress_bar, desc=desc):
        inputs, targets = _split_batch(batch)
        inputs, targets = to_device(inputs, device), to_device(targets, device)
        loss = loss_fn(forward(model, inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        loss_sum += loss.item() * len(targets)
        count += len(targets)
    return loss_sum / count


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
    """Train ``model`` with :func:`train_one_epoch` per epoch and return its history, one dict per epoch.

    Args:
        model: the module to train; moved to ``device``.
        train_loader: yields ``(inputs, targets, *rest)``; a tuple of inputs is unpacked into the model.
        epochs: total number of epochs (with ``resume``, the run continues up to this number).
        optimizer: defaults to ``Adam(lr=1e-3)`` over the model's parameters.
        loss_fn: ``loss_fn(outputs, targets) -> scalar``; cross-entropy by default.
        val_loader: evaluated after each epoch; its loss is ``val_loss``.
        metrics: name -> ``fn(outputs, targets)``, computed on the whole validation set as ``val_<name>``.
        scheduler: an LR scheduler, stepped once per epoch or, with ``scheduler_step="batch"``, per batch.
        device: ``None`` is the device of the model's first parameter (``cuda:LOCAL_RANK`` under torchrun
            with GPUs).
        checkpoint_dir: write a checkpoint after every epoch here (rank 0 only).
        resume: continue from the latest checkpoint in ``checkpoint_dir`` if there is one.
        progress_bar: ``None`` shows bars unless ``VCLIB_PROGRESS=0``.
        desc: label of the progress bar.
        seed: seed of the distributed sampler's shuffling.

    Returns:
        History: dicts with ``epoch``, ``train_loss``, ``lr``, ``seconds`` and, with ``val_loader``,
        ``val_loss`` and ``val_<metric>``.
    """
    check_positive_int(epochs, "epochs")
    check_choice(scheduler_step, "scheduler_step", ("epoch", "batch"))
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir")
    device = _fit_device(model, device)
    model.to(device)
    optimizer = optimizer if optimizer is not None else torch.optim.Adam(model.parameters(), lr=1e-3)
    history = _resume(checkpoint_dir, model, optimizer, scheduler, train_loader) if resume else []
    train_model, loader, rank, world = _wrap_distributed(model, train_loader, device, seed)
    show = (progress_enabled() if progress_bar is None else progress_bar) and rank == 0
    for epoch in range(len(history), epochs):
        started = time.perf_counter()
        if isinstance(loader.sampler, DistributedSampler):
            loader.sampler.set_epoch(epoch)
        train_loss = train_one_epoch(train_model, loader, optimizer, loss_fn, device=device, progress_bar=show,
                                     scheduler=scheduler if scheduler_step == "batch" else None,
                                     desc=f"{desc} {epoch + 1}/{epochs}")
        if scheduler is not None and scheduler_step == "epoch":
            scheduler.step()
        record = {"epoch": epoch + 1, "train_loss": _mean_over_ranks(train_loss, world),
                  "lr": optimizer.param_groups[0]["lr"]}
        if val_loader is not None:
            scores = evaluate(model, val_loader, loss_fn=loss_fn, metrics=metrics, device=device, progress_bar=False)
            record.update({f"val_{name}": value for name, value in scores.items()})
        record["seconds"] = time.perf_counter() - started
        history.append(record)
        if checkpoint_dir is not None and rank == 0:
            _save_epoch(checkpoint_dir, model, optimizer, scheduler, train_loader, history)
        if world > 1:
            dist.barrier()
    return history


def _fit_device(model: nn.Module, device: torch.device | str | None) -> torch.device:
    """``device``, else ``cuda:LOCAL_RANK`` under torchrun with GPUs, else the model's own device."""
    if device is None and int(os.environ.get("WORLD_SIZE", "1")) > 1 and torch.cuda.is_available():
        return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    return model_device(model, device)
