"""Who can read the bucket a Vertex AI job reads: the caller, the Vertex AI service agents, the job's account.

pains.md V5: jobs and imports fail after they start with ``Service account service-...@gcp-sa-aiplatform.iam.
gserviceaccount.com does not have [storage.objects.get] IAM permission(s)``. Before anything is created,
:func:`bucket_access` asks Cloud Storage:

* for the caller, ``testIamPermissions`` on the bucket with what staging needs (:data:`CALLER_PERMISSIONS`); a
  missing permission is an error naming it (nothing can be staged without it);
* for the principals Vertex AI reads the data as, the bucket's IAM policy: the custom route's job runs as
  ``service_account`` or, by default, the Vertex AI Custom Code Service Agent
  (``service-<project number>@gcp-sa-aiplatform-cc.iam.gserviceaccount.com``); AutoML's import reads as the Vertex
  AI Service Agent (``service-<project number>@gcp-sa-aiplatform.iam.gserviceaccount.com``). A principal without a
  reading role on the bucket is a WARNING naming the fix, not an error: a grant on the project also gives access
  and is not visible in the bucket's policy.

Each check that cannot run (no permission to read the policy, the project number unknown) is skipped with a note
saying why, as the issue asks. Everything here is pure but the two storage calls, so the rules are tested on
plain data and the calls against gcp-storage-emulator.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

CALLER_PERMISSIONS = ("storage.objects.create", "storage.objects.get", "storage.objects.list")
#: Bucket roles that let a principal read objects (the predefined and legacy roles with storage.objects.get).
READ_ROLES = frozenset(
    {
        "roles/storage.objectViewer",
        "roles/storage.objectUser",
        "roles/storage.objectAdmin",
        "roles/storage.admin",
        "roles/storage.legacyObjectReader",
        "roles/storage.legacyObjectOwner",
    }
)


@dataclass
class Access:
    """What the checks found: errors (stop), warnings (shown), notes (a check skipped and why)."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def agents(project_number: str | None, route: str, service_account: str | None) -> dict[str, str]:
    """``{what: member}`` of the principals that read the staged data for ``route``."""
    found: dict[str, str] = {}
    if route == "automl":
        if project_number:
            found["the Vertex AI Service Agent"] = (
                f"serviceAccount:service-{project_number}@gcp-sa-aiplatform.iam.gserviceaccount.com"
            )
        return found
    if service_account:
        found["the job's service account"] = f"serviceAccount:{service_account}"
    elif project_number:
        found["the Vertex AI Custom Code Service Agent"] = (
            f"serviceAccount:service-{project_number}@gcp-sa-aiplatform-cc.iam.gserviceaccount.com"
        )
    return found


def caller_problems(bucket: str, granted: Iterable[str]) -> list[str]:
    """An error per permission staging needs that ``testIamPermissions`` did not grant."""
    missing = sorted(set(CALLER_PERMISSIONS) - set(granted))
    if not missing:
        return []
    return [
        f"you lack {', '.join(missing)} on gs://{bucket}: ask for roles/storage.objectAdmin on the bucket "
        "(mcv stages the dataset and the training package there)"
    ]


def reader_warnings(bucket: str, bindings: Iterable[Mapping[str, Any]], principals: Mapping[str, str]) -> list[str]:
    """A warning per principal that no reading role of the bucket's policy names (nor allUsers)."""
    readers: set[str] = set()
    for binding in bindings:
        if str(binding.get("role")) in READ_ROLES:
            readers |= {str(m) for m in binding.get("members") or []}
    out = []
    for what, member in principals.items():
        if member in readers or "allUsers" in readers:
            continue
        account = member.removeprefix("serviceAccount:")
        out.append(
            f"{what} ({account}) has no reading role on gs://{bucket}; unless the project grants it, the job fails "
            f"with 'does not have [storage.objects.get]': gcloud storage buckets add-iam-policy-binding gs://{bucket} "
            f"--member={member} --role=roles/storage.objectViewer"
        )
    return out


def bucket_access(
    storage: Any, bucket: str, project_number: str | None, route: str, service_account: str | None
) -> Access:
    """Run both checks with a google-cloud-storage client (see the module docstring)."""
    from google.api_core import exceptions

    found = Access()
    handle = storage.bucket(bucket)
    try:
        granted = handle.test_iam_permissions(list(CALLER_PERMISSIONS))
    except exceptions.GoogleAPICallError as exc:
        found.notes.append(f"caller permission check skipped: {exc.message}")
    else:
        found.errors += caller_problems(bucket, granted)
    principals = agents(project_number, route, service_account)
    if not principals:
        found.notes.append("service agent access check skipped: the project number is unknown (set -o project_number=)")
        return found
    try:
        policy = handle.get_iam_policy(requested_policy_version=3)
    except exceptions.GoogleAPICallError as exc:
        found.notes.append(f"service agent access check skipped: cannot read the bucket's policy ({exc.message})")
        return found
    found.warnings += reader_warnings(bucket, policy.bindings, principals)
    return found


def quota_limit(infos: Iterable[Any], metric: str, region: str) -> int | None:
    """The limit of ``metric`` in ``region`` among Cloud Quotas ``QuotaInfo`` messages (``-1``: unlimited);
    ``None`` when no info names the metric. A region-less dimensions info is the default for every region."""
    default: int | None = None
    for info in infos:
        if str(info.metric) != metric:
            continue
        for dims in info.dimensions_infos:
            value = int(dims.details.value)
            where = dict(dims.dimensions).get("region")
            if where == region or region in list(dims.applicable_locations or []):
                return value
            if not where:
                default = value
    return default


def quota_problems(limits: Mapping[str, int | None], needed: Mapping[str, int], region: str) -> list[str]:
    """An error per accelerator whose regional limit is below what the job needs (pains.md V1's rejection, found
    before the job is queued). ``limits`` maps each quota metric to its limit (``None``: unknown, not checked)."""
    out = []
    for metric, count in needed.items():
        limit = limits.get(metric)
        if limit is None or limit < 0 or count <= limit:
            continue
        out.append(
            f"The following quota metrics exceed quota limits: {metric} (limit {limit} in {region}, the job needs "
            f"{count}): request more in the console's Quotas page, or move with -o fallback=<accelerator or region>"
        )
    return out


def accelerator_quota(
    credentials: Any, project: str, region: str, needed: Mapping[str, int], api_endpoint: str | None
) -> Access:
    """Read the limits of ``needed``'s metrics with the Cloud Quotas API and compare; skipped with a note when the
    API cannot be read (not enabled, no permission)."""
    from google.api_core import exceptions

    found = Access()
    if not needed:
        return found
    try:
        from google.api_core.client_options import ClientOptions
        from google.cloud import cloudquotas_v1

        options = ClientOptions(api_endpoint=api_endpoint) if api_endpoint else None
        client = cloudquotas_v1.CloudQuotasClient(credentials=credentials, transport="rest", client_options=options)
        infos = list(
            client.list_quota_infos(parent=f"projects/{project}/locations/global/services/aiplatform.googleapis.com")
        )
    except ImportError:
        found.notes.append("quota check skipped: google-cloud-quotas is not installed")
        return found
    except exceptions.GoogleAPICallError as exc:
        found.notes.append(f"quota check skipped: the Cloud Quotas API answered {exc.message}")
        return found
    limits = {metric: quota_limit(infos, metric, region) for metric in needed}
    found.errors += quota_problems(limits, needed, region)
    return found
