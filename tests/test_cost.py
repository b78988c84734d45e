"""The price table and cost estimates: bundled rows, lookup order, overrides from mcv.toml, light import."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from multicloud_cv import cost
from multicloud_cv.errors import ConfigError


def _rows() -> list[dict[str, str]]:
    with cost.PRICES_FILE.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_row_has_unit_region_source_date_and_verified_flag() -> None:
    rows = _rows()
    assert rows
    for row in rows:
        assert row["unit"] and row["region"] and row["source"], row
        assert row["as_of"] == "2026-11-23", row
        assert row["verified"] in ("true", "false"), row
        assert float(row["price_usd"]) >= 0
    providers = {row["provider"] for row in rows}
    assert providers == {"sagemaker", "rekognition", "vertex", "customvision", "local"}


def test_sagemaker_instance_prices_from_the_fact_sheet() -> None:
    table = cost.load_prices(use_config_file=False)
    expected = {"ml.p3.2xlarge": 3.825, "ml.g4dn.xlarge": 0.736, "ml.c5.xlarge": 0.204, "ml.p2.xlarge": 1.125}
    for item, usd in expected.items():
        found = table.price("sagemaker", item, "us-east-1")
        assert found is not None and found.price_usd == usd and found.unit == "hour"
        assert found.verified is False  # third-party tables, not AWS's page
    automl = table.price("vertex", "automl_image_training")
    assert automl is not None and automl.price_usd == 3.465 and automl.unit == "node_hour" and automl.verified


def test_training_cost_is_hourly_price_times_instances_times_seconds() -> None:
    table = cost.load_prices(use_config_file=False)
    assert table.training_cost("sagemaker", "ml.p3.2xlarge", 2, 1800, "us-east-1") == pytest.approx(3.825)
    assert table.hosting_cost_per_hour("sagemaker", "ml.m5.xlarge", 3, "us-east-1") == pytest.approx(0.69)
    assert table.training_cost("sagemaker", "ml.unknown.xlarge", 1, 3600, "us-east-1") is None
    # a per-1000-transactions price is not an hourly one
    assert table.training_cost("customvision", "predictions", 1, 3600) is None
    assert table.training_cost("local", "anything", 4, 10_000) == 0.0


def test_region_lookup_prefers_the_region_and_falls_back_to_another_with_its_region_named() -> None:
    rows = [
        cost.Price("p", "x", "hour", "us-east-1", 1.0, "s", "d"),
        cost.Price("p", "x", "hour", "eu-west-1", 1.2, "s", "d"),
        cost.Price("p", "y", "hour", "*", 5.0, "s", "d"),
    ]
    table = cost.PriceTable(rows)
    eu = table.price("p", "x", "eu-west-1")
    assert eu is not None and eu.price_usd == 1.2
    other = table.price("p", "x", "ap-south-1")
    assert other is not None and other.region == "us-east-1"  # the nearest estimate says where it is from
    anywhere = table.price("p", "y", "ap-south-1")
    assert anywhere is not None and anywhere.price_usd == 5.0
    assert table.price("q", "x") is None


def test_overrides_from_the_config_file_win(tmp_path: Path) -> None:
    config = tmp_path / "mcv.toml"
    config.write_text(
        '[prices]\n"sagemaker/ml.p3.2xlarge" = 3.0\n"sagemaker/ml.g4dn.xlarge/eu-west-1" = 0.9\n'
        '"vertex/new-machine" = 1.5\n',
        encoding="utf-8",
    )
    table = cost.load_prices(config)
    p3 = table.price("sagemaker", "ml.p3.2xlarge", "us-east-1")
    assert p3 is not None and p3.price_usd == 3.0 and str(config) in p3.source
    assert table.price("sagemaker", "ml.g4dn.xlarge", "eu-west-1").price_usd == 0.9  # type: ignore[union-attr]
    assert table.price("sagemaker", "ml.g4dn.xlarge", "us-east-1").price_usd == 0.736  # type: ignore[union-attr]
    assert table.training_cost("vertex", "new-machine", 1, 7200) == pytest.approx(3.0)


def test_module_functions_read_the_mcv_toml_of_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert cost.training_cost("sagemaker", "ml.p3.2xlarge", 1, 3600, "us-east-1") == pytest.approx(3.825)
    (tmp_path / "mcv.toml").write_text('[prices]\n"sagemaker/ml.p3.2xlarge" = 2.5\n', encoding="utf-8")
    assert cost.training_cost("sagemaker", "ml.p3.2xlarge", 1, 3600, "us-east-1") == pytest.approx(2.5)
    assert cost.hosting_cost_per_hour("sagemaker", "ml.p3.2xlarge", 2, "us-east-1") == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('"sagemaker" = 3.0', "provider/item"),
        ('"sagemaker/ml.p3.2xlarge" = "cheap"', "number"),
        ("prices = 3", "table"),
    ],
)
def test_bad_overrides_are_config_errors(tmp_path: Path, line: str, expected: str) -> None:
    config = tmp_path / "mcv.toml"
    body = line if line.startswith("prices") else f"[prices]\n{line}\n"
    config.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError, match=expected):
        cost.load_prices(config)


def test_importing_cost_pulls_in_no_heavy_module() -> None:
    code = (
        "import sys, multicloud_cv.cost as c; c.price('sagemaker', 'ml.p3.2xlarge', 'us-east-1');"
        "heavy = [m for m in ('boto3', 'botocore', 'torch', 'numpy', 'pydantic', 'google.cloud.storage',"
        " 'google.protobuf', 'google.auth') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
