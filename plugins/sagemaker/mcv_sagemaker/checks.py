"""Pre-submit checks of a SageMaker job against the account: the failures users otherwise meet minutes later.

Each check takes boto3 clients made by the caller (region and credentials are the caller's business) and returns
:class:`~multicloud_cv.datasets.preflight.Finding` values; none raises for an AWS error. What each catches
(pains.md section 1):

* :func:`check_bucket_region`: the bucket is in another region than the job (S1; ``GetBucketLocation``, whose
  ``None``/empty answer means us-east-1 and legacy ``EU`` means eu-west-1) or does not exist;
* :func:`check_bucket_name`: the role has only ``AmazonSageMakerFullAccess``, which grants S3 on buckets named
  ``*sagemaker*`` (and ``*aws-glue*``) only, and the bucket's name has neither (S1: "403 Forbidden");
* :func:`check_role_access`: ``iam:SimulatePrincipalPolicy`` of the role for ``s3:ListBucket`` on the bucket and
  ``s3:GetObject``/``s3:PutObject`` under the data and output prefixes, with the bucket policy when readable;
* :func:`check_quota`: the account's Service Quotas value for ``<type> for training job usage`` /
  ``for endpoint usage`` / ``for transform job usage`` (service code ``sagemaker``; the applied values of
  ListServiceQuotas, and ListAWSDefaultServiceQuotas for a quota that list leaves out). Below the instance
  count: ERROR with the ResourceLimitExceeded wording (S6) and the increase command, naming types that have
  quota. A type with no quota in the region's lists: WARNING that the region may not offer it (S6: "not
  available in this region");
* :func:`check_instance_type`: the type is in the SageMaker API's enum for that use (botocore's service model,
  no request sent; our minimum availability check, as no authoritative per-region table was found) and, for
  training a built-in algorithm, in the GPU families it documents.

When the caller may not make a call (AccessDenied and the like) or the service does not implement it (moto 5.2.5
answers 500 NotImplemented for ListServiceQuotas and SimulatePrincipalPolicy, and NoSuchResourceException for
SageMaker's default quotas), the check is SKIPPED: one finding with code ``<check>-skipped`` saying what was not
checked and why, never a crash. The core's :class:`Severity` has ERROR and WARNING only; a skipped check uses
:data:`SKIPPED` (WARNING, or an INFO level should the core add one), so it never stops a job. Give the checks
clients that try once (:func:`probe_clients`): a failed probe is a skipped check, and retrying it with backoff
only delays the job.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from mcv_sagemaker.algorithms import TRAINING_INSTANCE_FAMILIES
from multicloud_cv.datasets.preflight import Finding, Severity

log = logging.getLogger(__name__)

#: Severity of a "check skipped" note: the core's INFO level if it has one, else WARNING (never an ERROR).
SKIPPED: Severity = getattr(Severity, "INFO", Severity.WARNING)

_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedAccess",
        "AuthorizationError",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
    }
)
_USAGES = {"training": "training job usage", "endpoint": "endpoint usage", "transform": "transform job usage"}
_ENUM_SHAPES = {
    "training": "TrainingInstanceType",
    "endpoint": "ProductionVariantInstanceType",
    "transform": "TransformInstanceType",
}
_FULL_ACCESS = "AmazonSageMakerFullAccess"


def _aws_errors() -> tuple[type[Exception], ...]:
    """What an AWS call may raise that means "no answer": an error response, a transport or parse failure
    (botocore's ``ResponseParserError``, e.g. an HTML 500 page where XML was due, is not a ``BotoCoreError``)."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    return (ClientError, BotoCoreError, ResponseParserError)


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "") or "")
    return ""


