"""The worked example provider (examples/centroid-provider, provider ``centroid``).

It passes the whole conformance suite like any provider, and its own contracts hold: the
state table, the setting, NotFound from the pretend service, lazy imports, the CLI path.
Needs ``pip install -e examples/centroid-provider`` (scripts/setup.sh does it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mcv_centroid.provider import ENDPOINT_STATES, JOB_STATES, service_dir
from multicloud_cv.datasets import Dataset, load_dataset
from multicloud_cv.errors import BadInput, ConfigError, JobFailed, NotFound, UnsupportedFeature
from multicloud_cv.interfaces import TrainingSpec
from multicloud_cv.registry import registry
from multicloud_cv.runs import RunStore
from multicloud_cv.states import EndpointState, JobState
from multicloud_cv.testing import ProviderConformance, make_tiny_dataset, validate_document

ROOT = Path(__file__).resolve().parent.parent


def run_mcv(*args: str) -> subprocess.CompletedProcess[str]:
    """The real ``mcv`` command in a subprocess (environment inherited: the test's MCV_HOME)."""
    return subprocess.run(
        [sys.executable, "-m", "multicloud_cv.cli.main", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


class TestCentroidConformance(ProviderConformance):
    """The shipped suite, unchanged. On the suite's (deterministic) shapes the model scores 15/18 = 0.83."""

    provider_name = "centroid"
    min_accuracy = 0.8


@pytest.fixture()
def dataset(tmp_path: Path) -> Dataset:
    return load_dataset(make_tiny_dataset(tmp_path / "shapes", classes=3, train_per_class=8, test_per_class=4))


def test_state_tables_cover_every_word_the_service_writes(dataset: Dataset) -> None:
    assert JOB_STATES["Completed"] is JobState.SUCCEEDED and JOB_STATES["Failed"] is JobState.FAILED
    assert ENDPOINT_STATES["InService"] is EndpointState.READY
    job = registry().trainer("centroid").train(TrainingSpec(dataset=dataset))
    assert (job.state, job.native_state) == (JobState.SUCCEEDED, "Completed")
    assert job.metrics["train_accuracy"] > 0.5 and job.cost_usd == 0.0


def test_unreadable_training_image_fails_the_job_with_the_file_named(dataset: Dataset) -> None:
    broken = dataset.absolute(dataset.split("train")[0])
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    trainer = registry().trainer("centroid")
    with pytest.raises(JobFailed, match=broken.name):
        trainer.train(TrainingSpec(dataset=dataset))
    job = RunStore().jobs()[-1]
    assert (job.state, job.native_state, job.model_id) == ("FAILED", "Failed", None)


def test_thumbnail_size_setting_from_override_and_environment(
    dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = registry().trainer("centroid", overrides={"thumbnail_size": "4"}).train(TrainingSpec(dataset=dataset))
    artifact = RunStore().model(job.model_id or "").artifact
    assert json.loads(Path(artifact or "").read_text())["thumbnail_size"] == 4
    monkeypatch.setenv("MCV_CENTROID_THUMBNAIL_SIZE", "0")
    with pytest.raises(ConfigError, match="thumbnail_size='0'"):
        registry().trainer("centroid").submit(TrainingSpec(dataset=dataset))
    with pytest.raises(ConfigError, match="unknown setting 'thumbnail'"):
        registry().trainer("centroid", overrides={"thumbnail": "4"})


def test_bad_requests_are_refused_before_anything_is_recorded(dataset: Dataset) -> None:
    trainer = registry().trainer("centroid")
    with pytest.raises(BadInput, match="no hyperparameters"):
        trainer.submit(TrainingSpec(dataset=dataset, hyperparameters={"lr": 0.1}))
    with pytest.raises(UnsupportedFeature, match="compute:gpu: training is a few additions"):
        trainer.submit(TrainingSpec(dataset=dataset, compute="gpu"))
    assert RunStore().jobs() == []
    assert not service_dir().exists(), "nothing reached the service"


def test_plan_shows_the_native_request_and_sends_nothing(dataset: Dataset) -> None:
    plan = registry().trainer("centroid").plan(TrainingSpec(dataset=dataset))
    [request] = plan.requests
    assert request.operation == "CreateCentroidJob"
    assert request.params["TrainImages"] == 24 and request.params["ThumbnailSize"] == 8
    assert RunStore().jobs() == [] and not service_dir().exists()


def test_finished_job_cancel_changes_nothing_and_logs_are_kept(dataset: Dataset) -> None:
    trainer = registry().trainer("centroid")
    job = trainer.train(TrainingSpec(dataset=dataset))
    assert trainer.cancel(job.id).state is JobState.SUCCEEDED
    assert any("train accuracy" in line for line in trainer.logs(job.id))
    with pytest.raises(UnsupportedFeature, match="resume: training finishes inside submit"):
        trainer.resume(job.id)


def test_endpoint_deleted_behind_our_back_undeploys_cleanly(dataset: Dataset) -> None:
    reg = registry()
    job = reg.trainer("centroid").train(TrainingSpec(dataset=dataset))
    deployer = reg.deployer("centroid")
    endpoint = deployer.deploy(job.model_id or "")
    record = RunStore().endpoint(endpoint.id)
    deployer._undeploy(record)  # someone deletes it at the service
    with pytest.raises(NotFound, match="already deleted"):
        deployer._undeploy(record)
    assert deployer.undeploy(endpoint.id).state is EndpointState.DELETED
    with pytest.raises(UnsupportedFeature, match="endpoint_ttl"):
        deployer.deploy(job.model_id or "", ttl_s=3600)


def test_predict_top_k_threshold_and_raw_answer(dataset: Dataset) -> None:
    reg = registry()
    job = reg.trainer("centroid").train(TrainingSpec(dataset=dataset))
    endpoint = reg.deployer("centroid").deploy(job.model_id or "")
    image = dataset.absolute(dataset.split("test")[0])
    full = reg.predictor("centroid").predict(endpoint.id, image)
    assert len(full.labels) == 3 and abs(sum(label.confidence for label in full.labels) - 1.0) < 1e-9
    assert full.raw is not None and set(full.raw["distances"]) == set(dataset.classes)
    assert len(reg.predictor("centroid").predict(endpoint.id, image, top_k=1).labels) == 1
    assert reg.predictor("centroid").predict(endpoint.id, image, threshold=1.0).labels == []


def test_entry_point_module_imports_no_pillow_or_pydantic() -> None:
    code = (
        "import sys, mcv_centroid.provider; "
        "print(sorted(m for m in ('PIL', 'pydantic', 'numpy', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_end_to_end(tmp_path: Path) -> None:
    data = make_tiny_dataset(tmp_path / "shapes", classes=2, train_per_class=6, test_per_class=3)
    trained = run_mcv("train", "--provider", "centroid", "--dataset", str(data), "--json", "-o", "thumbnail_size=6")
    assert trained.returncode == 0, trained.stderr
    job = json.loads(trained.stdout)
    validate_document("job", job)
    deployed = run_mcv("deploy", job["model_id"], "--json")
    assert deployed.returncode == 0, deployed.stderr
    endpoint = json.loads(deployed.stdout)
    predicted = run_mcv("predict", endpoint["id"], str(data / "test"), "--json")
    assert predicted.returncode == 0, predicted.stderr
    validate_document("prediction_list", json.loads(predicted.stdout))
    listed = run_mcv("endpoints", "--json")
    assert [e["id"] for e in json.loads(listed.stdout)["endpoints"]] == [endpoint["id"]]
    assert run_mcv("undeploy", endpoint["id"]).returncode == 0
    assert run_mcv("undeploy", endpoint["id"]).returncode == 0  # idempotent
    refused = run_mcv("train", "--provider", "centroid", "--dataset", str(data), "--compute", "gpu")
    assert refused.returncode == 2 and "compute:gpu" in refused.stderr


def test_doc_excerpts_match_the_example_files() -> None:
    doc = ROOT / "docs" / "writing-a-provider.md"
    excerpts = re.findall(r"<!-- excerpt: (\S+) -->\n```\w*\n(.*?)\n```", doc.read_text(encoding="utf-8"), re.S)
    assert len(excerpts) >= 15
    stale = [path for path, body in excerpts if body not in (ROOT / path).read_text(encoding="utf-8")]
    assert not stale, f"{doc} quotes code that is no longer in {sorted(set(stale))}; update the excerpts"
