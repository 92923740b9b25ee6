"""Atomic training checkpoints: tensors in safetensors, everything else in JSON.

A checkpoint is a folder ``epoch-NNNN`` holding ``model.safetensors``, ``optimizer.safetensors`` and
``state.json``. It is written into a temporary folder and renamed, and ``latest.json`` (replaced
atomically) points at the newest one, so an interrupted write never leaves a half checkpoint behind.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

LATEST = "latest.json"


def _flatten_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state dict into tensors (``state.<param>.<key>``) and JSON-able rest."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, param_state in state_dict["state"].items():
        for key, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{param_id}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(param_id), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        _, param_id, key = name.split(".", 2)
        state.setdefault(int(param_id), {})[key] = tensor
    for param_id, values in meta["scalars"].items():
        state.setdefault(int(param_id), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) random states, JSON-able."""
    np_state = np.random.get_state()
    return {
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "torch": torch.get_rng_state().tolist(),
        "cuda": [s.tolist() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def save_checkpoint(directory: str | Path, epoch: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    extra: dict[str, Any]) -> Path:
    """Write the checkpoint of a finished ``epoch`` atomically and return its folder."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"epoch-{epoch:04d}"
    tmp = directory / f".tmp-epoch-{epoch:04d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    model_tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(model_tensors, str(tmp / "model.safetensors"))
    optim_tensors, optim_meta = _flatten_optimizer(optimizer.state_dict())
    save_file(optim_tensors, str(tmp / "optimizer.safetensors"))
    state = {"epoch": epoch, "optimizer": optim_meta, **extra}
    (tmp / "state.json").write_text(json.dumps(state))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    pointer = directory / f".{LATEST}.tmp"
    pointer.write_text(json.dumps({"checkpoint": final.name, "epoch": epoch}))
    os.replace(pointer, directory / LATEST)
    for old in directory.glob("epoch-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(directory: str | Path, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any] | None:
    """Load the latest checkpoint into ``model`` (and ``optimizer``); return its JSON state.

    Returns ``None`` when ``directory`` holds no checkpoint yet. A pointer to a missing or corrupt
    checkpoint raises, naming the file.
    """
    directory = Path(directory)
    pointer = directory / LATEST
    if not pointer.is_file():
        return None
    try:
        folder = directory / json.loads(pointer.read_text())["checkpoint"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"checkpoint pointer {pointer} is corrupt: {error}") from error
    needed = ["state.json", "model.safetensors"] + (["optimizer.safetensors"] if optimizer is not None else [])
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"checkpoint {folder} is incomplete: {', '.join(missing)} missing")
    try:
        state = json.loads((folder / "state.json").read_text())
        model_tensors = load_file(str(folder / "model.safetensors"))
        optim_tensors = load_file(str(folder / "optimizer.safetensors")) if optimizer is not None else {}
    except (ValueError, KeyError, OSError, SafetensorError) as error:
        raise ValueError(f"checkpoint in {directory} is corrupt: {error}") from error
    model.load_state_dict(model_tensors)
    if optimizer is not None:
        optimizer.load_state_dict(_unflatten_optimizer(optim_tensors, state["optimizer"]))
    return state
