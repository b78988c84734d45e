"""The life cycle every emulator object shares: options, state folder, start and stop, faults, ``mcv emulate``.

:class:`Lifecycle` is the base of the AWS emulators (through :class:`~multicloud_cv.emulation.aws.AwsEmulator`),
the Vertex AI emulator and the Custom Vision emulator. It holds what they did alike:

* the common options: ``host`` (loopback only: anything else is a ``ValueError``), ``port`` (0 picks a free
  one), ``pace`` (seconds per state, not negative) and ``state_dir`` (the emulator's work files; a temporary
  folder, removed at stop, when not given);
* :meth:`Lifecycle.start`: a fresh closing flag, the state folder, then the subclass's :meth:`Lifecycle._start`
  with an :class:`~contextlib.ExitStack` onto which it pushes whatever it starts (storage emulators, moto, the
  HTTP server through :meth:`Lifecycle._serve`); a failure part-way closes what was started and re-raises;
* :meth:`Lifecycle.stop`: sets the closing flag (runner threads stop at their next check), waits up to 10 s for
  the service's threads (never hangs on them: they are daemon threads), closes the stack in reverse order (the
  HTTP server first) and removes a temporary state folder; calling it twice, or before start, does nothing;
* ``with emulator:``, :meth:`Lifecycle.serve_forever` (``mcv emulate``), :meth:`Lifecycle.patched_environment`
  (the emulator's :meth:`~Lifecycle.environment` and :meth:`~Lifecycle.provider_settings` in ``os.environ`` for
  a block) and :meth:`Lifecycle.inject`, which queues a :class:`~multicloud_cv.emulation.faults.Fault` in the
  emulator's :class:`FaultBook`.

Testing-grade code (see :mod:`multicloud_cv.emulation`).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Self

from multicloud_cv.emulation.faults import Fault, FaultBook

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
#: Seconds a stopping emulator waits for its service's threads before it goes on without them.
JOIN_TIMEOUT_S = 10.0


class Lifecycle:
    """Start, stop and fault injection of a loopback emulator (see the module docstring).

    Subclasses set :attr:`name` (the state folder's prefix and the server thread's name) and :attr:`title`
    (for messages), implement :meth:`_start`, and set :attr:`control` there to the emulated service (any
    object with ``join(timeout) -> list[str]``, the names of threads still running).
    """

    name: ClassVar[str] = "emulator"
    title: ClassVar[str] = "emulator"

    def __init__(
        self,
        host: str = LOOPBACK,
        port: int = 0,
        pace: float = 0.05,
        state_dir: str | Path | None = None,
        faults: FaultBook | None = None,
    ) -> None:
        if host not in (LOOPBACK, "localhost"):
            raise ValueError(f"the emulator listens on 127.0.0.1 only, not {host!r}")
        if pace < 0:
            raise ValueError(f"pace must not be negative, got {pace}")
        self.host = LOOPBACK
        self.port = int(port)
        self.pace = float(pace)
        self._state_dir_given = state_dir is not None
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.faults = faults if faults is not None else FaultBook()
        self.closing = threading.Event()
        self.control: Any = None
        self._stack: contextlib.ExitStack | None = None

    # ---------------------------------------------------------------------------------------- hooks

    def _start(self, stack: contextlib.ExitStack, state_dir: Path) -> None:
        """Start the servers and the service, pushing each one's stop onto ``stack``; set :attr:`control`."""
        raise NotImplementedError

    def _where(self) -> str:
        """Where the emulator answers, for the start-up log line."""
        return f"http://{self.host}:{self.port}"

    def _serve(self, stack: contextlib.ExitStack, app: Any) -> None:
        """Serve the ASGI ``app`` on ``host:port`` in a thread that ``stack`` stops; :attr:`port` becomes the port
        bound (the socket is bound first, so a port of 0 is known before any client is told)."""
        from multicloud_cv.emulation.server import ServerThread

        server = ServerThread(app, self.host, self.port, name=f"{self.name}-emulator-http")
        stack.callback(server.stop)  # also closes the socket when start() fails
        self.port = int(server.port)
        server.start()

    # ------------------------------------------------------------------------------------------ life

    @property
    def started(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._stack is not None

    def start(self) -> Self:
        """Start the emulator (see the module docstring); return ``self``. Starting a started one does nothing."""
        if self._stack is not None:
            return self
        self.closing.clear()
        if self.state_dir is None:
            self.state_dir = Path(tempfile.mkdtemp(prefix=f"mcv-{self.name}-emulator-"))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        stack = contextlib.ExitStack()
        try:
            self._start(stack, self.state_dir)
        except BaseException:
            self.closing.set()
            stack.close()
            self._remove_state_dir()
            raise
        self._stack = stack
        log.info("%s emulator on %s, state in %s", self.title, self._where(), self.state_dir)
        return self

    def stop(self) -> None:
        """Stop the background work, then the servers; remove a temporary state folder."""
        if self._stack is None:
            return
        self.closing.set()
        try:
            if self.control is not None:
                left = self.control.join(timeout=JOIN_TIMEOUT_S)
                if left:
                    log.warning("emulator threads still running at stop: %s", ", ".join(left))
        finally:
            stack, self._stack = self._stack, None
            stack.close()
            self._remove_state_dir()
        log.info("%s emulator stopped", self.title)

    def _remove_state_dir(self) -> None:
        if not self._state_dir_given and self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self.state_dir = None

    def _need(self) -> None:
        if self._stack is None:
            raise RuntimeError(f"the {self.title} emulator is not started; use it as a context manager")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Start (when not started) and serve until interrupted (Ctrl-C or SIGTERM); then stop."""
        import signal

        self.start()
        done = threading.Event()
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, lambda *_: done.set())
        try:
            while not done.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            self.stop()

    # ---------------------------------------------------------------------------------- environment

    def environment(self) -> dict[str, str]:
        """Variables that point the cloud's SDK at the emulator (none by default)."""
        return {}

    def provider_settings(self) -> dict[str, str]:
        """``MCV_<PROVIDER>_*`` settings that make ``mcv --provider NAME`` use this emulator (none by default)."""
        return {}

    @contextlib.contextmanager
    def patched_environment(self) -> Iterator[None]:
        """Apply :meth:`environment` and :meth:`provider_settings` to ``os.environ`` for the block."""
        from multicloud_cv.testing.emulators import patched_environ

        values: dict[str, str | None] = {**self.environment(), **self.provider_settings()}
        with patched_environ(values):
            yield

    # --------------------------------------------------------------------------------------- faults

    def inject(
        self,
        operation: str | None = None,
        error: str | None = None,
        status: int | None = None,
        times: int = 1,
        after_effect: bool = False,
        message: str | None = None,
        delay: float = 0.0,
        slow: float | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Queue a fault for the next ``times`` calls of ``operation`` (``None``: any); see :mod:`.faults`.

        ``error`` (one of the service's error codes, worded by its catalogue) and/or ``status`` answer an
        error instead of serving the call (or after serving it, with ``after_effect=True``); ``delay`` holds
        the answer that many seconds; ``slow`` multiplies the pace of the resources the next ``times`` calls
        create, where the service has such resources; ``retry_after`` is the ``Retry-After`` of a throttling
        answer, where the service sends one.
        """
        self.faults.add(
            Fault(
                operation=operation,
                error=error,
                status=status,
                message=message,
                times=int(times),
                after_effect=bool(after_effect),
                delay=float(delay),
                slow=None if slow is None else float(slow),
                retry_after=None if retry_after is None else float(retry_after),
            )
        )

    def reset_faults(self) -> None:
        """Forget pending faults (and queued job failures)."""
        self.faults.clear()
