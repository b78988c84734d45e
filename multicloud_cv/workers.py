"""Worker processes for CPU-bound dataset work (decoding, resizing and encoding images).

:func:`process_map` is ``map(function, items)`` in order, computed by N worker processes, for work that
threads cannot spread over the cores because it holds the GIL between the C calls (Pillow's file parsing
and codec set-up, per image). Each worker is started as ``python -m multicloud_cv.workers MODULE:NAME``:
a fresh interpreter that imports only ``MODULE``. The caller's ``__main__`` is never imported again,
unlike :mod:`multiprocessing`'s *spawn* and *forkserver* start methods, which re-run a script that has no
``if __name__ == "__main__":`` guard; and nothing is forked, so a caller's threads and locks (logging,
OpenMP, a web server) are not copied half-held into a child.

Protocol, over the worker's stdin and stdout: the parent sends a chunk of items as one pickled list with
an 8-byte little-endian length in front; the worker answers ``("ok", results)`` or ``("error", exception)``
the same way, and exits when its stdin closes. Anything the worker's libraries print goes to its stderr,
never into the answers. Items, results and exceptions must pickle; ``function`` must be a module-level
function.

Contracts: results come back in the order of ``items``; an exception raised by ``function`` is raised
again in the caller, at the position of the item that raised it (results before it have been yielded); a
worker that dies is a :class:`~multicloud_cv.errors.MCVError` naming its exit status; closing the
generator early, or an error, stops every worker (stdin closed, then killed after a grace period) before
it returns, so no process is left behind.
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import IO, Any, TypeVar

from multicloud_cv.errors import MCVError

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_R = TypeVar("_R")

_LENGTH = struct.Struct("<Q")
#: Seconds a worker gets to exit after its stdin closes before it is killed.
_GRACE_S = 5.0


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one (a container's cpuset), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _write_frame(stream: IO[bytes], payload: Any) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)
    stream.flush()


def _read_exact(stream: IO[bytes], size: int) -> bytes | None:
    parts, left = [], size
    while left:
        part = stream.read(left)
        if not part:
            return None
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _read_frame(stream: IO[bytes]) -> Any:
    """The next pickled frame, or ``EOFError`` when the stream ends (cleanly or mid-frame)."""
    header = _read_exact(stream, _LENGTH.size)
    if header is None:
        raise EOFError
    data = _read_exact(stream, _LENGTH.unpack(header)[0])
    if data is None:
        raise EOFError
    return pickle.loads(data)


def _function_name(function: Callable[..., Any]) -> str:
    module, name = getattr(function, "__module__", None), getattr(function, "__qualname__", "")
    if not module or module == "__main__" or "<" in name or "." in name:
        raise ValueError(f"{function!r} is not a module-level function a worker process can import")
    return f"{module}:{name}"


class _Worker:
    """One worker process and the thread that feeds it chunks and collects the answers."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "multicloud_cv.workers", name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    def close_input(self) -> None:
        """Close its stdin: it exits after the chunk in hand."""
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
        except OSError:  # a worker that died: the pipe is broken
            pass

    def reap(self) -> None:
        """Wait for it to exit (after :meth:`close_input`), kill it after a grace period."""
        process = self.process
        try:
            process.wait(_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


class _Pool:
    """Hands out chunks to the workers' threads, at most ``ahead`` chunks beyond the one the consumer waits
    for, and keeps each chunk's answer until the consumer takes it (so memory stays bounded)."""

    def __init__(self, chunks: Iterator[list[Any]], ahead: int) -> None:
        self.chunks, self.ahead = chunks, ahead
        self.lock = threading.Condition()
        self.answers: dict[int, tuple[str, Any]] = {}
        self.failure: BaseException | None = None
        self.closed = False
        self.handed = self.consumed = 0
        self.total: int | None = None

    def next_chunk(self, wait: bool = True) -> tuple[int, list[Any]] | None:
        """The next chunk and its index; ``None`` when there are no more (or, with ``wait=False``, none may go now)."""
        with self.lock:
            while self.handed - self.consumed >= self.ahead and not self.closed and self.failure is None:
                if not wait:
                    return None
                self.lock.wait(0.5)
            if self.closed or self.failure is not None or self.total is not None:
                return None
            try:
                items = next(self.chunks, None)
            except BaseException as exc:  # the caller's iterable failed: raised again in the caller
                self.failure = exc
                self.lock.notify_all()
                return None
            if items is None:
                self.total = self.handed
                self.lock.notify_all()
                return None
            self.handed += 1
            return self.handed - 1, items

    def answer(self, index: int, value: tuple[str, Any]) -> None:
        with self.lock:
            self.answers[index] = value
            self.lock.notify_all()

    def fail(self, error: BaseException) -> None:
        with self.lock:
            if self.failure is None:
                self.failure = error
            self.lock.notify_all()

    def waiting(self, index: int) -> bool:
        """Whether :meth:`take` of ``index`` would block now."""
        with self.lock:
            done = self.total is not None and index >= self.total
            return index not in self.answers and self.failure is None and not done

    def take(self, index: int) -> tuple[str, Any] | None:
        """Chunk ``index``'s answer; ``None`` after the last chunk. Raises a worker's failure."""
        with self.lock:
            while index not in self.answers:
                if self.failure is not None:
                    raise self.failure
                if self.total is not None and index >= self.total:
                    return None
                self.lock.wait(0.5)
            self.consumed = index + 1
            self.lock.notify_all()
            return self.answers.pop(index)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.lock.notify_all()


def _serve(worker: _Worker, pool: _Pool) -> None:
    """Feed one worker until the chunks run out, the pool closes, or the worker fails."""
    stdin, stdout = worker.process.stdin, worker.process.stdout
    assert stdin is not None and stdout is not None
    try:
        while (chunk := pool.next_chunk()) is not None:
            index, items = chunk
            _write_frame(stdin, items)
            pool.answer(index, _read_frame(stdout))
    except (EOFError, OSError, pickle.UnpicklingError) as exc:
        if not pool.closed:
            try:
                code: int | None = worker.process.wait(_GRACE_S)  # the pipe ends as the process does
            except subprocess.TimeoutExpired:
                code = None
            status = f"exit status {code}" if code is not None else f"a broken pipe ({type(exc).__name__})"
            pool.fail(MCVError(f"a worker process stopped with {status}; see its messages above"))
    except BaseException as exc:  # an item that does not pickle, or a bug: the caller sees it
        pool.fail(exc)


def _compute(function: Callable[[Any], Any], items: list[Any]) -> tuple[str, Any]:
    """One chunk's answer: ``("ok", results)``, or ``("error", (results before it, exception))``."""
    results: list[Any] = []
    try:
        for item in items:
            results.append(function(item))
    except Exception as exc:  # the caller raises it again, after the results before it
        return "error", (results, exc)
    return "ok", results


def process_map(
    function: Callable[[_T], _R],
    items: Iterable[_T],
    processes: int,
    chunk_size: int = 16,
    inline: bool = False,
) -> Iterator[_R]:
    """``map(function, items)`` in order, computed by ``processes`` worker processes (see the module docstring).

    ``chunk_size`` items travel together (fewer round trips); at most four chunks per computing
    process (``processes``, plus the caller with ``inline``) are computed ahead of the consumer.
    ``inline=True`` lets the calling thread compute chunks too whenever the one it needs next is
    not ready (for work that is cheap to hand back but where a core would otherwise sit idle in
    the caller: ``processes`` is then one less than the cores). Raises ``ValueError`` when
    ``function`` is not importable by module and name.
    """
    if processes < 1 or chunk_size < 1:
        raise ValueError("processes and chunk_size must be at least 1")
    name = _function_name(function)
    iterator = iter(items)
    ahead = 4 * (processes + inline)
    pool = _Pool(iter(lambda: list(islice(iterator, chunk_size)), []), ahead=ahead)
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # one core a worker: no library thread pools on top
    workers: list[_Worker] = []
    threads: list[threading.Thread] = []
    try:
        for _ in range(processes):
            worker = _Worker(name, env)
            workers.append(worker)
            thread = threading.Thread(target=_serve, args=(worker, pool), daemon=True, name="mcv-worker")
            threads.append(thread)
            thread.start()
        index = 0
        while True:
            while inline and pool.waiting(index) and (claimed := pool.next_chunk(wait=False)) is not None:
                pool.answer(claimed[0], _compute(function, claimed[1]))
            if (answer := pool.take(index)) is None:
                break
            kind, value = answer
            if kind == "error":
                done, error = value
                yield from done
                raise error
            yield from value
            index += 1
    finally:
        pool.close()
        for worker in workers:  # all told first: they exit together
            worker.close_input()
        for worker in workers:
            worker.reap()
        for thread in threads:
            thread.join(_GRACE_S)


def _main(argv: Sequence[str]) -> int:
    """A worker: answer chunks on stdout until stdin closes (see the module docstring)."""
    if len(argv) != 1 or ":" not in argv[0]:
        print("usage: python -m multicloud_cv.workers MODULE:FUNCTION (started by process_map)", file=sys.stderr)
        return 2
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # whatever a library prints goes to stderr
    module, _, name = argv[0].partition(":")
    function = getattr(importlib.import_module(module), name)
    requests = sys.stdin.buffer
    try:
        while True:
            try:
                items = _read_frame(requests)
            except EOFError:
                return 0
            reply = _compute(function, items)
            try:
                _write_frame(answers, reply)
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                problem = MCVError(f"a worker's answer could not be sent back ({exc})")
                _write_frame(answers, ("error", ([], problem)))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
