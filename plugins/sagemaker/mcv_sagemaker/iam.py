"""The least-privilege IAM policies a SageMaker run needs: one for the caller, one for the execution role.

:func:`least_privilege_policy` is what the identity running ``mcv`` needs: the SageMaker operations on resources
named ``mcv-*`` (training jobs, models, endpoint configs, endpoints, transform jobs), ``InvokeEndpoint``,
``iam:PassRole`` limited by ``iam:PassedToService = sagemaker.amazonaws.com``, S3 on the run's bucket and prefix,
the preflight reads (:mod:`mcv_sagemaker.checks`: ``s3:GetBucketLocation``, ``s3:GetBucketPolicy``,
``iam:SimulatePrincipalPolicy`` and the role listing calls, Service Quotas reads) and the job's CloudWatch logs.

:func:`execution_role_policy` is what the role passed to SageMaker needs: the developer guide's
``CreateTrainingJob``/``CreateModel`` execution-role policy (``sagemaker-roles.md``) scoped as the guide
advises: ``s3:ListBucket`` on the bucket, reads of the data prefix, writes of the output prefix, pulls of the
algorithm's ECR repository (account from :mod:`mcv_sagemaker.image_uris`), and the ``logs``/``cloudwatch``
actions, which apply to ``*`` only.

Both are plain ``dict`` policy documents (``Version`` 2012-10-17), ready for ``json.dumps`` and
``iam.create_policy``. ``account=None`` writes ``*`` for the account in ARNs. List operations take no resource
ARN in SageMaker's authorization model, so they are granted on ``*``.
"""

from __future__ import annotations

from typing import Any

from mcv_sagemaker.algorithms import ALGORITHMS
from mcv_sagemaker.image_uris import partition, registry_account, repository

POLICY_VERSION = "2012-10-17"
#: Every SageMaker resource ``mcv`` creates is named with this prefix (the lead's provider keeps to it).
NAME_PREFIX = "mcv-"

_SAGEMAKER_RESOURCE_ACTIONS: dict[str, tuple[str, ...]] = {
    "training-job": ("CreateTrainingJob", "DescribeTrainingJob", "StopTrainingJob"),
    "model": ("CreateModel", "DescribeModel", "DeleteModel"),
    "endpoint-config": ("CreateEndpointConfig", "DescribeEndpointConfig", "DeleteEndpointConfig"),
    "endpoint": ("CreateEndpoint", "DescribeEndpoint", "DeleteEndpoint", "UpdateEndpoint", "InvokeEndpoint"),
    "transform-job": ("CreateTransformJob", "DescribeTransformJob", "StopTransformJob"),
}
_SAGEMAKER_LIST_ACTIONS = (
    "ListTrainingJobs",
    "ListModels",
    "ListEndpointConfigs",
    "ListEndpoints",
    "ListTransformJobs",
)


def _prefix(prefix: str) -> str:
    """``prefix`` without a leading slash and, unless empty, with one trailing slash."""
    cleaned = prefix.strip("/")
    return f"{cleaned}/" if cleaned else ""


def _allow(
    sid: str, actions: list[str], resources: list[str] | str, condition: dict[str, Any] | None = None
) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def _s3_statements(
    arn: str, bucket: str, read_prefixes: list[str], write_prefixes: list[str], sid: str
) -> list[dict[str, Any]]:
    bucket_arn = f"arn:{arn}:s3:::{bucket}"
    listed = sorted({p for p in read_prefixes + write_prefixes})
    statements = [
        _allow(
            f"{sid}ListPrefix", ["s3:ListBucket"], bucket_arn, {"StringLike": {"s3:prefix": [f"{p}*" for p in listed]}}
        ),
        _allow(f"{sid}BucketLocation", ["s3:GetBucketLocation"], bucket_arn),
        _allow(f"{sid}Read", ["s3:GetObject"], [f"{bucket_arn}/{p}*" for p in sorted(set(read_prefixes))]),
    ]
    if write_prefixes:
        statements.append(
            _allow(
                f"{sid}Write",
                ["s3:PutObject", "s3:AbortMultipartUpload"],
                [f"{bucket_arn}/{p}*" for p in sorted(set(write_prefixes))],
            )
        )
    return statements


