"""Provider settings: file, then environment, then -o; unknown keys refused; secrets redacted."""

from __future__ import annotations

from pathlib import Path

import pytest

from multicloud_cv.config import Setting, config_file_path, parse_overrides, redact, resolve
from multicloud_cv.errors import ConfigError

SETTINGS = (
    Setting("region", "AWS region", default="us-east-1"),
    Setting("key", "secret key", secret=True),
    Setting("bucket", "bucket", required=True),
)


def test_precedence_file_env_override(tmp_path: Path) -> None:
    cfg = tmp_path / "mcv.toml"
    cfg.write_text('[providers.demo]\nregion = "eu-west-1"\nbucket = "from-file"\n')
    env = {"MCV_DEMO_BUCKET": "from-env"}
    values = resolve("demo", SETTINGS, {"region": "ap-south-1"}, environ=env, config_path=cfg)
    assert values == {"region": "ap-south-1", "bucket": "from-env"}
    assert resolve("demo", SETTINGS, environ={}, config_path=cfg)["region"] == "eu-west-1"
    assert resolve("demo", SETTINGS, environ={}, config_path=None, use_config_file=False)["region"] == "us-east-1"


def test_local_file_beats_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "mcv").mkdir(parents=True)
    (xdg / "mcv" / "config.toml").write_text("")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    work = tmp_path / "work"
    work.mkdir()
    assert config_file_path(work) == xdg / "mcv" / "config.toml"
    (work / "mcv.toml").write_text("")
    assert config_file_path(work) == work / "mcv.toml"


def test_unknown_key_lists_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown setting 'regoin'.*valid keys: bucket, key, region"):
        resolve("demo", SETTINGS, {"regoin": "x"}, environ={}, use_config_file=False)


def test_bad_override_and_bad_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not key=value"):
        parse_overrides(["region"])
    broken = tmp_path / "mcv.toml"
    broken.write_text("[providers.demo\n")
    with pytest.raises(ConfigError, match="cannot read config file"):
        resolve("demo", SETTINGS, environ={}, config_path=broken)


def test_secrets_are_redacted() -> None:
    assert redact(SETTINGS, {"key": "hunter2", "region": "x"}) == {"key": "***", "region": "x"}
