"""The bucket access checks (pains.md V5): the rules on plain data, the calls against gcp-storage-emulator."""

from __future__ import annotations

from typing import Any

import pytest

from mcv_vertex.checks import CALLER_PERMISSIONS, agents, bucket_access, caller_problems, reader_warnings
from multicloud_cv.testing.emulators import gcs_emulator

AGENT = "serviceAccount:service-123@gcp-sa-aiplatform-cc.iam.gserviceaccount.com"


def test_the_principals_of_each_route() -> None:
    assert agents("123", "custom", None) == {"the Vertex AI Custom Code Service Agent": AGENT}
    assert agents("123", "custom", "trainer@p.iam.gserviceaccount.com") == {
        "the job's service account": "serviceAccount:trainer@p.iam.gserviceaccount.com"
    }
    assert list(agents("123", "automl", "x@y")) == ["the Vertex AI Service Agent"]
    assert agents(None, "automl", None) == {}


def test_caller_needs_every_staging_permission() -> None:
    assert caller_problems("b", CALLER_PERMISSIONS) == []
    (problem,) = caller_problems("b", ["storage.objects.get"])
    assert "storage.objects.create, storage.objects.list" in problem and "gs://b" in problem


def test_reader_roles() -> None:
    principals = {"agent": AGENT}
    assert reader_warnings("b", [{"role": "roles/storage.objectViewer", "members": [AGENT]}], principals) == []
    assert (
        reader_warnings("b", [{"role": "roles/storage.legacyObjectReader", "members": ["allUsers"]}], principals) == []
    )
    (warning,) = reader_warnings("b", [{"role": "roles/storage.legacyBucketReader", "members": [AGENT]}], principals)
    assert "--role=roles/storage.objectViewer" in warning and f"--member={AGENT}" in warning


@pytest.fixture(scope="module")
def gcs() -> Any:
    with gcs_emulator() as server:
        server.create_bucket("mcv-access-test")
        with server.environment():
            from google.cloud import storage  # type: ignore[attr-defined]

            yield storage.Client(project="emulated")


def test_against_cloud_storage(gcs: Any) -> None:
    bucket = gcs.bucket("mcv-access-test")
    policy = bucket.get_iam_policy(requested_policy_version=3)
    policy.bindings = [{"role": "roles/storage.admin", "members": {"user:owner@example.com"}}]
    bucket.set_iam_policy(policy)
    found = bucket_access(gcs, "mcv-access-test", "123", "custom", None)
    assert found.errors == [] and len(found.warnings) == 1 and "Custom Code Service Agent" in found.warnings[0]
    policy.bindings = [{"role": "roles/storage.objectViewer", "members": {AGENT}}]
    bucket.set_iam_policy(policy)
    assert bucket_access(gcs, "mcv-access-test", "123", "custom", None).warnings == []
    skipped = bucket_access(gcs, "mcv-access-test", None, "automl", None)
    assert skipped.warnings == [] and "project number is unknown" in skipped.notes[0]


def test_quota_limits_by_region() -> None:
    from google.cloud import cloudquotas_v1 as q

    from mcv_vertex.checks import quota_limit, quota_problems

    metric = "aiplatform.googleapis.com/custom_model_training_nvidia_t4_gpus"
    info = q.QuotaInfo(
        metric=metric,
        dimensions_infos=[
            q.DimensionsInfo(dimensions={"region": "us-central1"}, details=q.QuotaDetails(value=0)),
            q.DimensionsInfo(dimensions={}, details=q.QuotaDetails(value=4)),
        ],
    )
    assert quota_limit([info], metric, "us-central1") == 0
    assert quota_limit([info], metric, "europe-west4") == 4  # the region-less default
    assert quota_limit([info], "aiplatform.googleapis.com/other", "us-central1") is None
    (problem,) = quota_problems({metric: 0}, {metric: 1}, "us-central1")
    assert problem.startswith("The following quota metrics exceed quota limits: " + metric)
    assert quota_problems({metric: -1}, {metric: 64}, "us-central1") == []  # unlimited
    assert quota_problems({metric: None}, {metric: 1}, "us-central1") == []  # unknown: not checked
