"""Headless notebook execution whose every wait is bounded: the engine behind ``python -m vclib run``.

nbclient's ``NotebookClient`` runs the cells and turns kernel messages into outputs (streams, displays,
widget state). Two of its waits are replaced here, because with ``zmq.asyncio`` they can miss a message:

- **The lost wake-up.** nbclient waits for a cell's ``execute_reply`` with one ``poll`` as long as the
  cell's timeout. The shell socket's file descriptor is edge-triggered; when its edge is consumed
  elsewhere, the reply sits unread in the socket and asyncio never wakes the poll. Only the poll's
  final check at the timeout finds it, so a 10-second notebook used to take the whole per-cell timeout
  (900 s) and was then reported "ok". Polling in short slices re-checks the socket every
  ``poll_interval`` seconds, so such a reply is read at most that late.
- **Waiting for what will not come.** Once the kernel has reported the cell idle on IOPub, its reply is
  due at once. If none arrives within ``reply_grace`` seconds, the cell fails with a message that names
  it, instead of waiting for the per-cell timeout. A kernel that is still busy gets the full timeout,
  since a long computation is legitimate.

Kernels are started over IPC transport (no network port, no "running over TCP without encryption"
warning) with their environment passed explicitly, so the caller's ``os.environ`` is never changed.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path
from queue import Empty
from time import monotonic

from vclib.extras import require_extra

require_extra("nbclient", "nbformat", "ipykernel", purpose="python -m vclib run")

import nbformat  # noqa: E402
from jupyter_core.utils import ensure_async  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import (  # noqa: E402
    CellExecutionComplete,
    CellExecutionError,
    CellTimeoutError,
    DeadKernelError,
)
from traitlets import Float  # noqa: E402
from traitlets.config import Config  # noqa: E402


class NotebookRunError(RuntimeError):
    """A notebook could not be executed to the end; the message names the notebook and the cell."""


class BoundedNotebookClient(NotebookClient):
    """``NotebookClient`` whose waits for kernel messages are sliced and bounded (see the module docstring)."""

    poll_interval = Float(1.0, help="seconds between checks of the shell and IOPub sockets").tag(config=True)
    reply_grace = Float(30.0, help="seconds to wait for execute_reply after the kernel went idle").tag(config=True)

    async def _async_poll_for_reply(self, msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive):
        deadline = None if timeout is None else monotonic() + timeout
        idle_since = None
        while True:
            msg = await self._next_message(self.kc.shell_channel)
            if msg is None:  # nothing in this slice: is the reply overdue, or the cell over its time?
                now = monotonic()
                if task_poll_output_msg.done():  # IOPub already said idle, so the reply is due now
                    idle_since = idle_since or now
                    if now - idle_since > self.reply_grace:
                        task_poll_kernel_alive.cancel()
                        raise CellTimeoutError(
                            f"the kernel went idle but sent no execute_reply within {self.reply_grace:g} s")
                if deadline is not None and now > deadline:
                    task_poll_kernel_alive.cancel()
                    task_poll_output_msg.cancel()
                    await self._async_check_alive()
                    raise CellTimeoutError(f"the cell timed out after {timeout} s")
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            try:  # the reply is here; the cell's last outputs and its idle status follow within iopub_timeout
                await asyncio.wait_for(task_poll_output_msg, self.iopub_timeout)
            except (asyncio.TimeoutError, Empty):
                task_poll_kernel_alive.cancel()
                raise CellTimeoutError(
                    f"the cell's IOPub output did not end within {self.iopub_timeout} s of its execute_reply"
                ) from None
            task_poll_kernel_alive.cancel()
            return msg

    async def _next_message(self, channel) -> dict | None:
        """The channel's next message, or None when none came within ``poll_interval``."""
        try:
            return await ensure_async(channel.get_msg(timeout=self.poll_interval))
        except Empty:
            return None

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        while True:
            msg = await self._next_message(self.kc.iopub_channel)
            if msg is not None and msg["parent_header"].get("msg_id") == parent_msg_id:
                try:
                    self.process_message(msg, cell, cell_index)
                except CellExecutionComplete:  # nbclient's signal that the kernel reported this cell idle
                    return


def failed_cell(notebook: nbformat.NotebookNode, client: BoundedNotebookClient) -> str:
    """``"cell N"`` for the first code cell with an error output, else the cell that was running."""
    for index, cell in enumerate(notebook.cells):
        if cell.get("cell_type") == "code" and any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return f"cell {index}"
    running = getattr(client, "_running_cell", None)
    return f"cell {running}" if running is not None else "a cell"


def execute_notebook(
    notebook: nbformat.NotebookNode,
    name: str,
    cwd: Path,
    env: dict[str, str],
    timeout: int = 900,
    reply_grace: float = 30.0,
) -> None:
    """Execute every cell of ``notebook`` in place, in a fresh kernel.

    Args:
        notebook: the notebook; its cells receive their outputs.
        name: the notebook's name, used in error messages.
        cwd: the kernel's working directory.
        env: variables added to a copy of ``os.environ`` for the kernel (the caller's stays unchanged).
        timeout: seconds one cell may compute.
        reply_grace: seconds allowed between the kernel going idle and its execute_reply.

    Raises:
        NotebookRunError: a cell raised, timed out, or the kernel died; the message names notebook and cell.
    """
    with tempfile.TemporaryDirectory(prefix="vclib-kernel-") as sockets:
        config = Config({"KernelManager": {"transport": "ipc", "ip": str(Path(sockets) / "kernel")}})
        client = BoundedNotebookClient(notebook, timeout=timeout, reply_grace=reply_grace, kernel_name="python3",
                                       record_timing=False, config=config)
        client.on_cell_execute = lambda cell, cell_index: setattr(client, "_running_cell", cell_index)
        try:
            client.execute(cwd=str(cwd), env={**os.environ, **env})
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as failure:
            raise NotebookRunError(f"{name}: {failed_cell(notebook, client)} failed: {describe(failure)}") from None


def describe(failure: Exception) -> str:
    """One line: ``ValueError: ...`` for an exception raised in a cell, else the runner's own first line."""
    if isinstance(failure, CellExecutionError):
        return strip_ansi(f"{failure.ename}: {failure.evalue}")
    return (str(failure).strip().splitlines() or [type(failure).__name__])[0]


def strip_ansi(text: str) -> str:
    """``text`` without terminal colour codes (tracebacks from the kernel carry them)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
