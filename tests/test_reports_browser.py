"""A real browser opens HTML reports: headless Chromium over the DevTools protocol.

The protocol runs over ``--remote-debugging-pipe`` (fds 3/4, NUL-separated JSON), so
the test needs only the standard library. The network is cut three ways (offline
emulation, an unreachable proxy, a host resolver that finds nothing) and every
request the page makes is recorded: a report must load with no request but its own
``file://`` URL, no console error, MathML laid out natively with non-zero size, no
raw LaTeX visible, and no horizontal overflow on a phone-sized screen. Screenshots go
to ``test-artifacts/``. Skipped only where no Chromium is installed.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from chainrule.reports.document import build_report, render_report

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
EXAMPLES = ("logistic_least_squares_l2", "vector_mlp")


def find_browser() -> str | None:
    env = os.environ.get("CHAINRULE_CHROMIUM")
    if env and shutil.which(env):
        return shutil.which(env)
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


BROWSER = find_browser()
pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="no Chromium on PATH (apt-get install chromium); the real-browser test needs one",
)


class DevTools:
    """A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe``."""

    def __init__(self, browser: str, profile: str) -> None:
        to_child_r, self._to_child_w = os.pipe()
        self._from_child_r, from_child_w = os.pipe()

        def wire() -> None:  # in the child: fd 3 reads commands, fd 4 writes replies
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        args = [
            browser,
            "--headless=new",
            "--remote-debugging-pipe",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--metrics-recording-only",
            "--proxy-server=http://127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={profile}",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire,  # noqa: PLW1509 - needed to place the pipe on fds 3 and 4
            pass_fds=(3, 4),
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        for fd in (self._to_child_w, self._from_child_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply from the browser")
            ready, _, _ = select.select([self._from_child_r], [], [], left)
            if ready:
                chunk = os.read(self._from_child_r, 1 << 20)
                if not chunk:
                    raise ConnectionError("the browser closed the DevTools pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_message(deadline)
            if msg.get("method") == method:
                return msg
            self.events.append(msg)


@pytest.fixture(scope="module")
def devtools():
    # the browser may still be writing its profile while it exits: clean up leniently
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        dt = DevTools(BROWSER, profile)  # type: ignore[arg-type]
        try:
            yield dt
        finally:
            dt.close()


def _evaluate(dt: DevTools, session: str, js: str) -> Any:
    result = dt.send("Runtime.evaluate", {"expression": js, "returnByValue": True}, session)
    if "exceptionDetails" in result:
        raise AssertionError(f"page script failed: {result['exceptionDetails']}")
    return result["result"].get("value")


MEASURE_JS = """(() => {
  const maths = Array.from(document.querySelectorAll('math'));
  const sizes = maths.map(m => { const r = m.getBoundingClientRect();
                                  return [r.width, r.height]; });
  const block = document.querySelector('math[display="block"]');
  const frac = document.querySelector('mfrac');
  const clone = document.body.cloneNode(true);
  clone.querySelectorAll('pre, code, details, script, style').forEach(e => e.remove());
  return {count: maths.length, sizes: sizes,
          blockDisplay: block ? getComputedStyle(block).display : null,
          fracHeight: frac ? frac.getBoundingClientRect().height : null,
          lineHeight: parseFloat(getComputedStyle(document.body).fontSize),
          text: clone.textContent,
          sections: Array.from(document.querySelectorAll('section[id]')).map(s => s.id),
          scrollWidth: document.documentElement.scrollWidth,
          innerWidth: window.innerWidth,
          height: document.documentElement.scrollHeight};
})()"""


def open_report(dt: DevTools, path: Path, width: int) -> tuple[str, list[dict], dict]:
    """Load ``path`` in a fresh tab (offline); (session, events seen, measurements)."""
    target = dt.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = dt.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    dt.events.clear()
    for domain in ("Page", "Runtime", "Log", "Network"):
        dt.send(f"{domain}.enable", {}, session)
    dt.send(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        session,
    )
    dt.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600},
        session,
    )
    dt.send("Page.navigate", {"url": path.as_uri()}, session)
    dt.wait_for("Page.loadEventFired", timeout=60)
    time.sleep(0.3)  # let late console messages arrive
    measured = _evaluate(dt, session, MEASURE_JS)
    events = [e for e in dt.events if e.get("sessionId") == session]
    return session, events, measured


def problems(events: list[dict], own_url: str) -> tuple[list[str], list[str]]:
    """(console errors, network requests other than the page itself)."""
    errors, requests = [], []
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            errors.append(str(params.get("exceptionDetails", {}).get("text")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(json.dumps(params.get("args")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            errors.append(params["entry"].get("text", ""))
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if url != own_url and not url.startswith("data:"):
                requests.append(url)
    return errors, requests


def screenshot(dt: DevTools, session: str, height: int, width: int, name: str) -> Path:
    dt.send(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": width,
            "height": min(height, 12000),
            "deviceScaleFactor": 1,
            "mobile": width < 600,
        },
        session,
    )
    shot = dt.send("Page.captureScreenshot", {"format": "png"}, session, timeout=60)
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser")
    paths = {}
    for name in EXAMPLES:
        path = out / f"{name}.html"
        path.write_text(render_report(build_report(name), "html"), encoding="utf-8")
        paths[name] = path
    return paths


@pytest.mark.parametrize("name", EXAMPLES)
def test_report_renders_offline_in_chromium(devtools, reports, name):
    path = reports[name]
    session, events, m = open_report(devtools, path, width=1000)
    errors, requests = problems(events, path.as_uri())
    assert errors == [], f"console errors: {errors}"
    assert requests == [], f"network requests: {requests}"
    # MathML is laid out by the browser's MathML engine, every formula visible
    assert m["count"] > 10
    assert m["blockDisplay"] == "block math", "Chromium did not lay out MathML natively"
    empty = [i for i, (w, h) in enumerate(m["sizes"]) if w <= 0 or h <= 0]
    assert empty == [], f"{len(empty)} math elements have zero size"
    assert m["fracHeight"] is None or m["fracHeight"] > 1.2 * m["lineHeight"]
    # no LaTeX source leaks into the visible text
    for leak in ("\\frac", "\\left", "\\bar{", "\\mathrm", "\\sigma", "$$", "\\partial"):
        assert leak not in m["text"], f"raw LaTeX {leak!r} visible"
    assert m["sections"][:2] == ["model", "graph"] and "backprop" in m["sections"]
    shot = screenshot(devtools, session, m["height"], 1000, f"report-{name}.png")
    assert shot.stat().st_size > 10_000
    devtools.send("Target.closeTarget", {"targetId": _target_of(devtools, session)})


def _target_of(dt: DevTools, session: str) -> str:
    targets = dt.send("Target.getTargets")["targetInfos"]
    pages = [t["targetId"] for t in targets if t["type"] == "page" and t["attached"]]
    return pages[-1]


def test_report_fits_a_phone_screen(devtools, reports):
    path = reports[EXAMPLES[0]]
    session, events, m = open_report(devtools, path, width=390)
    errors, requests = problems(events, path.as_uri())
    assert errors == [] and requests == []
    # wide formulas and tables scroll inside their own boxes; the page itself does not
    assert m["scrollWidth"] <= m["innerWidth"] + 1, (m["scrollWidth"], m["innerWidth"])
    screenshot(devtools, session, min(m["height"], 4000), 390, f"report-{EXAMPLES[0]}-phone.png")
