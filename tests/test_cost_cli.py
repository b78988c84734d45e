"""``mcv cost estimate``: the trainer's plan plus the hosting price, with nothing sent."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from support import run_mcv

from multicloud_cv.testing import make_tiny_dataset


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("shapes") / "ds", train_per_class=6, test_per_class=2)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_local_costs_nothing(shapes: Path) -> None:
    out = run_mcv("cost", "estimate", "-p", "local", "-d", str(shapes), "--json")
    assert out.returncode == 0, out.stderr
    document = json.loads(out.stdout)
    assert document["training_usd"] == 0 and document["hosting_per_hour_usd"] == 0
    assert document["prediction_per_1000_usd"] == 0
    text = run_mcv("cost", "estimate", "-p", "local", "-d", str(shapes))
    assert text.returncode == 0 and "training            $0.00" in text.stdout and "nothing was sent" in text.stdout


def test_sagemaker_estimate_is_positive_and_sends_nothing(shapes: Path, tmp_path: Path) -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}",  # anything sent would fail the command
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }
    out = run_mcv(
        "cost", "estimate", "-p", "sagemaker", "-d", str(shapes), "--epochs", "5", "--json",
        "-o", "bucket=my-sagemaker-bucket", "-o", "role_arn=arn:aws:iam::123456789012:role/SageMakerRole",
        "-o", "region=us-east-1",
        env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    document = json.loads(out.stdout)
    assert document["training_usd"] > 0 and document["hosting_per_hour_usd"] > 0
    assert document["prediction_per_1000_usd"] is None
    assert any("instance hour" in note for note in document["notes"])
    assert json.loads(run_mcv("status", "--json", env=env).stdout)["jobs"] == [], "an estimate records no job"


def test_unknown_provider_exits_2(shapes: Path) -> None:
    out = run_mcv("cost", "estimate", "-p", "no-such-provider", "-d", str(shapes))
    assert out.returncode == 2
    assert "no provider 'no-such-provider'" in out.stderr
