"""The user policy and the bucket policy: accepted by moto's IAM, scoped to the run, naming real operations."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from fnmatch import fnmatchcase
from functools import cache
from typing import Any

import boto3
import botocore.session
import pytest
from moto import mock_aws
from moto.iam.policy_validation import IAMPolicyDocumentValidator

from mcv_rekognition import iam
from mcv_rekognition.iam import bucket_policy, user_policy

REGION = "eu-west-1"
ACCOUNT = "111122223333"


@cache
def _model() -> Any:
    return botocore.session.get_session().get_service_model("rekognition")


def _client(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def moto_account() -> Iterator[None]:
    """moto's in-process AWS (IAM and S3) for this module."""
    with mock_aws():
        yield


@pytest.fixture
def iam_client(moto_account: None) -> Any:
    return _client("iam")


def _statement(policy: dict[str, Any], sid: str) -> dict[str, Any]:
    return next(statement for statement in policy["Statement"] if statement["Sid"] == sid)


def _grants(policy: dict[str, Any], action: str, resource: str) -> bool:
    """True when an Allow statement of ``policy`` names ``action`` on a resource pattern matching ``resource``."""
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if statement["Effect"] == "Allow" and action in actions and any(fnmatchcase(resource, r) for r in resources):
            return True
    return False


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"account": ACCOUNT},
        {"account": ACCOUNT, "project": "flowers"},
    ],
)
def test_moto_iam_accepts_the_user_policy(iam_client: Any, kwargs: dict[str, str]) -> None:
    document = user_policy("mcv-data-bucket", "runs/r1", REGION, **kwargs)
    name = "mcv-rekognition-" + "-".join(kwargs.values()) if kwargs else "mcv-rekognition"
    answer = iam_client.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))
    version = iam_client.get_policy_version(PolicyArn=answer["Policy"]["Arn"], VersionId="v1")["PolicyVersion"]
    stored = version["Document"]
    assert (json.loads(stored) if isinstance(stored, str) else stored) == document


def test_moto_iam_rejects_a_malformed_document(iam_client: Any) -> None:
    """The acceptance above means something: moto's validator does check resources."""
    broken = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "x"}]}
    with pytest.raises(iam_client.exceptions.MalformedPolicyDocumentException):
        iam_client.create_policy(PolicyName="broken", PolicyDocument=json.dumps(broken))


def test_every_rekognition_action_is_a_real_operation() -> None:
    model = _model()
    named = {
        a.split(":", 1)[1]
        for s in user_policy("b-bucket", "p", REGION)["Statement"]
        for a in s["Action"]
        if a.startswith("rekognition:")
    }
    assert named == set(iam.PROJECT_ACTIONS) | set(iam.LIST_ACTIONS)
    assert named <= set(model.operation_names)
    used = {
        "CreateProject",
        "CreateDataset",
        "DescribeDataset",
        "CreateProjectVersion",
        "DescribeProjectVersions",
        "StartProjectVersion",
        "StopProjectVersion",
        "DetectCustomLabels",
        "DeleteProjectVersion",
        "DeleteDataset",
        "DeleteProject",
        "DescribeProjects",
        "ListDatasetEntries",
        "TagResource",
    }
    assert used <= named


def _example_arn(shape: str, project: str) -> str:
    """An ARN that matches botocore's pattern for ``shape``, in the module's account and region."""
    pattern = _model().shape_for(shape).metadata["pattern"]
    arn = {
        "ProjectArn": f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/{project}/1600000000000",
        "ProjectVersionArn": f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/{project}/version/v1/1600000000001",
        "DatasetArn": f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/{project}/dataset/train/1600000000002",
    }[shape]
    assert re.match(pattern, arn), (shape, pattern)
    return arn


@pytest.mark.parametrize("shape", ["ProjectArn", "ProjectVersionArn", "DatasetArn"])
def test_the_project_statement_covers_the_project_its_versions_and_datasets(shape: str) -> None:
    default = user_policy("b-bucket", "p", REGION, account=ACCOUNT)
    named = user_policy("b-bucket", "p", REGION, account=ACCOUNT, project="flowers")
    assert _grants(default, "rekognition:DetectCustomLabels", _example_arn(shape, "mcv-flowers"))
    assert not _grants(default, "rekognition:DetectCustomLabels", _example_arn(shape, "someone-else"))
    assert _grants(named, "rekognition:DeleteProject", _example_arn(shape, "flowers"))
    assert not _grants(named, "rekognition:DeleteProject", _example_arn(shape, "flowers-2"))
    other_account = _example_arn(shape, "flowers").replace(ACCOUNT, "444455556666")
    assert not _grants(named, "rekognition:DeleteProject", other_account)


