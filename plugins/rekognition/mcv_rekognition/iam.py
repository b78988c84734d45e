"""The IAM documents a Rekognition Custom Labels run needs: the caller's policy and the bucket policy.

:func:`user_policy` is what the identity running ``mcv`` needs, least privilege:

* the Custom Labels operations the provider calls (projects, datasets, model versions, start/stop, detect, tags,
  deletes for ``mcv cleanup``) on the ARNs of one project, or of the projects named ``mcv-*``. Rekognition's ARNs
  put everything of a project under ``project/<name>/`` (botocore's service model patterns:
  ``project/<name>/<ts>``, ``project/<name>/version/<version>/<ts>``, ``project/<name>/dataset/(train|test)/<ts>``),
  so one ``project/<name>/*`` resource covers the project, its versions and its datasets; ``DescribeProjects``,
  which lists, is granted on ``*``;
* S3 on the run's bucket and prefix: the developer guide's external-bucket block ("Step 4: Set up Amazon Rekognition
  Custom Labels permissions", ``su-console-policy.md``, Sid ``s3ExternalBucketPolicies``: ``s3:GetBucketAcl``,
  ``s3:GetBucketLocation``, ``s3:GetObject``, ``s3:GetObjectAcl``, ``s3:GetObjectVersion``,
  ``s3:GetObjectTagging``, ``s3:ListBucket``, ``s3:PutObject``) narrowed from ``my-bucket*`` to the prefix, plus
  ``s3:DeleteObject`` there for cleanup. The same page says "To use the AWS SDK with the latest release of Amazon
  Rekognition Custom Labels, you no longer need to give Amazon Rekognition Custom Labels permissions to access the
  Amazon S3 bucket": the service now reads and writes S3 with the caller's permissions, which these statements give.

:func:`bucket_policy` is the bucket policy of the guide's earlier "Step 4: Set Up Amazon S3 Bucket Permissions for
SDK Use" (``su-sdk-bucket-permssions.md``): the ``rekognition.amazonaws.com`` service principal may
``s3:GetBucketAcl``/``s3:GetBucketLocation`` on the bucket, read objects (``s3:GetObject``, ``s3:GetObjectAcl``,
``s3:GetObjectVersion``, ``s3:GetObjectTagging``) and ``s3:PutObject`` under the output prefix with the condition
``s3:x-amz-acl = bucket-owner-full-control``. The guide's statement ids are kept; the input resource is narrowed
from the whole bucket to the run's prefix. Per the note quoted above it is only needed by older setups; it does no
harm and is what users following older walkthroughs expect.

Both are plain ``dict`` documents (``Version`` 2012-10-17), ready for ``json.dumps``, ``iam.create_policy`` and
``s3.put_bucket_policy``. ``account=None`` writes ``*`` for the account. The ARN partition (``aws``, ``aws-cn``,
``aws-us-gov`` ...) comes from botocore's partition data for ``region``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

POLICY_VERSION = "2012-10-17"
#: Projects ``mcv`` creates are named with this prefix unless the user names one (``project`` setting).
NAME_PREFIX = "mcv-"
#: The service principal of the guide's bucket policy.
SERVICE_PRINCIPAL = "rekognition.amazonaws.com"

#: Custom Labels operations on a project's resources (project, datasets, versions) the provider uses.
PROJECT_ACTIONS: tuple[str, ...] = (
    "CreateProject",
    "DeleteProject",
    "CreateDataset",
    "DescribeDataset",
    "DeleteDataset",
    "ListDatasetEntries",
    "ListDatasetLabels",
    "DistributeDatasetEntries",
    "UpdateDatasetEntries",
    "CreateProjectVersion",
    "DescribeProjectVersions",
    "StartProjectVersion",
    "StopProjectVersion",
    "DeleteProjectVersion",
    "DetectCustomLabels",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
)
#: Custom Labels operations that list, granted on ``*``.
LIST_ACTIONS: tuple[str, ...] = ("DescribeProjects",)
#: The guide's external-bucket S3 actions, split by the resource they apply to.
BUCKET_ACTIONS: tuple[str, ...] = ("s3:GetBucketAcl", "s3:GetBucketLocation")
OBJECT_READ_ACTIONS: tuple[str, ...] = ("s3:GetObject", "s3:GetObjectAcl", "s3:GetObjectVersion", "s3:GetObjectTagging")


def _prefix(prefix: str) -> str:
    """``prefix`` without a leading slash and, unless empty, with one trailing slash."""
    cleaned = prefix.strip("/")
    return f"{cleaned}/" if cleaned else ""


@cache
def partition(region: str) -> str:
    """The ARN partition of ``region`` from botocore's partition data (``aws`` when botocore does not know it)."""
    import botocore.session

    try:
        name = botocore.session.get_session().get_partition_for_region(region)
    except Exception:  # botocore raises its own errors for unknown or malformed region names
        return "aws"
    return str(name or "aws")