def _why(exc: Exception) -> str:
    """One line: why an AWS call failed, without request ids or credentials."""
    code = _error_code(exc)
    response = getattr(exc, "response", None)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") if isinstance(response, dict) else None
    if code in _DENIED_CODES:
        return f"the caller is not allowed ({code})"
    if code.isdigit() or (status is not None and int(status) >= 500):
        return f"the service answered HTTP {status or code} (it may not implement this call)"
    if code:
        message = str(response.get("Error", {}).get("Message", "")) if isinstance(response, dict) else ""
        return f"{code}: {message}".rstrip(": ")[:200]
    if type(exc).__name__ == "ResponseParserError":
        return "the service's answer could not be read (it may not implement this call)"
    return f"{type(exc).__name__}: {exc}"[:200]


def _skipped(check: str, what: str, exc: Exception, permission: str) -> Finding:
    reason = _why(exc)
    log.info("preflight check %s skipped: %s", check, reason)
    return Finding(
        SKIPPED,
        f"{check}-skipped",
        f"could not check {what}: {reason}",
        f"allow {permission} to the caller to enable this check, or go on without it",
    )


def _role_name(role_arn: str) -> str | None:
    """The role's name from ``arn:<partition>:iam::<account>:role/<path/>name``; ``None`` if not a role ARN."""
    parts = role_arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "iam" or not parts[5].startswith("role/"):
        return None
    return parts[5].rsplit("/", 1)[-1] or None


def _arn_partition(role_arn: str) -> str:
    parts = role_arn.split(":")
    return parts[1] if len(parts) > 1 and parts[1] else "aws"


def _bad_role(role_arn: str) -> Finding:
    return Finding(
        Severity.ERROR,
        "role-arn",
        f"'{role_arn}' is not an IAM role ARN",
        "pass the execution role as arn:aws:iam::<account>:role/<name>",
    )


# -- bucket ------------------------------------------------------------------------------------------------------


def bucket_region(s3: Any, bucket: str) -> str:
    """The bucket's region from ``GetBucketLocation``: ``None``/empty means us-east-1, ``EU`` eu-west-1.

    AWS errors propagate (botocore's ``ClientError``); :func:`check_bucket_region` turns them into findings.
    """
    answer = s3.get_bucket_location(Bucket=bucket)
    location = answer.get("LocationConstraint")
    if not location or location == "null":
        return "us-east-1"
    if location == "EU":
        return "eu-west-1"
    return str(location)


def check_bucket_region(s3: Any, bucket: str, region: str) -> list[Finding]:
    """ERROR when ``bucket`` is missing or in another region than the job's ``region``."""
    try:
        found = bucket_region(s3, bucket)
    except _aws_errors() as exc:
        if _error_code(exc) == "NoSuchBucket":
            return [
                Finding(
                    Severity.ERROR,
                    "bucket-missing",
                    f"bucket '{bucket}' does not exist",
                    f"create it in {region} (aws s3 mb s3://{bucket} --region {region}) or name another bucket",
                )
            ]
        return [_skipped("bucket-region", f"the region of bucket '{bucket}'", exc, "s3:GetBucketLocation")]
    if found != region:
        return [
            Finding(
                Severity.ERROR,
                "bucket-region",
                f"bucket '{bucket}' is in {found} but the job runs in {region}; SageMaker reads training data "
                "only from a bucket in the job's region",
                f"use a bucket in {region}, or run the job in {found} (-o region={found})",
            )
        ]
    return []


# -- role --------------------------------------------------------------------------------------------------------


def _paged(client: Any, operation: str, key: str, **params: Any) -> list[Any]:
    items: list[Any] = []
    for page in client.get_paginator(operation).paginate(**params):
        items.extend(page.get(key, []))
    return items


