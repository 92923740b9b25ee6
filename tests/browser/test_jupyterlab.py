"""The notebooks in a real JupyterLab, driven in Chromium with Playwright, as a student would use them.

Run with ``make test-browser`` (``VCLIB_BROWSER=1``); plain ``make test`` skips this folder. Playwright uses
the system Chromium (Debian's ``chromium`` package, or ``VCLIB_CHROMIUM``), because Playwright's own
browser download needs the internet.

For each notebook, on a copy of ``notebooks/``: open it and check that opening it does not change the file;
run every cell from the menu (Run > Run All Cells) and wait until no cell is pending; check that every
widget renders as a widget (not "Loading widget..." or "Error displaying widget"); move one control and check
that the figure it drives changes; save and check that no cell has an error output. Screenshots of each
widget before and after land in ``build/browser/``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
SHOTS = ROOT / "build" / "browser"
CHROMIUM = os.environ.get("VCLIB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
NOTEBOOKS = sorted((ROOT / "notebooks").glob("P*.ipynb"))
RUN_TIMEOUT_S = 900
LAB_SETTINGS = {  # every cell in the page (no virtual scrolling), and no news pop-up over the notebook
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
}

pytestmark = [
    pytest.mark.skipif(os.environ.get("VCLIB_BROWSER") != "1", reason="browser tests run with make test-browser"),
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium executable (apt-get install chromium)"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a free local port, with a token, serving a copy of notebooks/; stopped at the end."""
    folder = tmp_path_factory.mktemp("lab")
    for path in NOTEBOOKS:
        shutil.copy(path, folder / path.name)
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    settings = folder / ".settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    env = {**os.environ, "VCLIB_MODE": "quick", "VCLIB_PROGRESS": "0", "JUPYTER_CONFIG_DIR": str(folder / ".config"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings)}
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter lab did not start; see {folder / 'server.log'}") from None
                time.sleep(0.5)
        yield {"url": url, "token": token, "folder": folder}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


def stop_kernels(lab: dict) -> None:
    """Shut down every kernel of the server, so that the next notebook has the CPU to itself."""
    api = f"{lab['url']}/api/kernels"
    with urllib.request.urlopen(f"{api}?token={lab['token']}", timeout=10) as response:
        kernels = json.loads(response.read())
    for kernel in kernels:
        request = urllib.request.Request(f"{api}/{kernel['id']}?token={lab['token']}", method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()


def run_all_from_menu(page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def wait_until_idle(page) -> None:
    """No cell is queued or running (``[*]``) and the status bar shows an idle kernel, three checks in a row."""
    deadline, calm = time.monotonic() + RUN_TIMEOUT_S, 0
    while calm < 3:
        if time.monotonic() > deadline:
            raise AssertionError(f"the kernel was still busy after {RUN_TIMEOUT_S} s")
        time.sleep(2)
        busy = page.locator(".jp-CodeCell .jp-InputPrompt").filter(has_text="[*]").count()
        idle = "Idle" in page.locator(".jp-StatusBar-Widget").all_inner_texts().__str__()
        calm = calm + 1 if not busy and idle else 0


def saved_notebook(page, path: Path) -> dict:
    """Save from the browser (Ctrl+S) and read the file back."""
    before = path.stat().st_mtime_ns
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 30
    while path.stat().st_mtime_ns == before and time.monotonic() < deadline:
        time.sleep(0.5)
    return json.loads(path.read_text())


def figure_near(control):
    """The image that a widget control drives: the first image in the same widget box."""
    box = control.locator("xpath=ancestor::div[contains(@class, 'widget-box')][last()]")
    return box.locator("img").first


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_in_jupyterlab(path, lab, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    copy = lab["folder"] / path.name
    stored = copy.read_bytes()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    console_errors = []
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    # A workspace of its own, so that the notebooks opened before are not restored beside this one.
    page.goto(f"{lab['url']}/lab/workspaces/{path.stem}/tree/{path.name}?reset&token={lab['token']}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=120_000)
    page.locator(".jp-StatusBar-Widget", has_text="Idle").first.wait_for(timeout=120_000)  # kernel connected
    page.wait_for_timeout(3000)
    assert page.locator(".lm-TabBar-tab.jp-mod-dirty").count() == 0, "opening the notebook marked it modified"
    assert copy.read_bytes() == stored, "opening the notebook changed the file"
    pictures = sum("image/png" in o.get("data", {}) and WIDGET_VIEW in o["data"]
                   for c in json.loads(stored)["cells"] for o in c.get("outputs", []))
    assert pictures > 0, "no stored widget output holds a picture of its figure"
    before_run = page.locator(".jp-Notebook").inner_text()
    assert "children=(" not in before_run, "an untrusted widget output shows its text repr instead of a picture"

    run_all_from_menu(page)
    wait_until_idle(page)
    saved = saved_notebook(page, copy)
    errors = [f"cell {i}: {o['ename']}: {o['evalue']}" for i, c in enumerate(saved["cells"])
              for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == [], errors
    unrun = [i for i, c in enumerate(saved["cells"]) if c["cell_type"] == "code" and c["source"] and
             c["execution_count"] is None]
    assert unrun == [], f"cells that never ran: {unrun}"
    text = page.locator(".jp-Notebook").inner_text()
    assert "Error displaying widget" not in text and "Loading widget..." not in text
    views = page.locator(".jp-OutputArea-output .jupyter-widgets")
    assert views.count() > 0, "no widget view rendered"

    control = page.locator(".jp-OutputArea-output .widget-slider .noUi-handle, "
                           ".jp-OutputArea-output .widget-dropdown select").first
    control.scroll_into_view_if_needed()
    figure = figure_near(control)
    before = figure.screenshot(path=str(SHOTS / f"{path.stem}_before.png"))
    if control.evaluate("element => element.tagName") == "SELECT":
        count, selected = control.evaluate("element => [element.options.length, element.selectedIndex]")
        control.select_option(index=(selected + 1) % count)  # the next option (option values are not labels)
    else:
        control.focus()
        control.press("ArrowRight")
        control.press("ArrowRight")
    page.wait_for_timeout(4000)
    after = figure_near(control).screenshot(path=str(SHOTS / f"{path.stem}_after.png"))
    assert before != after, "moving the control did not change its figure"

    assert [e for e in console_errors if "widget" in e.lower()] == []
    page.close()
    stop_kernels(lab)
