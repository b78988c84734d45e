"""Custom jobs forked from a pre-imported process: the emulator's stand-in for a warm training container.

A custom job runs ``python -m mcv_vertex.task``, which spends about 2.5 s of CPU importing torch,
``torch._dynamo`` (torch's optimizers import it) and the Cloud Storage client before it trains a small
model in well under a second. :class:`Prefork` starts one parent process, ``python -m
mcv_vertex.emulator.prefork``, that imports those modules once and then forks one child per job. The
child is the job: its own pid, environment, working directory, stdout and stderr files, and exit status,
running :func:`mcv_vertex.task.entry` with the job's arguments exactly as ``python -m mcv_vertex.task``
would. The service polls, kills and waits for it through :class:`ForkedJob`, which has the part of
:class:`subprocess.Popen`'s interface the service uses (``poll``, ``kill``, ``wait``, ``returncode``).

Forking is safe here because the parent is single-threaded and has only imported modules: no library has
started a thread pool (torch starts its pools on first use, in the child, after the job's
``OMP_NUM_THREADS`` is set). Protocol, JSON lines: the service sends ``{"id", "args", "env", "cwd",
"stdout", "stderr"}``; the parent answers ``{"id", "pid"}`` (or ``{"id", "error"}``) at once and
``{"pid", "exit"}`` when the child ends (``exit`` as :attr:`subprocess.Popen.returncode`: negative for a
signal). When its stdin closes, the parent kills the children still running and exits.

Where ``os.fork`` does not exist, or the parent cannot start, :meth:`Prefork.start` returns ``None`` and the
service starts the job as a plain subprocess.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

#: What a job imports before it trains: loaded once in the parent.
PRELOAD = (
    "torch",
    "torch._dynamo",
    "google.cloud.storage",
    "mcv_vertex.task",
    "mcv_local.engine.train",
    "mcv_local.engine.export",
    "mcv_local.engine.detection",
    "mcv_local.engine.detection_export",
    "onnxruntime",
)
#: Seconds to wait for the parent to import everything and say it is ready, or to answer a start.
START_TIMEOUT_S = 60.0


class ForkedJob:
    """A job process forked by the parent: ``poll``, ``kill``, ``wait`` and ``returncode`` like ``Popen``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._done = threading.Event()

    def _exited(self, code: int) -> None:
        self.returncode = code
        self._done.set()

    def poll(self) -> int | None:
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(f"custom job process {self.pid}", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode


class Prefork:
    """The service's handle on the parent process (started on first use; thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._broken = not hasattr(os, "fork")
        self._ids = 0
        self._starts: dict[int, tuple[threading.Event, list[Any]]] = {}
        self._jobs: dict[int, ForkedJob] = {}

    def start(
        self, args: Sequence[str], env: Mapping[str, str], cwd: Path, stdout: Path, stderr: Path
    ) -> ForkedJob | None:
        """Fork a job running ``mcv_vertex.task`` with ``args``; ``None`` when jobs must be plain subprocesses."""
        with self._lock:
            if not self._ensure_parent():
                return None
            self._ids += 1
            ident = self._ids
            answered: tuple[threading.Event, list[Any]] = (threading.Event(), [])
            self._starts[ident] = answered
            request = {
                "id": ident,
                "args": list(args),
                "env": dict(env),
                "cwd": str(cwd),
                "stdout": str(stdout),
                "stderr": str(stderr),
            }
            try:
                assert self._process is not None and self._process.stdin is not None
                self._process.stdin.write((json.dumps(request) + "\n").encode())
                self._process.stdin.flush()
            except OSError as exc:
                log.warning("the pre-imported job parent is gone (%s); custom jobs run as subprocesses", exc)
                self._broken = True
                return None
        if not answered[0].wait(START_TIMEOUT_S) or not answered[1]:
            return None
        answer = answered[1][0]
        if not isinstance(answer, ForkedJob):
            log.warning("the pre-imported job parent could not start a job: %s", answer.get("error"))
            return None
        return answer

    def _ensure_parent(self) -> bool:
        """Start the parent once (``self._lock`` held); ``False`` when it cannot run."""
        if self._broken:
            return False
        if self._process is not None:
            return self._process.poll() is None
        process = subprocess.Popen(
            [sys.executable, "-m", "mcv_vertex.emulator.prefork"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert process.stdout is not None
        ready = _read_line(process.stdout, START_TIMEOUT_S)
        if ready != {"ready": True}:
            log.warning("the pre-imported job parent did not start (%s); custom jobs run as subprocesses", ready)
            process.kill()
            process.wait()
            self._broken = True
            return False
        self._process = process
        threading.Thread(target=self._read_answers, args=(process.stdout,), daemon=True, name="vertex-prefork").start()
        return True

    def _read_answers(self, stream: IO[bytes]) -> None:
        for line in stream:
            try:
                answer = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                if "id" in answer:
                    result: Any = answer
                    if "pid" in answer:
                        result = self._jobs[int(answer["pid"])] = ForkedJob(int(answer["pid"]))
                    event, slot = self._starts.pop(int(answer["id"]), (None, None))
                    if event is not None and slot is not None:
                        slot.append(result)
                        event.set()
                elif "exit" in answer:
                    job = self._jobs.pop(int(answer["pid"]), None)
                    if job is not None:
                        job._exited(int(answer["exit"]))
        with self._lock:  # the parent is gone: its children were killed with it
            self._broken = True
            for job in self._jobs.values():
                job._exited(-signal.SIGKILL)
            self._jobs.clear()
            for event, _ in self._starts.values():
                event.set()
            self._starts.clear()

    def close(self) -> None:
        """Stop the parent (it kills the jobs still running) and wait for it."""
        with self._lock:
            process, self._process, self._broken = self._process, None, True
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _read_line(stream: IO[bytes], timeout: float) -> Any:
    """One JSON line from ``stream`` within ``timeout`` seconds, else ``None``."""
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        return None
    line = stream.readline()
    try:
        return json.loads(line) if line else None
    except ValueError:
        return None


# -- the parent process ------------------------------------------------------------------------------


def _run_job(request: Mapping[str, Any], answers: int) -> None:
    """In the forked child: become the job, run the task, exit with its status (never returns)."""
    code = 1
    try:
        os.close(answers)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        os.dup2(os.open(str(request["stdout"]), flags, 0o644), 1)
        os.dup2(os.open(str(request["stderr"]), flags, 0o644), 2)
        os.chdir(str(request["cwd"]))
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in request["env"].items()})
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import torch

        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS") or 1)))
        from mcv_vertex.task import entry

        sys.argv = ["mcv_vertex.task", *request["args"]]
        try:
            entry(list(request["args"]))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        else:
            code = 0
    except BaseException:  # the job's own failure: its traceback goes to its stderr file
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _parent() -> int:
    """Import :data:`PRELOAD`, say ready, then fork a job per request until stdin closes."""
    import importlib

    answers = os.dup(1)
    os.dup2(2, 1)  # anything printed goes to stderr, never into the answers
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the emulator stops us through stdin
    for name in PRELOAD:
        with contextlib.suppress(ImportError):  # an optional module may be missing: the job imports what it needs
            importlib.import_module(name)

    def say(message: Mapping[str, Any]) -> None:
        os.write(answers, (json.dumps(message) + "\n").encode())

    say({"ready": True})
    children: set[int] = set()
    buffer = b""
    open_stdin = True
    while open_stdin or children:
        if open_stdin:
            ready, _, _ = select.select([0], [], [], 0.05)
            if ready:
                data = os.read(0, 1 << 16)
                if not data:
                    open_stdin = False
                    for pid in children:  # the emulator is stopping: no job outlives it
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    request = json.loads(line)
                    try:
                        pid = os.fork()
                    except OSError as exc:
                        say({"id": request["id"], "error": str(exc)})
                        continue
                    if pid == 0:
                        _run_job(request, answers)
                    children.add(pid)
                    say({"id": request["id"], "pid": pid})
        else:
            select.select([], [], [], 0.05)
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                children.clear()
                break
            if pid == 0:
                break
            children.discard(pid)
            if open_stdin:
                say({"pid": pid, "exit": os.waitstatus_to_exitcode(status)})
    return 0


if __name__ == "__main__":
    sys.exit(_parent())
