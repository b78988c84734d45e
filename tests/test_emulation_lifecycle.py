"""The emulators' shared life cycle (multicloud_cv.emulation.lifecycle), on a minimal emulator of its own."""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.request
from pathlib import Path

import pytest

from multicloud_cv.emulation.faults import FaultBook
from multicloud_cv.emulation.lifecycle import Lifecycle


class _Service:
    """Stands for an emulated service: one runner thread that ends when ``closing`` is set."""

    def __init__(self, closing: threading.Event, linger: bool = False) -> None:
        self.closing = closing
        self.linger = linger
        self.thread = threading.Thread(target=self._run, name="runner", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.closing.wait()
        if self.linger:
            threading.Event().wait(0.5)

    def join(self, timeout: float) -> list[str]:
        self.thread.join(timeout)
        return [self.thread.name] if self.thread.is_alive() else []


def _app() -> object:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    return Starlette(routes=[Route("/", lambda request: PlainTextResponse("pong"))])


class _Tiny(Lifecycle):
    name = "tiny"
    title = "Tiny"

    def __init__(self, fail_after_serving: bool = False, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.fail_after_serving = fail_after_serving
        self.events: list[str] = []

    def _start(self, stack: contextlib.ExitStack, state_dir: Path) -> None:
        stack.callback(self.events.append, "storage stopped")
        self.control = _Service(self.closing)
        self._serve(stack, _app())
        if self.fail_after_serving:
            raise RuntimeError("the service could not start")


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
        return answer.read().decode()


def _refused(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_start_serve_stop_and_the_temporary_state_folder() -> None:
    emulator = _Tiny()
    assert not emulator.started
    with pytest.raises(RuntimeError, match="Tiny emulator is not started"):
        emulator._need()
    with emulator as same:
        assert same is emulator and emulator.started
        assert emulator.port > 0 and _get(emulator.port) == "pong"
        state = emulator.state_dir
        assert state is not None and state.is_dir() and state.name.startswith("mcv-tiny-emulator-")
        assert emulator.start() is emulator  # starting a started one does nothing
        runner = emulator.control.thread
    assert not emulator.started and emulator.events == ["storage stopped"]
    assert not runner.is_alive()  # the closing flag ended it
    assert not state.exists() and emulator.state_dir is None
    assert _refused(emulator.port)
    emulator.stop()  # twice: nothing


def test_a_given_state_folder_is_kept(tmp_path: Path) -> None:
    with _Tiny(state_dir=tmp_path / "state") as emulator:
        (tmp_path / "state" / "model.bin").write_bytes(b"x")
    assert emulator.state_dir == tmp_path / "state" and (tmp_path / "state" / "model.bin").is_file()


def test_a_failed_start_closes_what_it_started() -> None:
    emulator = _Tiny(fail_after_serving=True)
    with pytest.raises(RuntimeError, match="could not start"):
        emulator.start()
    assert not emulator.started and emulator.events == ["storage stopped"]
    assert emulator.state_dir is None  # the temporary folder is gone
    assert emulator.port > 0 and _refused(emulator.port)  # the server it had started is stopped
    assert not emulator.control.thread.is_alive()


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1 only"):
        _Tiny(host="0.0.0.0")
    with pytest.raises(ValueError, match="pace must not be negative"):
        _Tiny(pace=-1)
    assert _Tiny(host="localhost").host == "127.0.0.1"


def test_inject_and_reset_faults() -> None:
    book = FaultBook()
    emulator = _Tiny(faults=book)
    emulator.inject("CreateThing", error="Throttled", status=429, times=2, retry_after=1.5)
    emulator.inject(delay=0.1)
    pending = book.pending()
    assert [(f.operation, f.error, f.status, f.times, f.retry_after) for f in pending] == [
        ("CreateThing", "Throttled", 429, 2, 1.5),
        (None, None, None, 1, None),
    ]
    with pytest.raises(ValueError):
        emulator.inject(times=0)
    emulator.reset_faults()
    assert book.pending() == []


def test_stop_warns_about_threads_that_outlive_the_wait(caplog: pytest.LogCaptureFixture, monkeypatch) -> None:
    import multicloud_cv.emulation.lifecycle as lifecycle

    monkeypatch.setattr(lifecycle, "JOIN_TIMEOUT_S", 0.05)
    emulator = _Tiny().start()
    emulator.control.linger = True
    with caplog.at_level("WARNING", logger="multicloud_cv.emulation.lifecycle"):
        emulator.stop()
    assert "emulator threads still running at stop: runner" in caplog.text
    assert not emulator.started


def test_patched_environment_applies_environment_and_provider_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    class _Configured(_Tiny):
        def environment(self) -> dict[str, str]:
            return {"TINY_ENDPOINT": f"http://{self.host}:{self.port}"}

        def provider_settings(self) -> dict[str, str]:
            return {"MCV_TINY_POLL_S": "0.05"}

    monkeypatch.setenv("MCV_TINY_POLL_S", "30")
    monkeypatch.delenv("TINY_ENDPOINT", raising=False)
    assert _Tiny().environment() == {} and _Tiny().provider_settings() == {}
    with _Configured() as emulator, emulator.patched_environment():
        assert os.environ["TINY_ENDPOINT"] == f"http://127.0.0.1:{emulator.port}"
        assert os.environ["MCV_TINY_POLL_S"] == "0.05"
    assert "TINY_ENDPOINT" not in os.environ and os.environ["MCV_TINY_POLL_S"] == "30"  # restored
