"""The public detection page of ``gen4sdk serve``, in a real headless browser (Debian's chromium), driven over the
DevTools protocol on a pipe: the upload form, a real file upload, the answer, the error states, keyboard access,
labels and contrast, and screenshots."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from http_server import serving
from test_compliance_audit import _chromium

import gen4sdk

PROFILES = ["eu-ai-act", "ca-sb-942", "cn-gb-45438"]


class Browser:
    """Headless chromium over --remote-debugging-pipe (fd 3: commands in, fd 4: replies out), one page."""

    def __init__(self, user_dir: str) -> None:
        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()
        # bash makes the pipe ends fds 3 and 4 for chromium (no preexec_fn: the server runs in a thread here)
        wire = f'exec "$0" "$@" 3<&{cmd_r} 4>&{out_w} {cmd_r}<&- {out_w}>&-'
        self.proc = subprocess.Popen(
            ["bash", "-c", wire, _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-sync", "--disable-background-networking", "--disable-component-update",
             f"--user-data-dir={user_dir}", "--window-size=1000,1200", "--remote-debugging-pipe", "about:blank"],
            pass_fds=(cmd_r, out_w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # its renderer and helper processes share the group, so close() ends them all
        )  # fmt: skip
        os.close(cmd_r)
        os.close(out_w)
        self._buf = b""
        self._id = 0
        self._events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session=True)

    def _read(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no reply from chromium")
            chunk = os.read(self._out_r, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buf += chunk
        msg, _, self._buf = self._buf.partition(b"\0")
        return json.loads(msg)

    def call(
        self, method: str, *, session: bool = False, timeout: float = 60, **params: Any
    ) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def wait_for(self, event: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self._events):
                if e.get("method") == event:
                    del self._events[: i + 1]
                    return
            self._events.append(self._read(max(0.1, deadline - time.monotonic())))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self._events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_for("Page.loadEventFired")

    def submit_with_file(self, path: Path) -> None:
        root = self.call("DOM.getDocument", session=True)["root"]["nodeId"]
        node = self.call("DOM.querySelector", session=True, nodeId=root, selector="#clip")["nodeId"]
        self.call("DOM.setFileInputFiles", session=True, nodeId=node, files=[str(path)])
        self._events.clear()
        # a click on the submit button, as a person's would be: the page itself has no scripts
        self.evaluate("document.querySelector('button[type=submit]').click()")
        self.wait_for("Page.loadEventFired")

    def html(self) -> str:
        return str(self.evaluate("document.documentElement.outerHTML"))

    def screenshot(self) -> np.ndarray:
        from PIL import Image

        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))

    def press_tab(self) -> str:
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", session=True, type=kind, key="Tab", code="Tab",
                      windowsVirtualKeyCode=9, nativeVirtualKeyCode=9)  # fmt: skip
        return str(
            self.evaluate(
                "document.activeElement.id || document.activeElement.name || document.activeElement.tagName"
            )
        )

    def close(self) -> None:
        # ask first: chromium then flushes and closes its profile files before it exits
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            self.call("Browser.close", timeout=10)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        # helpers that outlive the browser would go on writing into the profile while it is removed
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        os.close(self._cmd_w)
        os.close(self._out_r)


@pytest.fixture(scope="module")
def made(tmp_path_factory, signer, dev_keys):
    work = tmp_path_factory.mktemp("page")
    store = gen4sdk.Store(work / "store.db", signer=signer)
    with gen4sdk.Client(model="tiny", signer=signer, owner="Acme Studios", store=store, compliance=PROFILES,
                        label=gen4sdk.VisibleLabel()) as client:  # fmt: skip
        result = client.generate(
            prompt="a lighthouse at dusk", output=work / "clip.mp4", num_frames=17, fps=8, steps=2
        )
    return work, result, store


@pytest.fixture(scope="module")
def server(made, dev_keys):
    _, _, store = made
    app = gen4sdk.create_app(store.path, trust_anchors=dev_keys.root_cert, max_upload_bytes=1024 * 1024)
    with serving(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    # a crash reporter chromium detaches may still hold the profile: leftovers in /tmp are not a test failure
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as user_dir:
        b = Browser(user_dir)
        try:
            yield b
        finally:
            b.close()


def _luminance(rgb: tuple[float, ...]) -> float:
    def channel(c: float) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(fg: str, bg: str) -> float:
    a, b = (_luminance(tuple(float(x) for x in re.findall(r"[\d.]+", c))) for c in (fg, bg))
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


def test_the_form_is_labelled_keyboard_reachable_and_self_contained(server, browser) -> None:
    browser.open(server + "/")
    html = browser.html()
    assert "<script" not in html and not re.search(
        r'(src|href)="(https?:)?//', html
    )  # nothing from elsewhere
    assert browser.evaluate("[...document.querySelectorAll('input')].every(i => i.labels.length > 0)") is True
    assert browser.evaluate("document.documentElement.lang") == "en"
    # keyboard: Tab reaches the file input, each profile box and the button, in that order
    order = [browser.press_tab() for _ in range(5)]
    assert order == ["clip", "profile", "profile", "profile", "BUTTON"], order
    colors = browser.evaluate(
        "(() => { const b = getComputedStyle(document.body), t = getComputedStyle(document.querySelector('button'));"
        " return [b.color, b.backgroundColor, t.color, t.backgroundColor,"
        " getComputedStyle(document.querySelector('p.note')).color]; })()"
    )
    assert _contrast(colors[0], colors[1]) >= 7  # body text: WCAG AAA
    assert _contrast(colors[2], colors[3]) >= 4.5  # the button's label: AA
    assert _contrast(colors[4], colors[1]) >= 4.5
    shot = browser.screenshot()
    assert shot.shape[0] > 500 and shot.std() > 10


def test_uploading_our_clip_answers_in_plain_words(server, browser, made, tmp_path) -> None:
    _, result, _ = made
    browser.open(server + "/")
    browser.submit_with_file(result.path)
    html = browser.html()
    assert 'data-ai="yes" data-status="trusted"' in html
    assert "Made by AI? Yes. Its Content Credentials say it was generated by an AI model." in html
    assert re.search(r'id="who">Acme Studios \(verified', html)
    assert re.search(r'id="model">gen4sdk/tiny-wan-random<', html)
    assert "No: the picture and the credentials are as they were signed." in html
    assert f'Result for <span class="file">{result.path.name}</span>' in html
    for p in PROFILES:
        assert re.search(rf'id="profile-{p}">[^<]*: <span class="st st-met">met</span>', html), p
    shot = browser.screenshot()
    # the answer's light-blue panel is on screen
    assert (np.abs(shot.astype(int) - [0xEF, 0xF6, 0xFF]).sum(axis=2) < 6).sum() > 10_000


def test_uploads_are_not_kept(server, browser, made, tmp_path) -> None:
    _, result, _ = made
    before = set(Path(tempfile.gettempdir()).glob("gen4sdk-page-*"))
    browser.open(server + "/")
    browser.submit_with_file(result.path)
    assert "Result for" in browser.html()
    assert set(Path(tempfile.gettempdir()).glob("gen4sdk-page-*")) == before


def test_error_states(server, browser, bbb_excerpt, tmp_path) -> None:
    # a stranger's clip: nothing found, said carefully
    browser.open(server + "/")
    browser.submit_with_file(bbb_excerpt)
    html = browser.html()
    assert 'data-ai="unknown" data-status="unsigned"' in html and "does not prove a person made it" in html
    assert 'class="st st-missing">missing' in html
    # not a video
    junk = tmp_path / "notes.mp4"
    junk.write_bytes(b"meeting notes")
    browser.open(server + "/")
    browser.submit_with_file(junk)
    assert "We could not read this file as a video." in browser.html()
    # past the size cap (1 MB here): the form again, with the reason announced
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(1024 * 1024 + 10))
    browser.open(server + "/")
    browser.submit_with_file(big)
    html = browser.html()
    assert re.search(r'role="alert" id="error">The file is larger than 1 MB\.<', html)
    assert 'id="clip"' in html
    shot = browser.screenshot()
    assert (np.abs(shot.astype(int) - [0xFE, 0xF2, 0xF2]).sum(axis=2) < 6).sum() > 2_000  # the red error box
