"""The plugin registry: real entry points (fake distributions written at test time), clear load errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support import run_mcv

from multicloud_cv.testing import validate_document

PLUGIN_CODE = textwrap.dedent("""
    from multicloud_cv.capabilities import ALL_FEATURES, Capabilities
    from multicloud_cv.interfaces import Trainer, NativeJob

    class Base(Trainer):
        description = "test plugin"
        capabilities = Capabilities.declare(["task:classification", "compute:cpu"],
            {f: "not in this test plugin" for f in ALL_FEATURES if f not in ("task:classification", "compute:cpu")})
        def _submit(self, spec, job_id):
            raise NotImplementedError
        def _describe(self, native_id, record):
            raise NotImplementedError

    class OldApi(Base):
        name = "oldapi"
        api_version = "0.3"

    class NoVersion(Base):
        name = "noversion"

    class NeedsSdk(Base):
        name = "needssdk"
        api_version = "1.0"
        requires = ("surely_not_an_installed_sdk",)
        install_hint = "pip install needssdk-plugin"

    class NotATrainer:
        name = "weird"
""")


@pytest.fixture()
def plugin_path(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "fakeplugins.py").write_text(PLUGIN_CODE)
    (site / "brokenplugin.py").write_text("import surely_not_an_installed_sdk\n")
    dist = site / "fake_mcv_plugins-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-mcv-plugins\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent("""
        [multicloud_cv.trainers]
        oldapi = fakeplugins:OldApi
        noversion = fakeplugins:NoVersion
        needssdk = fakeplugins:NeedsSdk
        weird = fakeplugins:NotATrainer
        broken = brokenplugin:Trainer
        sagemaker = brokenplugin:Trainer
    """)
    )
    return site


def _env(site: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def test_providers_json_lists_local_and_every_failure(plugin_path: Path) -> None:
    out = run_mcv("providers", "--json", env=_env(plugin_path))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    validate_document("providers", report)
    names = {p["name"]: p for p in report["providers"]}
    assert names["local"]["ready"] is True
    assert set(names["local"]["roles"]) == {"trainer", "deployer", "predictor"}
    assert names["needssdk"]["ready"] is False
    assert "pip install needssdk-plugin" in names["needssdk"]["problems"][0]
    failures = {f["name"]: f for f in report["failures"]}
    assert "plugin API 0.3" in failures["oldapi"]["reason"]
    assert "declares no api_version" in failures["noversion"]["reason"]
    assert "Trainer subclass" in failures["weird"]["reason"]
    assert failures["broken"]["reason"] == "cannot import surely_not_an_installed_sdk"
    assert "multicloud-cv-sagemaker" in failures["sagemaker"]["install"]


def test_unknown_provider_names_installed_ones(tmp_path: Path) -> None:
    (tmp_path / "d" / "a").mkdir(parents=True)
    out = run_mcv("train", "--provider", "sagemkaer", "--dataset", str(tmp_path / "d"))
    assert out.returncode == 2
    from multicloud_cv.registry import registry

    installed = ", ".join(registry().names)
    assert "local" in installed
    assert out.stderr.strip().splitlines() == [f"error: no provider 'sagemkaer'; installed: {installed}"]


def test_known_but_missing_provider_gives_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    # every provider this project ships is installed here: a known name without a distribution stands in
    from multicloud_cv import registry as module
    from multicloud_cv.errors import ProviderNotInstalled

    monkeypatch.setitem(module.KNOWN_PROVIDERS, "azureml", "pip install multicloud-cv-azureml")
    with pytest.raises(ProviderNotInstalled, match=r"^provider 'azureml' is not installed; install it with: pip "):
        module.registry().get("azureml", "trainer")


def test_broken_plugin_reason_on_use(plugin_path: Path, tmp_path: Path) -> None:
    out = run_mcv("train", "--provider", "needssdk", "--dataset", str(tmp_path), env=_env(plugin_path))
    assert out.returncode == 2
    assert "needs surely_not_an_installed_sdk: pip install needssdk-plugin" in out.stderr
    out = run_mcv("train", "--provider", "oldapi", "--dataset", str(tmp_path), env=_env(plugin_path))
    assert out.returncode == 1 and "failed to load" in out.stderr and "plugin API" in out.stderr


def test_listing_imports_no_sdk_no_torch_no_onnxruntime() -> None:
    code = textwrap.dedent("""
        import sys
        from click.testing import CliRunner
        from multicloud_cv.cli.main import cli
        result = CliRunner().invoke(cli, ["providers", "--json"])
        assert result.exit_code == 0, result.output
        heavy = [m for m in ("torch", "onnxruntime", "onnx", "boto3", "botocore", "google.cloud.aiplatform",
                             "google.cloud.storage", "google.protobuf", "azure.cognitiveservices", "msrest")
                 if m in sys.modules]
        print(",".join(heavy) or "none")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "none"


def test_help_imports_no_pydantic_no_stevedore() -> None:
    code = textwrap.dedent("""
        import sys
        from click.testing import CliRunner
        from multicloud_cv.cli.main import cli
        result = CliRunner().invoke(cli, ["--help"])
        assert result.exit_code == 0
        print(",".join(m for m in ("pydantic", "stevedore", "rich", "torch") if m in sys.modules) or "none")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "none"