def check_bucket_name(iam: Any, bucket: str, role_arn: str) -> list[Finding]:
    """WARNING when the role's only policy is AmazonSageMakerFullAccess and the bucket is not named for it.

    The managed policy grants object access only on buckets whose name contains ``sagemaker`` (``SageMaker``,
    ``Sagemaker``; S3 names are lower case) or ``aws-glue`` (developer guide ``sagemaker-roles.md``). A bucket
    policy may still grant access, hence a warning; :func:`check_role_access` tells for sure when it can run.
    """
    name = _role_name(role_arn)
    if name is None:
        return [_bad_role(role_arn)]
    try:
        attached = _paged(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=name)
        inline = _paged(iam, "list_role_policies", "PolicyNames", RoleName=name)
    except _aws_errors() as exc:
        return [_skipped("bucket-name", f"the policies of role '{name}'", exc, "iam:ListAttachedRolePolicies")]
    arns = [str(policy.get("PolicyArn", "")) for policy in attached]
    full_access_only = not inline and len(arns) == 1 and arns[0].endswith(f":iam::aws:policy/{_FULL_ACCESS}")
    lowered = bucket.lower()
    if full_access_only and "sagemaker" not in lowered and "aws-glue" not in lowered:
        return [
            Finding(
                Severity.WARNING,
                "bucket-name",
                f"role '{name}' has only {_FULL_ACCESS}, which grants S3 object access only to buckets with "
                f"'sagemaker' in the name, and bucket '{bucket}' has none; the job would fail with "
                "'ClientError: Data download failed:failed to download data. 403 Forbidden'",
                f"use a bucket named with 'sagemaker' or attach an S3 policy for '{bucket}' to the role "
                "(mcv_sagemaker.iam.execution_role_policy writes one)",
            )
        ]
    return []


def _decisions(iam: Any, role_arn: str, actions: list[str], resource: str, **extra: Any) -> dict[str, str]:
    """Action -> the least permissive ``EvalDecision`` of the simulation for ``resource``."""
    rank = {"allowed": 0, "implicitDeny": 1, "explicitDeny": 2}
    results = _paged(
        iam,
        "simulate_principal_policy",
        "EvaluationResults",
        PolicySourceArn=role_arn,
        ActionNames=actions,
        ResourceArns=[resource],
        **extra,
    )
    decisions: dict[str, str] = {}
    for result in results:
        action = str(result.get("EvalActionName", ""))
        decision = str(result.get("EvalDecision", "implicitDeny"))
        if rank.get(decision, 1) >= rank.get(decisions.get(action, "allowed"), 0):
            decisions[action] = decision
    for action in actions:
        decisions.setdefault(action, "implicitDeny")
    return decisions


def _clean_prefix(prefix: str) -> str:
    cleaned = prefix.strip("/")
    return f"{cleaned}/" if cleaned else ""


_CONSEQUENCE = {
    "s3:ListBucket": 'CreateTrainingJob fails with "No S3 objects found under S3 URL ... has s3:ListBucket"',
    "s3:GetObject": "the job fails with 'ClientError: Data download failed:failed to download data. 403 Forbidden'",
    "s3:PutObject": "training runs, then the job fails uploading model.tar.gz (403)",
}


def check_role_access(
    iam: Any,
    role_arn: str,
    bucket: str,
    prefix: str,
    *,
    output_prefix: str | None = None,
    s3: Any = None,
) -> list[Finding]:
    """ERROR for each of s3:ListBucket (bucket), s3:GetObject (data prefix), s3:PutObject (output prefix) that
    ``iam:SimulatePrincipalPolicy`` finds the role may not do.

    With ``s3`` the bucket policy is read and simulated too; when it cannot be read, an implicit deny is a
    WARNING (the bucket policy may grant it) and an explicit deny stays an ERROR.
    """
    name = _role_name(role_arn)
    if name is None:
        return [_bad_role(role_arn)]
    partition = _arn_partition(role_arn)
    data = _clean_prefix(prefix)
    output = _clean_prefix(output_prefix) if output_prefix is not None else data
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    resource_policy: dict[str, Any] = {}
    policy_known = False
    if s3 is not None:
        try:
            resource_policy = {"ResourcePolicy": str(s3.get_bucket_policy(Bucket=bucket)["Policy"])}
            policy_known = True
        except _aws_errors() as exc:
            policy_known = _error_code(exc) == "NoSuchBucketPolicy"
    probes = [
        ("s3:ListBucket", bucket_arn, f"s3://{bucket}/{data}", {"ContextEntries": [_prefix_context(data)]}),
        ("s3:GetObject", f"{bucket_arn}/{data}mcv-preflight-probe", f"s3://{bucket}/{data}", {}),
        ("s3:PutObject", f"{bucket_arn}/{output}mcv-preflight-probe", f"s3://{bucket}/{output}", {}),
    ]
    findings: list[Finding] = []
    for action, resource, where, extra in probes:
        try:
            decision = _decisions(iam, role_arn, [action], resource, **extra, **resource_policy)[action]
        except _aws_errors() as exc:
            return [
                _skipped(
                    "role-access", f"what role '{name}' may do in bucket '{bucket}'", exc, "iam:SimulatePrincipalPolicy"
                )
            ]
        if decision == "allowed":
            continue
        severity = Severity.ERROR if decision == "explicitDeny" or policy_known else Severity.WARNING
        maybe = "" if severity is Severity.ERROR else " unless the bucket policy (unreadable here) grants it"
        findings.append(
            Finding(
                severity,
                "role-access",
                f"role '{name}' may not {action} on {where} ({decision}){maybe}; {_CONSEQUENCE[action]}",
                f"allow {action} on {where} to the role (mcv_sagemaker.iam.execution_role_policy writes the policy)",
            )
        )
    return findings


