"""Run by tests/test_train.py under torchrun: trains with fit() in 2 CPU processes (gloo)."""

import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from test_train import PER_RANK_BATCH, make_regression_problem  # noqa: E402

from vclib.train import fit  # noqa: E402

if __name__ == "__main__":
    model, dataset, loss_fn = make_regression_problem()
    loader = torch.utils.data.DataLoader(dataset, batch_size=PER_RANK_BATCH, shuffle=False)
    history = fit(model, loader, epochs=3, optimizer=torch.optim.SGD(model.parameters(), lr=0.05), loss_fn=loss_fn,
                  device="cpu", progress_bar=False)
    rank = torch.distributed.get_rank()
    if rank == 0:
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        state["train_loss"] = torch.tensor([h["train_loss"] for h in history])
        save_file(state, sys.argv[1])
    torch.distributed.destroy_process_group()
