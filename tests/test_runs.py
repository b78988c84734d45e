"""Run records in SQLite: written by one process, read by another, never half-written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from multicloud_cv.errors import NotFound
from multicloud_cv.runs import EndpointRecord, JobRecord, ModelRecord, RunStore, mcv_home


def test_mcv_home_defaults_to_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MCV_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert mcv_home() == tmp_path / "data" / "mcv"
    monkeypatch.setenv("MCV_HOME", str(tmp_path / "elsewhere"))
    assert mcv_home() == tmp_path / "elsewhere"


def test_job_round_trip_and_update(mcv_home: Path) -> None:
    store = RunStore()
    store.add_job(JobRecord(id="job-1", provider="local", state="QUEUED", spec={"epochs": 2}))
    updated = store.update_job("job-1", state="RUNNING", metrics={"val_accuracy": 0.5})
    assert updated.state == "RUNNING" and updated.metrics == {"val_accuracy": 0.5} and updated.spec == {"epochs": 2}
    assert (mcv_home / "runs.sqlite").exists()


def test_unknown_ids_raise_not_found() -> None:
    store = RunStore()
    for lookup in (store.job, store.model, store.endpoint):
        with pytest.raises(NotFound, match=r"no (job|model|endpoint) 'nope'"):
            lookup("nope")
    with pytest.raises(NotFound):
        store.update_job("nope", state="FAILED")


def test_another_process_sees_the_records(mcv_home: Path) -> None:
    store = RunStore()
    store.add_model(ModelRecord(id="model-1", provider="local", labels=["a", "b"]))
    store.add_endpoint(EndpointRecord(id="ep-1", provider="local", model_id="model-1", state="READY"))
    code = (
        "from multicloud_cv.runs import RunStore; s = RunStore(); "
        "print(s.model('model-1').labels, s.endpoint('ep-1').state)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['a', 'b'] READY"


def test_deleted_endpoints_hidden_by_default() -> None:
    store = RunStore()
    store.add_model(ModelRecord(id="m", provider="local"))
    store.add_endpoint(EndpointRecord(id="e1", provider="local", model_id="m", state="READY"))
    store.add_endpoint(EndpointRecord(id="e2", provider="local", model_id="m", state="DELETED"))
    assert [e.id for e in store.endpoints()] == ["e1"]
    assert [e.id for e in store.endpoints(include_deleted=True)] == ["e1", "e2"]


def test_failed_transaction_leaves_nothing(mcv_home: Path) -> None:
    store = RunStore()
    store.add_job(JobRecord(id="job-1", provider="local", state="QUEUED"))
    with pytest.raises(Exception, match="UNIQUE"):
        store.add_job(JobRecord(id="job-1", provider="local", state="QUEUED"))
    assert len(store.jobs()) == 1