def _prefix_context(prefix: str) -> dict[str, Any]:
    return {"ContextKeyName": "s3:prefix", "ContextKeyValues": [prefix], "ContextKeyType": "string"}


# -- quotas and instance types -----------------------------------------------------------------------------------


def quota_name(instance_type: str, usage: str = "training") -> str:
    """The Service Quotas name, e.g. ``ml.p3.2xlarge for training job usage`` or ``ml.m5.xlarge for endpoint usage``."""
    try:
        return f"{instance_type} for {_USAGES[usage]}"
    except KeyError:
        raise ValueError(f"usage must be one of {', '.join(_USAGES)}, not '{usage}'") from None


def _family(instance_type: str) -> str:
    parts = instance_type.split(".")
    return parts[1] if len(parts) == 3 and parts[0] == "ml" else ""


class _Quotas:
    """The account's SageMaker quotas by lower-case name: applied values (ListServiceQuotas, which leaves out
    quotas whose applied value is not available) over AWS defaults (ListAWSDefaultServiceQuotas, read when
    needed). ``error`` is the last failure; ``known`` says whether either list could be read."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.by_name: dict[str, dict[str, Any]] = {}
        self.error: Exception | None = None
        self.known = False
        self._defaults_read = False
        self._read("list_service_quotas", override=True)

    def _read(self, operation: str, *, override: bool) -> None:
        try:
            listed = _paged(self.client, operation, "Quotas", ServiceCode="sagemaker")
        except _aws_errors() as exc:
            log.debug("%s failed: %s", operation, _why(exc))
            self.error = exc
            return
        self.known = True
        for quota in listed:
            name = str(quota.get("QuotaName", "")).lower()
            if override or name not in self.by_name:
                self.by_name[name] = quota

    def with_defaults(self) -> _Quotas:
        if not self._defaults_read:
            self._defaults_read = True
            self._read("list_aws_default_service_quotas", override=False)
        return self

    def get(self, name: str) -> dict[str, Any] | None:
        found = self.by_name.get(name.lower())
        return found if found is not None else self.with_defaults().by_name.get(name.lower())


def check_quota(
    quotas: Any,
    instance_type: str,
    *,
    usage: str = "training",
    instance_count: int = 1,
    region: str | None = None,
    families: Iterable[str] | None = None,
) -> list[Finding]:
    """ERROR when the account's quota for ``instance_type`` in this use is below ``instance_count``.

    ``quotas`` is a ``service-quotas`` client of the job's region. ``families`` limits the alternatives named in
    the fix (e.g. the GPU families an algorithm trains on).
    """
    wanted = quota_name(instance_type, usage)
    table = _Quotas(quotas)
    quota = table.get(wanted)
    if not table.known:
        assert table.error is not None
        return [_skipped(f"quota-{usage}", f"the '{wanted}' quota", table.error, "servicequotas:ListServiceQuotas")]
    suffix = f" for {_USAGES[usage]}"
    where = f" in {region}" if region else ""
    if quota is None:
        return [
            Finding(
                Severity.WARNING,
                "instance-type-region",
                f"Service Quotas lists no '{wanted}'{where}: the region may not offer {instance_type} for this use "
                f"(SageMaker would answer 'requested resource ... is not available in this region')",
                "check the instance types SageMaker offers in the region, or pick another type",
            )
        ]
    value = float(quota.get("Value", 0) or 0)
    if value >= instance_count:
        return []
    allowed = tuple(families) if families is not None else None
    alternatives = sorted(
        str(q["QuotaName"])[: -len(suffix)]
        for q in table.with_defaults().by_name.values()
        if str(q.get("QuotaName", "")).endswith(suffix)
        and float(q.get("Value", 0) or 0) >= instance_count
        and (allowed is None or _family(str(q["QuotaName"])[: -len(suffix)]) in allowed)
    )
    code = quota.get("QuotaCode", "<quota code>")
    region_option = f" --region {region}" if region else ""
    fix = (
        f"request an increase (aws service-quotas request-service-quota-increase --service-code sagemaker "
        f"--quota-code {code} --desired-value {instance_count}{region_option}; training and endpoint quotas are "
        "separate and increases can take days)"
    )
    if alternatives:
        fix += f", or use a type with quota: {', '.join(alternatives[:5])}"
    return [
        Finding(
            Severity.ERROR,
            f"quota-{usage}",
            f"the account-level service limit '{wanted}' is {value:g} Instances{where} and the job needs "
            f"{instance_count}; SageMaker would refuse it with ResourceLimitExceeded",
            fix,
        )
    ]


def check_instance_type(
    sagemaker: Any,
    instance_type: str,
    *,
    usage: str = "training",
    algorithm: str | None = None,
) -> list[Finding]:
    """ERROR when ``instance_type`` is not a SageMaker type for this use, or not a GPU type for training a
    built-in algorithm; WARNING for a GPU family the algorithm does not document. Sends no request: the enum is
    botocore's service model of the ``sagemaker`` client given."""
    shape = _ENUM_SHAPES.get(usage)
    if shape is None:
        raise ValueError(f"usage must be one of {', '.join(_ENUM_SHAPES)}, not '{usage}'")
    known = list(sagemaker.meta.service_model.shape_for(shape).enum)
    if instance_type not in known:
        close = difflib.get_close_matches(instance_type, known, n=3, cutoff=0.8)
        hint = f"did you mean {', '.join(close)}?" if close else "see the SageMaker instance types for this use"
        return [
            Finding(
                Severity.ERROR,
                "instance-type",
                f"'{instance_type}' is not a SageMaker instance type for {_USAGES[usage]}",
                hint,
            )
        ]
    if usage != "training" or algorithm not in TRAINING_INSTANCE_FAMILIES:
        return []
    documented = TRAINING_INSTANCE_FAMILIES[algorithm]
    family = _family(instance_type)
    if family in documented:
        return []
    listed = ", ".join(f"ml.{f}.*" for f in documented)
    if family.startswith(("p", "g")):
        return [
            Finding(
                Severity.WARNING,
                "instance-type-family",
                f"the {algorithm} algorithm documents training on {listed}; {instance_type} is not among them",
                f"prefer one of {listed} (e.g. ml.p3.2xlarge)",
            )
        ]
    return [
        Finding(
            Severity.ERROR,
            "instance-type-family",
            f"the {algorithm} algorithm trains on GPU instances only ({listed}); {instance_type} has no GPU",
            f"use one of {listed} (e.g. ml.p3.2xlarge or ml.g4dn.xlarge)",
        )
    ]