def least_privilege_policy(
    bucket: str,
    prefix: str,
    region: str,
    account: str | None = None,
    *,
    role_name: str | None = None,
) -> dict[str, Any]:
    """The policy document for the identity that runs ``mcv`` against ``s3://bucket/prefix`` in ``region``.

    ``role_name`` narrows ``iam:PassRole`` (and the role reads of the preflight) to that execution role;
    without it any role may be passed, but only to SageMaker (the condition every AWS example uses).
    """
    arn = partition(region)
    acct = account or "*"
    data = _prefix(prefix)
    role_arn = f"arn:{arn}:iam::{acct}:role/{role_name}" if role_name else f"arn:{arn}:iam::{acct}:role/*"
    sagemaker_resources = {
        kind: f"arn:{arn}:sagemaker:{region}:{acct}:{kind}/{NAME_PREFIX}*" for kind in _SAGEMAKER_RESOURCE_ACTIONS
    }
    statements: list[dict[str, Any]] = []
    for kind, actions in _SAGEMAKER_RESOURCE_ACTIONS.items():
        sid = "SageMaker" + "".join(part.capitalize() for part in kind.split("-"))
        statements.append(
            _allow(sid, [f"sagemaker:{a}" for a in (*actions, "AddTags", "ListTags")], sagemaker_resources[kind])
        )
    statements.append(_allow("SageMakerList", [f"sagemaker:{a}" for a in _SAGEMAKER_LIST_ACTIONS], "*"))
    statements.append(
        _allow(
            "PassExecutionRoleToSageMaker",
            ["iam:PassRole"],
            role_arn,
            {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )
    )
    statements.append(
        _allow(
            "PreflightRoleChecks",
            ["iam:SimulatePrincipalPolicy", "iam:GetRole", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies"],
            role_arn,
        )
    )
    statements.append(
        _allow(
            "PreflightQuotas",
            [
                "servicequotas:GetServiceQuota",
                "servicequotas:ListServiceQuotas",
                "servicequotas:ListAWSDefaultServiceQuotas",
            ],
            "*",
        )
    )
    statements += _s3_statements(arn, bucket, [data], [data], "Data")
    statements.append(
        _allow(
            "DataCleanup",
            ["s3:DeleteObject"],
            f"arn:{arn}:s3:::{bucket}/{data}*",
        )
    )
    statements.append(_allow("PreflightBucketPolicy", ["s3:GetBucketPolicy"], f"arn:{arn}:s3:::{bucket}"))
    statements.append(
        _allow(
            "JobLogs",
            ["logs:DescribeLogStreams", "logs:GetLogEvents", "logs:FilterLogEvents"],
            f"arn:{arn}:logs:{region}:{acct}:log-group:/aws/sagemaker/*",
        )
    )
    return {"Version": POLICY_VERSION, "Statement": statements}


def execution_role_policy(
    bucket: str,
    prefix: str,
    region: str,
    account: str | None = None,
    *,
    output_prefix: str | None = None,
    algorithms: tuple[str, ...] = ALGORITHMS,
) -> dict[str, Any]:
    """The policy document for the execution role SageMaker assumes for the run's jobs and models.

    The role reads ``s3://bucket/prefix`` (data and, for models, ``model.tar.gz``) and writes ``output_prefix``
    (default: ``prefix``); it pulls the images of ``algorithms`` from their registry in ``region``.
    Trust policy (not part of this document): ``sagemaker.amazonaws.com`` may ``sts:AssumeRole``.
    """
    arn = partition(region)
    data = _prefix(prefix)
    output = _prefix(output_prefix) if output_prefix is not None else data
    registry = registry_account(region)
    statements = [
        _allow(
            "LogsAndMetrics",
            [
                "cloudwatch:PutMetricData",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "logs:CreateLogGroup",
                "logs:DescribeLogStreams",
                "ecr:GetAuthorizationToken",
            ],
            "*",
        ),
        _allow(
            "PullAlgorithmImages",
            ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
            [f"arn:{arn}:ecr:{region}:{registry}:repository/{repository(a)}" for a in algorithms],
        ),
        *_s3_statements(arn, bucket, [data, output], [output], "Job"),
    ]
    return {"Version": POLICY_VERSION, "Statement": statements}


def trust_policy() -> dict[str, Any]:
    """The execution role's trust policy: SageMaker may assume it (developer guide ``sagemaker-roles.md``)."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
