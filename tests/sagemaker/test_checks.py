"""Pre-submit account checks through the real boto3 clients: moto's server for S3 and IAM (and for the APIs moto
lacks, the skip path), and a small loopback server speaking the IAM query and Service Quotas JSON protocols for
what moto 5.2.5 does not implement (SimulatePrincipalPolicy, ListServiceQuotas, SageMaker quotas)."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config

from mcv_sagemaker import checks
from mcv_sagemaker.algorithms import IMAGE_CLASSIFICATION, TRAINING_INSTANCE_FAMILIES
from multicloud_cv.datasets.preflight import Severity
from multicloud_cv.testing.emulators import MotoServer, moto_server, patched_environ

REGION = "us-east-1"
ACCOUNT = "210987654321"
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})
GPU = TRAINING_INSTANCE_FAMILIES[IMAGE_CLASSIFICATION]
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def _client(service: str, endpoint: str, credentials: dict[str, str] | None = None) -> Any:
    keys = credentials or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, config=NO_RETRIES, **keys)


@dataclass
class Moto:
    """moto's server and the credentials of this module's own account there."""

    server: MotoServer
    credentials: dict[str, str]

    @property
    def endpoint_url(self) -> str:
        return self.server.endpoint_url

    def client(self, service: str) -> Any:
        return _client(service, self.server.endpoint_url, self.credentials)


@pytest.fixture(scope="module")
def aws() -> Iterator[Moto]:
    """moto's server, used through an account of this module's own (moto maps assumed-role credentials to the
    role's account): its IAM backend is made while AWS managed policies load, so AmazonSageMakerFullAccess is
    attachable, and nothing process-wide is reset under other modules' servers."""
    with patched_environ({"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}), moto_server() as server:
        sts = _client("sts", server.endpoint_url)
        answer = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/mcv-checks", RoleSessionName="mcv-checks")
        keys = answer["Credentials"]
        yield Moto(
            server,
            {
                "aws_access_key_id": keys["AccessKeyId"],
                "aws_secret_access_key": keys["SecretAccessKey"],
                "aws_session_token": keys["SessionToken"],
            },
        )


def _role(aws: Moto, name: str, *, full_access: bool = True, inline: bool = False) -> str:
    iam = aws.client("iam")
    arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"])
    if full_access:
        iam.attach_role_policy(RoleName=name, PolicyArn="arn:aws:iam::aws:policy/AmazonSageMakerFullAccess")
    if inline:
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.put_role_policy(RoleName=name, PolicyName="s3", PolicyDocument=json.dumps(policy))
    return arn


# -- a loopback IAM / Service Quotas / S3-denied server --------------------------------------------------------


@dataclass
class FakeAccount:
    """What the fake answers: decisions per action, quota lists, operations that answer AccessDenied."""

    decisions: dict[str, str] = field(default_factory=dict)
    applied: list[dict[str, Any]] = field(default_factory=list)
    defaults: list[dict[str, Any]] = field(default_factory=list)
    denied: set[str] = field(default_factory=set)
    failing: set[str] = field(default_factory=set)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def _quota(name: str, value: float, code: str) -> dict[str, Any]:
    return {"ServiceCode": "sagemaker", "QuotaCode": code, "QuotaName": name, "Value": value, "Adjustable": True}


def _handler(account: FakeAccount) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: str, content_type: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # S3 GetBucketLocation and friends: always denied here
            account.calls.append(("s3:" + self.path, {}))
            body = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
            self._send(403, body, "application/xml")

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            target = self.headers.get("X-Amz-Target", "")
            if target:
                self._quotas(target.split(".")[-1], json.loads(raw or "{}"))
            else:
                self._iam(urllib.parse.parse_qs(raw))

        def _quotas(self, operation: str, params: dict[str, Any]) -> None:
            account.calls.append((operation, params))
            if operation in account.denied:
                error = {"__type": "AccessDeniedException", "message": "not authorized"}
                self._send(400, json.dumps(error), "application/x-amz-json-1.1")
                return
            if operation in account.failing:
                self._send(
                    500, json.dumps({"__type": "ServiceException", "message": "boom"}), "application/x-amz-json-1.1"
                )
                return
            quotas = account.applied if operation == "ListServiceQuotas" else account.defaults
            start = int(params.get("NextToken") or 0)
            page: dict[str, Any] = {"Quotas": quotas[start : start + 2]}
            if start + 2 < len(quotas):
                page["NextToken"] = str(start + 2)
            self._send(200, json.dumps(page), "application/x-amz-json-1.1")

        def _iam(self, form: dict[str, list[str]]) -> None:
            action = form["Action"][0]
            params = {k: v[0] for k, v in form.items()}
            account.calls.append((action, params))
            if action in account.denied:
                body = (
                    "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                    "<Message>not authorized to perform iam:SimulatePrincipalPolicy</Message></Error>"
                    "<RequestId>r</RequestId></ErrorResponse>"
                )
                self._send(403, body, "text/xml")
                return
            actions = [v for k, v in sorted(params.items()) if k.startswith("ActionNames.member.")]
            resource = params.get("ResourceArns.member.1", "*")
            members = "".join(
                f"<member><EvalActionName>{a}</EvalActionName><EvalResourceName>{resource}</EvalResourceName>"
                f"<EvalDecision>{account.decisions.get(a, 'allowed')}</EvalDecision>"
                "<MatchedStatements/><MissingContextValues/></member>"
                for a in actions
            )
            body = (
                '<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
                f"<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated><EvaluationResults>{members}"
                "</EvaluationResults></SimulatePrincipalPolicyResult>"
                "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></SimulatePrincipalPolicyResponse>"
            )
            self._send(200, body, "text/xml")

    return Handler


@pytest.fixture
def fake() -> Iterator[tuple[FakeAccount, str]]:
    account = FakeAccount()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(account))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield account, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# -- bucket ------------------------------------------------------------------------------------------------------


def test_bucket_in_another_region_is_an_error(aws: Moto) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="mcv-checks-far-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.create_bucket(Bucket="mcv-checks-near-bucket")  # us-east-1: GetBucketLocation answers None
    [finding] = checks.check_bucket_region(s3, "mcv-checks-far-bucket", REGION)
    assert finding.severity is Severity.ERROR and finding.code == "bucket-region"
    assert "is in eu-west-1 but the job runs in us-east-1" in finding.message
    assert checks.check_bucket_region(s3, "mcv-checks-far-bucket", "eu-west-1") == []
    assert checks.bucket_region(s3, "mcv-checks-near-bucket") == "us-east-1"
    assert checks.check_bucket_region(s3, "mcv-checks-near-bucket", REGION) == []


def test_a_missing_bucket_is_an_error(aws: Moto) -> None:
    [finding] = checks.check_bucket_region(aws.client("s3"), "no-such-bucket-here", REGION)
    assert finding.severity is Severity.ERROR and finding.code == "bucket-missing"
    assert "aws s3 mb s3://no-such-bucket-here --region us-east-1" in finding.fix


def test_bucket_region_is_skipped_when_the_caller_may_not_ask(fake: tuple[FakeAccount, str]) -> None:
    _, endpoint = fake
    [finding] = checks.check_bucket_region(_client("s3", endpoint), "some-bucket", REGION)
    assert finding.code == "bucket-region-skipped" and finding.severity is checks.SKIPPED
    assert finding.severity is not Severity.ERROR
    assert "not allowed (AccessDenied)" in finding.message and "s3:GetBucketLocation" in finding.fix


# -- role ----------------------------------------------------------------------------------------------------------


def test_full_access_only_role_and_a_bucket_not_named_sagemaker_warns(aws: Moto) -> None:
    iam = aws.client("iam")
    role = _role(aws, "full-access-only")
    [finding] = checks.check_bucket_name(iam, "team-data", role)
    assert finding.severity is Severity.WARNING and finding.code == "bucket-name"
    assert "has only AmazonSageMakerFullAccess" in finding.message and "403 Forbidden" in finding.message
    assert checks.check_bucket_name(iam, "team-sagemaker-data", role) == []
    assert checks.check_bucket_name(iam, "team-data", _role(aws, "with-inline", inline=True)) == []
    assert checks.check_bucket_name(iam, "team-data", _role(aws, "no-policies", full_access=False)) == []


def test_a_malformed_role_arn_is_an_error(aws: Moto) -> None:
    [finding] = checks.check_bucket_name(aws.client("iam"), "b", "arn:aws:iam::123456789012:user/me")
    assert finding.severity is Severity.ERROR and finding.code == "role-arn"


def test_role_simulation_is_skipped_where_moto_lacks_it(aws: Moto) -> None:
    role = _role(aws, "sim-role")
    findings = checks.check_role_access(aws.client("iam"), role, "sim-bucket", "data")
    assert [f.code for f in findings] == ["role-access-skipped"]
    assert (
        findings[0].severity is checks.SKIPPED and "could not check what role 'sim-role' may do" in findings[0].message
    )
    assert "iam:SimulatePrincipalPolicy" in findings[0].fix


def test_a_denied_simulated_action_is_an_error(aws: Moto, fake: tuple[FakeAccount, str]) -> None:
    account, endpoint = fake
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="mcv-checks-sim-data")
    role = "arn:aws:iam::123456789012:role/service/exec"
    account.decisions = {"s3:PutObject": "implicitDeny"}
    [finding] = checks.check_role_access(_client("iam", endpoint), role, "mcv-checks-sim-data", "/runs/", s3=s3)
    assert finding.severity is Severity.ERROR and finding.code == "role-access"
    assert "role 'exec' may not s3:PutObject on s3://mcv-checks-sim-data/runs/ (implicitDeny)" in finding.message
    simulated = [params for op, params in account.calls if op == "SimulatePrincipalPolicy"]
    assert [(p["ActionNames.member.1"], p["ResourceArns.member.1"]) for p in simulated] == [
        ("s3:ListBucket", "arn:aws:s3:::mcv-checks-sim-data"),
        ("s3:GetObject", "arn:aws:s3:::mcv-checks-sim-data/runs/mcv-preflight-probe"),
        ("s3:PutObject", "arn:aws:s3:::mcv-checks-sim-data/runs/mcv-preflight-probe"),
    ]
    assert simulated[0]["ContextEntries.member.1.ContextKeyValues.member.1"] == "runs/"
    assert all(p["PolicySourceArn"] == role for p in simulated)


def test_bucket_policy_is_simulated_and_an_unknown_one_softens_an_implicit_deny(
    aws: Moto, fake: tuple[FakeAccount, str]
) -> None:
    account, endpoint = fake
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="mcv-checks-with-policy")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::mcv-checks-with-policy/*",
            }
        ],
    }
    s3.put_bucket_policy(Bucket="mcv-checks-with-policy", Policy=json.dumps(policy))
    role = "arn:aws:iam::123456789012:role/exec"
    assert checks.check_role_access(_client("iam", endpoint), role, "mcv-checks-with-policy", "", s3=s3) == []
    forwarded = [p for op, p in account.calls if op == "SimulatePrincipalPolicy"]
    assert forwarded and all(json.loads(p["ResourcePolicy"]) == policy for p in forwarded)
    account.decisions = {"s3:GetObject": "implicitDeny", "s3:ListBucket": "explicitDeny"}
    findings = checks.check_role_access(_client("iam", endpoint), role, "other-bucket", "p")  # no s3 client
    assert [(f.severity, f.message.split(" (")[0]) for f in findings] == [
        (Severity.ERROR, "role 'exec' may not s3:ListBucket on s3://other-bucket/p/"),
        (Severity.WARNING, "role 'exec' may not s3:GetObject on s3://other-bucket/p/"),
    ]
    assert "No S3 objects found" in findings[0].message and "unless the bucket policy" in findings[1].message


def test_simulation_denied_to_the_caller_is_skipped(fake: tuple[FakeAccount, str]) -> None:
    account, endpoint = fake
    account.denied = {"SimulatePrincipalPolicy"}
    [finding] = checks.check_role_access(_client("iam", endpoint), "arn:aws:iam::1:role/r", "b", "p")
    assert finding.code == "role-access-skipped" and "not allowed (AccessDenied)" in finding.message


# -- quotas and instance types ---------------------------------------------------------------------------------


def _quotas(account: FakeAccount) -> None:
    account.applied = [
        _quota("ml.p3.2xlarge for training job usage", 0.0, "L-P3TRAIN"),
        _quota("ml.c5.xlarge for training job usage", 20.0, "L-C5TRAIN"),
        _quota("ml.g4dn.xlarge for training job usage", 2.0, "L-G4TRAIN"),
        _quota("ml.m5.xlarge for endpoint usage", 0.0, "L-M5HOST"),
        _quota("ml.g5.xlarge for training job usage", 1.0, "L-G5TRAIN"),
    ]


def test_a_zero_quota_is_an_error_naming_the_increase_and_types_with_quota(fake: tuple[FakeAccount, str]) -> None:
    account, endpoint = fake
    _quotas(account)
    quotas = _client("service-quotas", endpoint)
    [finding] = checks.check_quota(quotas, "ml.p3.2xlarge", region=REGION, families=GPU)
    assert finding.severity is Severity.ERROR and finding.code == "quota-training"
    assert finding.message == (
        "the account-level service limit 'ml.p3.2xlarge for training job usage' is 0 Instances in us-east-1 and "
        "the job needs 1; SageMaker would refuse it with ResourceLimitExceeded"
    )
    assert "--service-code sagemaker --quota-code L-P3TRAIN --desired-value 1 --region us-east-1" in finding.fix
    assert finding.fix.endswith("or use a type with quota: ml.g4dn.xlarge, ml.g5.xlarge")  # no CPU type, all pages
    assert len([op for op, _ in account.calls if op == "ListServiceQuotas"]) == 3  # 5 quotas, 2 a page
    assert checks.check_quota(quotas, "ml.g4dn.xlarge", instance_count=2) == []
    [over] = checks.check_quota(quotas, "ml.g4dn.xlarge", instance_count=3, families=GPU)
    assert over.code == "quota-training" and "is 2 Instances" in over.message and "needs 3" in over.message
    [endpoint_quota] = checks.check_quota(quotas, "ml.m5.xlarge", usage="endpoint")
    assert "'ml.m5.xlarge for endpoint usage' is 0 Instances" in endpoint_quota.message
    assert endpoint_quota.code == "quota-endpoint"


def test_a_type_missing_from_the_regions_quotas_warns(fake: tuple[FakeAccount, str]) -> None:
    account, endpoint = fake
    _quotas(account)
    [finding] = checks.check_quota(_client("service-quotas", endpoint), "ml.p2.xlarge", region="eu-north-1")
    assert finding.severity is Severity.WARNING and finding.code == "instance-type-region"
    assert "lists no 'ml.p2.xlarge for training job usage' in eu-north-1" in finding.message


def test_a_quota_missing_from_the_applied_list_is_read_from_the_defaults(fake: tuple[FakeAccount, str]) -> None:
    account, endpoint = fake
    _quotas(account)
    account.defaults = [
        _quota("ml.p2.xlarge for training job usage", 0.0, "L-P2TRAIN"),
        _quota("ml.g4dn.xlarge for training job usage", 0.0, "L-G4TRAIN"),  # the applied value (2) wins
    ]
    [finding] = checks.check_quota(_client("service-quotas", endpoint), "ml.p2.xlarge", families=GPU)
    assert finding.code == "quota-training" and "--quota-code L-P2TRAIN" in finding.fix
    assert finding.fix.endswith("ml.g4dn.xlarge, ml.g5.xlarge")
    assert [op for op, _ in account.calls].count("ListAWSDefaultServiceQuotas") == 1


def test_defaults_are_read_when_applied_quotas_are_denied(fake: tuple[FakeAccount, str]) -> None:
    account, endpoint = fake
    account.denied = {"ListServiceQuotas"}
    account.defaults = [_quota("ml.p3.2xlarge for training job usage", 0.0, "L-P3TRAIN")]
    [finding] = checks.check_quota(_client("service-quotas", endpoint), "ml.p3.2xlarge")
    assert finding.code == "quota-training" and finding.severity is Severity.ERROR
    account.denied = {"ListServiceQuotas", "ListAWSDefaultServiceQuotas"}
    [skipped] = checks.check_quota(_client("service-quotas", endpoint), "ml.p3.2xlarge")
    assert skipped.code == "quota-training-skipped" and skipped.severity is checks.SKIPPED


def test_quota_check_is_skipped_where_moto_lacks_sagemaker_quotas(aws: Moto) -> None:
    [finding] = checks.check_quota(aws.client("service-quotas"), "ml.p3.2xlarge", usage="endpoint")
    assert finding.code == "quota-endpoint-skipped" and finding.severity is not Severity.ERROR
    assert "could not check the 'ml.p3.2xlarge for endpoint usage' quota" in finding.message


def test_instance_types_against_the_api_enum_and_the_algorithms_gpu_families() -> None:
    sagemaker = _client("sagemaker", "http://127.0.0.1:9")  # the enum is in the service model: nothing is sent
    assert checks.check_instance_type(sagemaker, "ml.p3.2xlarge", algorithm=IMAGE_CLASSIFICATION) == []
    assert checks.check_instance_type(sagemaker, "ml.m5.xlarge", usage="endpoint", algorithm=IMAGE_CLASSIFICATION) == []
    [typo] = checks.check_instance_type(sagemaker, "ml.p3.2xlarg")
    assert typo.severity is Severity.ERROR and typo.code == "instance-type" and "ml.p3.2xlarge" in typo.fix
    [cpu] = checks.check_instance_type(sagemaker, "ml.c5.xlarge", algorithm=IMAGE_CLASSIFICATION)
    assert cpu.severity is Severity.ERROR and cpu.code == "instance-type-family" and "GPU instances only" in cpu.message
    [other_gpu] = checks.check_instance_type(sagemaker, "ml.p4d.24xlarge", algorithm=IMAGE_CLASSIFICATION)
    assert other_gpu.severity is Severity.WARNING
    [hosting] = checks.check_instance_type(sagemaker, "ml.p3.2xlarge-x", usage="endpoint")
    assert "not a SageMaker instance type for endpoint usage" in hosting.message


def test_run_checks_orders_errors_first_and_keeps_endpoint_findings_as_warnings(
    aws: Moto, fake: tuple[FakeAccount, str]
) -> None:
    account, endpoint = fake
    _quotas(account)
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="mcv-checks-run-data", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    role = _role(aws, "run-role")

    def client(service: str) -> Any:
        return _client(service, endpoint) if service == "service-quotas" else aws.client(service)

    findings = checks.run_checks(
        client,
        region=REGION,
        bucket="mcv-checks-run-data",
        prefix="mcv",
        role_arn=role,
        training_instance_type="ml.p3.2xlarge",
        hosting_instance_type="ml.m5.xlarge",
        algorithm=IMAGE_CLASSIFICATION,
    )
    codes = [(f.severity, f.code) for f in findings]
    assert codes[:2] == [(Severity.ERROR, "bucket-region"), (Severity.ERROR, "quota-training")]
    assert set(codes[2:]) == {
        (checks.SKIPPED, "role-access-skipped"),
        (Severity.WARNING, "bucket-name"),
        (Severity.WARNING, "quota-endpoint"),
    }
    hosting = next(f for f in findings if f.code == "quota-endpoint")
    assert hosting.message.endswith("(deploying will fail)")
    options = SimpleNamespace(
        bucket=None, prefix="", role_arn=None, instance_type="ml.g4dn.xlarge", instance_count=1,
        endpoint_instance_type="ml.c5.xlarge", endpoint_instance_count=1,
    )  # fmt: skip
    provider_clients = SimpleNamespace(client=client, region=REGION)
    assert [f.code for f in checks.run_all(provider_clients, options)] == ["instance-type-region"]


# -- IAM policies ------------------------------------------------------------------------------------------------

_MODELS = {
    "sagemaker": ("sagemaker", "sagemaker-runtime"),
    "servicequotas": ("service-quotas",),
    "iam": ("iam",),
    "logs": ("logs",),
    "ecr": ("ecr",),
    "cloudwatch": ("cloudwatch",),
}
_S3_ACTIONS = {"ListBucket", "GetObject", "PutObject", "DeleteObject", "AbortMultipartUpload", "GetBucketLocation",
               "GetBucketPolicy"}  # fmt: skip


def _assert_policy_shape(policy: dict[str, Any]) -> list[dict[str, Any]]:
    assert policy["Version"] == "2012-10-17"
    statements = policy["Statement"]
    assert isinstance(statements, list) and statements
    sids = [s["Sid"] for s in statements if "Sid" in s]
    assert len(sids) == len(set(sids)) and all(sid.isalnum() for sid in sids)
    session = botocore.session.get_session()
    operations = {
        prefix: {op for svc in services for op in session.get_service_model(svc).operation_names}
        for prefix, services in _MODELS.items()
    }
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        for action in statement["Action"]:
            service, _, name = action.partition(":")
            known = _S3_ACTIONS if service == "s3" else operations[service]
            assert name in known or action == "iam:PassRole", action  # a real API action (PassRole is permission-only)
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert resources and all(r == "*" or r.startswith("arn:") for r in resources)
    assert len(json.dumps(policy, separators=(",", ":"))) <= 6144  # IAM's managed-policy size limit
    return statements


def test_least_privilege_policies_are_valid_and_accepted_by_iam(aws: Moto) -> None:
    from mcv_sagemaker import iam as policies

    caller = policies.least_privilege_policy("team-data", "/runs/", REGION, "123456789012", role_name="exec")
    role = policies.execution_role_policy("team-data", "runs", REGION, "123456789012", output_prefix="runs/output")
    client = aws.client("iam")
    for name, document in (("mcv-caller", caller), ("mcv-execution", role)):
        _assert_policy_shape(document)
        created = client.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))
        assert created["Policy"]["PolicyName"] == name
    client.create_role(RoleName="mcv-exec-trust", AssumeRolePolicyDocument=json.dumps(policies.trust_policy()))

    by_sid = {s["Sid"]: s for s in caller["Statement"]}
    assert by_sid["SageMakerTrainingJob"]["Resource"] == "arn:aws:sagemaker:us-east-1:123456789012:training-job/mcv-*"
    assert "sagemaker:InvokeEndpoint" in by_sid["SageMakerEndpoint"]["Action"]
    assert by_sid["PassExecutionRoleToSageMaker"] == {
        "Sid": "PassExecutionRoleToSageMaker",
        "Effect": "Allow",
        "Action": ["iam:PassRole"],
        "Resource": "arn:aws:iam::123456789012:role/exec",
        "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    }
    assert by_sid["DataListPrefix"]["Condition"] == {"StringLike": {"s3:prefix": ["runs/*"]}}
    assert by_sid["DataWrite"]["Resource"] == ["arn:aws:s3:::team-data/runs/*"]
    assert "iam:SimulatePrincipalPolicy" in by_sid["PreflightRoleChecks"]["Action"]
    assert "servicequotas:ListServiceQuotas" in by_sid["PreflightQuotas"]["Action"]

    role_sids = {s["Sid"]: s for s in role["Statement"]}
    assert role_sids["PullAlgorithmImages"]["Resource"] == [
        "arn:aws:ecr:us-east-1:811284229777:repository/image-classification",
        "arn:aws:ecr:us-east-1:811284229777:repository/object-detection",
    ]
    assert role_sids["JobWrite"]["Resource"] == ["arn:aws:s3:::team-data/runs/output/*"]
    assert role_sids["JobRead"]["Resource"] == ["arn:aws:s3:::team-data/runs/*", "arn:aws:s3:::team-data/runs/output/*"]


def test_policies_use_the_regions_partition_and_a_wildcard_account() -> None:
    from mcv_sagemaker import iam as policies

    caller = policies.least_privilege_policy("b", "", "cn-north-1")
    _assert_policy_shape(caller)
    text = json.dumps(caller)
    assert '"arn:aws:' not in text and "arn:aws-cn:sagemaker:cn-north-1:*:endpoint/mcv-*" in text
    assert "arn:aws-cn:iam::*:role/*" in text and "arn:aws-cn:s3:::b/*" in text
    role = policies.execution_role_policy("b", "", "cn-north-1")
    assert "arn:aws-cn:ecr:cn-north-1:390948362332:repository/object-detection" in json.dumps(role)


def test_run_all_probes_once_per_call_with_the_providers_session(fake: tuple[FakeAccount, str]) -> None:
    account, endpoint = fake
    account.failing = {"ListServiceQuotas", "ListAWSDefaultServiceQuotas"}
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    with patched_environ({"AWS_ENDPOINT_URL": endpoint}):
        session = boto3.session.Session(region_name=REGION, **keys)
        options = SimpleNamespace(
            bucket=None, prefix="p", role_arn=None, instance_type="ml.p3.2xlarge", instance_count=1,
            endpoint_instance_type=None, endpoint_instance_count=1,
        )  # fmt: skip
        findings = checks.run_all(SimpleNamespace(session=session, region=REGION), options)
    assert [f.code for f in findings] == ["quota-training-skipped"]
    assert "HTTP 500" in findings[0].message
    # one try each: botocore retries (with backoff) would have sent each call again
    assert [op for op, _ in account.calls] == ["ListServiceQuotas", "ListAWSDefaultServiceQuotas"]
