"""Custom jobs forked from the emulator's pre-imported parent: exit statuses, output files, nothing left behind."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from mcv_vertex.emulator.prefork import Prefork

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="jobs are plain subprocesses without os.fork")


def test_forked_jobs_exit_like_the_task_and_write_their_own_files(tmp_path: Path) -> None:
    prefork = Prefork()
    try:
        env = {**os.environ, "MCV_PREFORK_TEST": "1"}
        helped = prefork.start(["--help"], env, tmp_path, tmp_path / "help.out", tmp_path / "help.err")
        assert helped is not None and helped.wait(60) == 0 and helped.pid != os.getpid()
        assert "--dataset" in (tmp_path / "help.out").read_text()
        wrong = prefork.start(["--no-such-flag"], env, tmp_path, tmp_path / "bad.out", tmp_path / "bad.err")
        assert wrong is not None and wrong.wait(60) == 2 and wrong.poll() == 2
        assert "error: the following arguments are required: --dataset" in (tmp_path / "bad.err").read_text()
        parent = prefork._process
        assert parent is not None and parent.poll() is None
    finally:
        prefork.close()
    assert parent.poll() is not None  # stopped with the emulator
    assert prefork.start(["--help"], env, tmp_path, tmp_path / "a", tmp_path / "b") is None  # closed: subprocesses


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_a_killed_job_reports_the_signal(tmp_path: Path) -> None:
    prefork = Prefork()
    try:
        job = prefork.start(["--help"], dict(os.environ), tmp_path, tmp_path / "o", tmp_path / "e")
        assert job is not None
        job.kill()
        assert job.wait(60) in (0, -9)  # it may have finished first; either way it is reaped and reported
    finally:
        prefork.close()