def test_s3_is_scoped_to_the_bucket_and_prefix() -> None:
    policy = user_policy("mcv-data-bucket", "/runs/r1/", REGION)
    assert _grants(policy, "s3:GetObject", "arn:aws:s3:::mcv-data-bucket/runs/r1/images/a.png")
    assert _grants(policy, "s3:PutObject", "arn:aws:s3:::mcv-data-bucket/runs/r1/output/x.json")
    assert _grants(policy, "s3:DeleteObject", "arn:aws:s3:::mcv-data-bucket/runs/r1/manifests/f/train.manifest")
    assert not _grants(policy, "s3:GetObject", "arn:aws:s3:::mcv-data-bucket/other/a.png")
    assert not _grants(policy, "s3:GetObject", "arn:aws:s3:::another-bucket/runs/r1/a.png")
    assert _grants(policy, "s3:GetBucketLocation", "arn:aws:s3:::mcv-data-bucket")
    assert _statement(policy, "DataList")["Condition"] == {"StringLike": {"s3:prefix": ["runs/r1/*"]}}
    assert "Condition" not in _statement(user_policy("mcv-data-bucket", "", REGION), "DataList")
    assert _statement(policy, "CustomLabelsList")["Resource"] == "*"


def test_the_partition_follows_the_region() -> None:
    policy = user_policy("mcv-data-bucket", "p", "cn-north-1", account=ACCOUNT)
    assert _statement(policy, "CustomLabelsProject")["Resource"].startswith("arn:aws-cn:rekognition:cn-north-1:")
    assert _statement(policy, "DataBucket")["Resource"] == "arn:aws-cn:s3:::mcv-data-bucket"
    assert iam.partition("us-gov-west-1") == "aws-us-gov"


def test_the_bucket_policy_is_the_guides_with_the_service_principal() -> None:
    policy = bucket_policy("mcv-data-bucket", "runs/r1")
    IAMPolicyDocumentValidator(json.dumps(policy)).validate()  # moto's syntax checks; Principal is allowed there
    assert policy["Version"] == "2012-10-17"
    assert {s["Principal"]["Service"] for s in policy["Statement"]} == {"rekognition.amazonaws.com"}
    assert [s["Sid"] for s in policy["Statement"]] == [
        "AWSRekognitionS3AclBucketRead20191011",
        "AWSRekognitionS3GetBucket20191011",
        "AWSRekognitionS3ACLBucketWrite20191011",
        "AWSRekognitionS3PutObject20191011",
    ]
    assert _grants(policy, "s3:GetObject", "arn:aws:s3:::mcv-data-bucket/runs/r1/images/a.png")
    assert _grants(policy, "s3:GetBucketAcl", "arn:aws:s3:::mcv-data-bucket")
    assert _grants(policy, "s3:PutObject", "arn:aws:s3:::mcv-data-bucket/runs/r1/output/EvaluationSummary-p-v.json")
    assert not _grants(policy, "s3:PutObject", "arn:aws:s3:::mcv-data-bucket/runs/r1/images/a.png")
    put = _statement(policy, "AWSRekognitionS3PutObject20191011")
    assert put["Condition"] == {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}
    custom = bucket_policy("mcv-data-bucket", "runs/r1", output_prefix="results/r1")
    assert _statement(custom, "AWSRekognitionS3PutObject20191011")["Resource"] == (
        "arn:aws:s3:::mcv-data-bucket/results/r1/*"
    )


def test_moto_s3_stores_the_bucket_policy(moto_account: None) -> None:
    s3 = _client("s3")
    s3.create_bucket(Bucket="mcv-data-bucket")
    policy = bucket_policy("mcv-data-bucket", "runs/r1")
    s3.put_bucket_policy(Bucket="mcv-data-bucket", Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket="mcv-data-bucket")["Policy"]) == policy