# -- all of them ------------------------------------------------------------------------------------------------


def run_checks(
    client: Callable[[str], Any],
    *,
    region: str,
    bucket: str | None,
    prefix: str,
    role_arn: str | None,
    training_instance_type: str | None = None,
    training_instance_count: int = 1,
    hosting_instance_type: str | None = None,
    hosting_instance_count: int = 1,
    algorithm: str | None = None,
    output_prefix: str | None = None,
) -> list[Finding]:
    """Every check above for one planned training run; errors first.

    ``client(name)`` makes a boto3 client (``s3``, ``iam``, ``service-quotas``, ``sagemaker``) for the job's
    region, best without retries (:func:`probe_clients`). Checks that need a missing ``bucket`` or ``role_arn``
    are left out. The hosting type is checked now because its quota is separate and users meet it only after
    training (pains.md S6), but its findings are WARNINGs here: they stop a deploy, not a training job.
    """
    findings: list[Finding] = []
    if bucket:
        s3 = client("s3")
        findings += check_bucket_region(s3, bucket, region)
        if role_arn:
            iam = client("iam")
            access = check_role_access(iam, role_arn, bucket, prefix, output_prefix=output_prefix, s3=s3)
            findings += access
            if access:  # the simulation was skipped or found a gap: the managed-policy rule may explain it
                findings += check_bucket_name(iam, bucket, role_arn)
    families = TRAINING_INSTANCE_FAMILIES.get(algorithm or "")
    planned = [
        ("training", training_instance_type, training_instance_count, families),
        ("endpoint", hosting_instance_type, hosting_instance_count, None),
    ]
    sagemaker = quotas = None
    for usage, instance_type, count, allowed in planned:
        if not instance_type:
            continue
        sagemaker = sagemaker or client("sagemaker")
        found = check_instance_type(sagemaker, instance_type, usage=usage, algorithm=algorithm)
        if not any(f.code == "instance-type" for f in found):
            quotas = quotas or client("service-quotas")
            found += check_quota(
                quotas, instance_type, usage=usage, instance_count=count, region=region, families=allowed
            )
        if usage == "endpoint":
            found = [_later(f) for f in found]
        findings += found
    return sorted(findings, key=lambda f: f.severity is not Severity.ERROR)