def project_resource(region: str, account: str | None = None, project: str | None = None) -> str:
    """``arn:<partition>:rekognition:<region>:<account>:project/<project or mcv-*>/*``."""
    name = project or f"{NAME_PREFIX}*"
    return f"arn:{partition(region)}:rekognition:{region}:{account or '*'}:project/{name}/*"


def _allow(
    sid: str, actions: list[str], resources: list[str] | str, condition: dict[str, Any] | None = None
) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def user_policy(
    bucket: str, prefix: str, region: str, account: str | None = None, project: str | None = None
) -> dict[str, Any]:
    """The policy document for the identity that runs ``mcv`` against ``s3://bucket/prefix`` in ``region``.

    ``project`` narrows the Rekognition statements to that project (default: projects named ``mcv-*``).
    """
    arn = partition(region)
    data = _prefix(prefix)
    bucket_arn = f"arn:{arn}:s3:::{bucket}"
    objects = f"{bucket_arn}/{data}*"
    listing = {"StringLike": {"s3:prefix": [f"{data}*"]}} if data else None
    statements = [
        _allow(
            "CustomLabelsProject",
            [f"rekognition:{action}" for action in PROJECT_ACTIONS],
            project_resource(region, account, project),
        ),
        _allow("CustomLabelsList", [f"rekognition:{action}" for action in LIST_ACTIONS], "*"),
        _allow("DataBucket", list(BUCKET_ACTIONS), bucket_arn),
        _allow("DataList", ["s3:ListBucket"], bucket_arn, listing),
        _allow("DataRead", list(OBJECT_READ_ACTIONS), objects),
        _allow("DataWrite", ["s3:PutObject", "s3:AbortMultipartUpload"], objects),
        _allow("DataCleanup", ["s3:DeleteObject"], objects),
    ]
    return {"Version": POLICY_VERSION, "Statement": statements}


def bucket_policy(
    bucket: str, prefix: str, output_prefix: str | None = None, region: str = "us-east-1"
) -> dict[str, Any]:
    """The bucket policy that lets Rekognition Custom Labels read ``prefix`` and write ``output_prefix``.

    ``output_prefix`` defaults to ``<prefix>/output`` (the ``OutputConfig.S3KeyPrefix`` the provider uses);
    ``region`` only picks the ARN partition.
    """
    arn = partition(region)
    data = _prefix(prefix)
    output = _prefix(output_prefix) if output_prefix is not None else f"{data}output/"
    bucket_arn = f"arn:{arn}:s3:::{bucket}"
    principal = {"Service": SERVICE_PRINCIPAL}
    statements = [
        {
            "Sid": "AWSRekognitionS3AclBucketRead20191011",
            "Effect": "Allow",
            "Principal": principal,
            "Action": list(BUCKET_ACTIONS),
            "Resource": bucket_arn,
        },
        {
            "Sid": "AWSRekognitionS3GetBucket20191011",
            "Effect": "Allow",
            "Principal": principal,
            "Action": list(OBJECT_READ_ACTIONS),
            "Resource": f"{bucket_arn}/{data}*",
        },
        {
            "Sid": "AWSRekognitionS3ACLBucketWrite20191011",
            "Effect": "Allow",
            "Principal": principal,
            "Action": "s3:GetBucketAcl",
            "Resource": bucket_arn,
        },
        {
            "Sid": "AWSRekognitionS3PutObject20191011",
            "Effect": "Allow",
            "Principal": principal,
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/{output}*",
            "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
        },
    ]
    return {"Version": POLICY_VERSION, "Statement": statements}
