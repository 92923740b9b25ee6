"""The headless runner behind ``python -m vclib run``: every wait is bounded, and failures name the cell.

Each test starts a real ipykernel. Kernels that misbehave are made from the inside: a cell replaces the
kernel's ``session.send`` so that it drops one kind of message, exactly as a lost message would look to
the runner.
"""

import os
import time
from queue import Empty

import nbformat
import pytest

from vclib import notebooks, runner
from vclib.runner import BoundedNotebookClient, NotebookRunError, execute_notebook


def dropping(kind: str) -> str:
    """A cell after which the kernel drops its ``kind`` messages for each cell whose code says ``# DROP_ME``."""
    return f"""
kernel = get_ipython().kernel
send = kernel.session.send
def dropping_send(stream, msg_or_type, *args, **kwargs):
    kind = msg_or_type if isinstance(msg_or_type, str) else msg_or_type["header"]["msg_type"]
    parent = kwargs.get("parent") or (args[1] if len(args) > 1 else None) or {{}}
    if kind == {kind!r} and "DROP" + "_ME" in str(parent.get("content", {{}}).get("code", "")):
        return {{"header": {{"msg_type": kind}}, "content": {{"status": "ok"}}}}  # as if sent
    return send(stream, msg_or_type, *args, **kwargs)
kernel.session.send = dropping_send
"""


def notebook(*sources: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def run(nb, tmp_path, **kwargs) -> float:
    started = time.monotonic()
    execute_notebook(nb, "test.ipynb", tmp_path, {"VCLIB_TEST_VALUE": "42"}, **kwargs)
    return time.monotonic() - started


def test_outputs_widgets_and_environment(tmp_path):
    before = dict(os.environ)
    nb = notebook("import os; print(os.environ['VCLIB_TEST_VALUE'], os.getcwd())",
                  "import ipywidgets as w\nw.IntSlider(value=3)")
    run(nb, tmp_path)
    assert nb.cells[0].outputs[0]["text"].split() == ["42", str(tmp_path)]
    assert nb.cells[1].outputs[0]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert "application/vnd.jupyter.widget-state+json" in nb.metadata["widgets"]
    assert dict(os.environ) == before


def test_error_names_notebook_cell_and_exception(tmp_path):
    nb = notebook("x = 1", "", "raise ValueError('bad value here')")
    with pytest.raises(NotebookRunError, match=r"test.ipynb: cell 2 failed: .*ValueError: bad value here"):
        run(nb, tmp_path)


def test_lost_execute_reply_fails_within_the_grace_period(tmp_path):
    nb = notebook(dropping("execute_reply"), "print('never replied')  # DROP_ME")
    started = time.monotonic()
    with pytest.raises(NotebookRunError, match=r"cell 1 failed: .*idle but sent no execute_reply within 3 s"):
        run(nb, tmp_path, timeout=600, reply_grace=3)
    assert time.monotonic() - started < 60  # the per-cell timeout is 600 s


def test_lost_idle_status_fails_instead_of_dropping_outputs(tmp_path):
    nb = notebook(dropping("status"), "print('outputs whose end is never announced')  # DROP_ME")
    with pytest.raises(NotebookRunError, match=r"cell 1 failed: .*IOPub output"):
        run(nb, tmp_path, timeout=600)


def test_busy_cell_times_out_with_its_index(tmp_path):
    nb = notebook("x = 1", "import time; time.sleep(120)")
    started = time.monotonic()
    with pytest.raises(NotebookRunError, match=r"cell 1 failed: .*timed out"):
        run(nb, tmp_path, timeout=3)
    assert time.monotonic() - started < 60


class MissedWakeUpClient(BoundedNotebookClient):
    """Every shell poll behaves as if asyncio missed the socket's wake-up: a message that is there is only
    seen when the poll's whole timeout has passed (what zmq.asyncio does after a lost edge)."""

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        channel = kc.shell_channel
        get_msg = channel.get_msg

        async def late_get_msg(timeout=None):
            started = time.monotonic()
            try:
                msg = await get_msg(timeout=timeout)
            except Empty:
                raise
            if timeout is not None:
                await runner.asyncio.sleep(max(0.0, timeout - (time.monotonic() - started)))
            return msg

        channel.get_msg = late_get_msg
        return kc


def test_missed_wake_up_costs_one_poll_interval_not_the_cell_timeout(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "BoundedNotebookClient", MissedWakeUpClient)
    nb = notebook("x = 1", "y = x + 1", "print(y)")
    seconds = run(nb, tmp_path, timeout=600)
    assert nb.cells[2].outputs[0]["text"] == "2\n"
    assert seconds < 60  # stock nbclient would wait 600 s for each of the three replies


def test_widget_outputs_keep_a_picture_of_their_first_figure(tmp_path):
    drawing = """
import ipywidgets as w, matplotlib.pyplot as plt
def draw(k=1):
    plt.plot(range(k + 2)); plt.show()
_ = w.interact(draw, k=w.IntSlider(1, 0, 5))
"""
    nb = notebook("%matplotlib inline", drawing, "import ipywidgets as w\nw.IntSlider()")
    run(nb, tmp_path)
    assert notebooks.store_widget_snapshots(nb) == 1  # the bare slider draws nothing
    interactive, slider = nb.cells[1].outputs[-1]["data"], nb.cells[2].outputs[0]["data"]
    assert interactive["image/png"] and "application/vnd.jupyter.widget-view+json" in interactive
    assert "image/png" not in slider