def _later(finding: Finding) -> Finding:
    if finding.severity is not Severity.ERROR:
        return finding
    return replace(finding, severity=Severity.WARNING, message=f"{finding.message} (deploying will fail)")


def probe_clients(session: Any, region: str) -> Callable[[str], Any]:
    """A client factory for the checks: clients of ``session`` in ``region`` that try each call once, with short
    timeouts. A probe that fails is a skipped check (said so in its finding), so retrying it with backoff only
    delays the job: against a server that answers 500 for an API it lacks (moto), botocore's standard retries
    cost seconds per call. Endpoint settings (``AWS_ENDPOINT_URL*``) apply as to any client of the session."""
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=5,
        read_timeout=20,
        user_agent_extra="multicloud-cv-preflight",
    )
    made: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in made:
            made[service] = session.client(service, region_name=region, config=config)
        return made[service]

    return client


def run_all(aws: Any, options: Any) -> list[Finding]:
    """:func:`run_checks` from the provider's objects: ``aws`` has ``session`` (a boto3 session; else
    ``client(name)`` is used as it is) and ``region``; ``options`` has ``bucket``, ``prefix``, ``role_arn``,
    ``instance_type``, ``instance_count``, ``endpoint_instance_type`` and ``endpoint_instance_count``. The output
    prefix is ``<prefix>/output``, where the provider writes models."""
    prefix = str(getattr(options, "prefix", "") or "")
    session = getattr(aws, "session", None)
    client = probe_clients(session, aws.region) if session is not None else aws.client
    return run_checks(
        client,
        region=aws.region,
        bucket=getattr(options, "bucket", None),
        prefix=prefix,
        role_arn=getattr(options, "role_arn", None),
        training_instance_type=getattr(options, "instance_type", None),
        training_instance_count=int(getattr(options, "instance_count", 1) or 1),
        hosting_instance_type=getattr(options, "endpoint_instance_type", None),
        hosting_instance_count=int(getattr(options, "endpoint_instance_count", 1) or 1),
        algorithm=getattr(options, "algorithm", None),
        output_prefix=f"{prefix}/output",
    )
