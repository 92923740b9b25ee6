"""fit / evaluate / predict: histories, checkpoints, exact resume, and DDP equivalence."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from vclib import checkpoint
from vclib.data import make_loader
from vclib.metrics import accuracy
from vclib.train import evaluate, fit, predict

PER_RANK_BATCH = 8


def make_regression_problem():
    """A small deterministic model and dataset (no batch norm, so DDP equals one process)."""
    torch.manual_seed(0)
    x = torch.randn(64, 5)
    y = (x @ torch.randn(5, 1)).squeeze(1) + 0.1 * torch.randn(64)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1), nn.Flatten(0))
    return model, torch.utils.data.TensorDataset(x, y), F.mse_loss


def make_classification_problem(seed: int = 0):
    torch.manual_seed(seed)
    x = torch.randn(96, 6)
    y = (x[:, 0] + x[:, 1] > 0).long()
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 2))
    return model, torch.utils.data.TensorDataset(x, y)


def test_fit_history_and_learning():
    model, dataset = make_classification_problem()
    loader = make_loader(dataset, batch_size=16, shuffle=True)
    history = fit(model, loader, epochs=15, val_loader=make_loader(dataset, 32), metrics={"accuracy": accuracy},
                  optimizer=torch.optim.Adam(model.parameters(), lr=1e-2), device="cpu")
    assert [h["epoch"] for h in history] == list(range(1, 16))
    assert set(history[0]) == {"epoch", "train_loss", "lr", "val_loss", "val_accuracy", "seconds"}
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_accuracy"] > 0.9


def test_fit_with_tuple_inputs_and_batch_scheduler():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 2), nn.Linear(4, 2)

        def forward(self, a, b):
            return self.a(a) + self.b(b)

    data = [((torch.randn(3), torch.randn(4)), torch.tensor(i % 2), f"id{i}") for i in range(20)]
    loader = torch.utils.data.DataLoader(data, batch_size=5)
    model = TwoInputs()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = fit(model, loader, epochs=1, optimizer=optimizer, scheduler=scheduler, scheduler_step="batch")
    assert history[0]["lr"] == pytest.approx(0.1 * 0.5**4)


def test_evaluate_and_predict_restore_mode():
    model, dataset = make_classification_problem()
    model.train()
    outputs, targets = predict(model, make_loader(dataset, 40))
    assert outputs.shape == (96, 2) and targets.shape == (96,)
    assert model.training
    results = evaluate(model, make_loader(dataset, 40), metrics={"accuracy": accuracy})
    torch.testing.assert_close(results["loss"], F.cross_entropy(outputs, targets).item())
    assert results["accuracy"] == accuracy(outputs, targets)


def test_fit_bad_arguments():
    model, dataset = make_classification_problem()
    loader = make_loader(dataset, 16)
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        fit(model, loader, epochs=0)
    with pytest.raises(ValueError, match="resume=True needs a checkpoint_dir"):
        fit(model, loader, epochs=1, resume=True)
    with pytest.raises(ValueError, match="scheduler_step"):
        fit(model, loader, epochs=1, scheduler_step="step")
    with pytest.raises(ValueError, match="a batch must be"):
        fit(model, torch.utils.data.DataLoader(torch.randn(8, 6), batch_size=4), epochs=1)


def _run(epochs: int, checkpoint_dir=None, resume=False, init_seed=0):
    model, dataset = make_classification_problem()
    torch.manual_seed(init_seed)  # a restarted process starts from some other random state
    if init_seed:
        for p in model.parameters():
            nn.init.normal_(p)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    loader = make_loader(dataset, batch_size=16, shuffle=True)
    history = fit(model, loader, epochs=epochs, optimizer=optimizer, scheduler=scheduler,
                  checkpoint_dir=checkpoint_dir, resume=resume, device="cpu")
    return model, history


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    reference, reference_history = _run(epochs=5)
    _run(epochs=2, checkpoint_dir=tmp_path)  # "interrupted" after two epochs
    resumed, resumed_history = _run(epochs=5, checkpoint_dir=tmp_path, resume=True, init_seed=123)
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in reference_history]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in resumed_history]


def test_checkpoint_files_are_safetensors_and_json(tmp_path):
    _run(epochs=2, checkpoint_dir=tmp_path)
    latest = json.loads((tmp_path / "latest.json").read_text())
    assert latest == {"checkpoint": "epoch-0002", "epoch": 2}
    folder = tmp_path / "epoch-0002"
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors", "optimizer.safetensors", "state.json"]
    assert not list(tmp_path.glob("epoch-0001"))  # older checkpoints are pruned
    assert "0.weight" in load_file(str(folder / "model.safetensors"))


def test_interrupted_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    _run(epochs=1, checkpoint_dir=tmp_path)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(checkpoint, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        _run(epochs=2, checkpoint_dir=tmp_path, resume=True)
    monkeypatch.undo()
    model, _ = make_classification_problem()
    state = checkpoint.load_checkpoint(tmp_path, model)
    assert state["epoch"] == 1


def test_corrupt_checkpoint_is_named(tmp_path):
    _run(epochs=1, checkpoint_dir=tmp_path)
    (tmp_path / "epoch-0001" / "model.safetensors").write_bytes(b"not a safetensors file")
    model, _ = make_classification_problem()
    with pytest.raises(ValueError, match="checkpoint in .* is corrupt"):
        checkpoint.load_checkpoint(tmp_path, model)
    (tmp_path / "epoch-0001" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        checkpoint.load_checkpoint(tmp_path, model)


def test_ddp_two_processes_equal_one_process_with_the_same_global_batch(tmp_path):
    out = tmp_path / "ddp.safetensors"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
               str(Path(__file__).parent / "ddp_worker.py"), str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ddp_state = load_file(str(out))

    model, dataset, loss_fn = make_regression_problem()
    loader = torch.utils.data.DataLoader(dataset, batch_size=2 * PER_RANK_BATCH, shuffle=False)
    history = fit(model, loader, epochs=3, optimizer=torch.optim.SGD(model.parameters(), lr=0.05), loss_fn=loss_fn,
                  device="cpu")
    for name, value in model.state_dict().items():
        torch.testing.assert_close(ddp_state[name], value, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ddp_state["train_loss"], torch.tensor([h["train_loss"] for h in history]),
                               rtol=1e-5, atol=1e-6, check_dtype=False)


@pytest.mark.parametrize("progress_bar", [False, True])
def test_fit_equals_the_plain_loop_with_or_without_progress_bars(progress_bar):
    """fit must not change the batches: same seeds -> bitwise the same weights as the loop written out."""
    expected, dataset = make_classification_problem()
    optimizer = torch.optim.Adam(expected.parameters(), lr=1e-2)
    loader = make_loader(dataset, batch_size=16, shuffle=True, seed=3)
    for _ in range(2):
        for x, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(expected(x), y).backward()
            optimizer.step()
    model, dataset = make_classification_problem()
    fit(model, make_loader(dataset, batch_size=16, shuffle=True, seed=3), epochs=2,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-2), progress_bar=progress_bar)
    for a, b in zip(expected.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)
