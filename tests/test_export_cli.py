"""``mcv export`` and ``mcv deploy MODEL --provider local`` (core export, local provider).

One test trains a tiny local model through the real command, exports it to ONNX, checks the files, the record and
the JSON document, and serves the export; the others use a model trained in-process
(:mod:`tiny_models`) and recorded directly, so they take a second or two each.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import run_mcv
from tiny_models import train_tiny_classifier

from multicloud_cv.errors import BadInput, ServiceError
from multicloud_cv.exporting import unpack
from multicloud_cv.runs import ModelRecord, RunStore, new_id
from multicloud_cv.testing import make_tiny_dataset, validate_document

pytestmark = pytest.mark.timeout(240)


def _json(out: Any) -> Any:
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _one_line_error(out: Any, *words: str) -> None:
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return train_tiny_classifier(tmp_path_factory.mktemp("tiny"))


def _record(trained: Any, provider: str = "local", **info: Any) -> ModelRecord:
    record = ModelRecord(
        id=new_id("model"),
        provider=provider,
        native_id="test",
        task=trained.task,
        labels=list(trained.labels),
        artifact=str(trained.model_dir),
        info=dict(info),
    )
    return RunStore().add_model(record)


def test_train_export_onnx_and_serve_it(tmp_path: Path, mcv_home: Path) -> None:
    tiny = make_tiny_dataset(tmp_path / "tiny", classes=2, train_per_class=6, test_per_class=2)
    done = _json(run_mcv("train", "--dataset", str(tiny), "--epochs", "1", "--json"))
    model_id = done["model_id"]

    exported = _json(run_mcv("export", model_id, "--format", "onnx", "--json"))
    validate_document("export", exported)
    folder = mcv_home / "exports" / model_id / "onnx"
    assert exported["path"] == str(folder) and exported["format"] == "onnx" and exported["provider"] == "local"
    assert "model.onnx" in exported["files"] and "labels.json" in exported["files"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(exported["files"])
    assert not [p for p in folder.parent.iterdir() if p.name != "onnx"], "a temporary folder was left behind"
    local_id = exported["local_model_id"]
    assert local_id and local_id != model_id

    store = RunStore()
    record = store.model(model_id)
    recorded = {"path": str(folder), "files": exported["files"], "local_model_id": local_id}
    assert record.info["exports"]["onnx"] == recorded
    local = store.model(local_id)
    assert local.provider == "local" and local.artifact == str(folder) and local.task == "classification"
    assert local.labels == ["circle", "square"] and local.info["exported_from"] == model_id

    # again, into --out, human output; the local model record is reused
    out_dir = tmp_path / "out"
    human = run_mcv("export", model_id, "--format", "ONNX", "--out", str(out_dir))
    assert human.returncode == 0, human.stderr
    assert f"as onnx to {out_dir}" in human.stdout and "model.onnx" in human.stdout
    assert "--provider local" in human.stdout
    assert (out_dir / "model.onnx").is_file()
    assert RunStore().model(model_id).info["exports"]["onnx"]["local_model_id"] == local_id

    # the exported model serves the same answers as the trained one
    image = next((tiny / "test" / "circle").iterdir())
    original = _json(run_mcv("deploy", model_id, "--json"))
    served = _json(run_mcv("deploy", local_id, "--json"))
    try:
        validate_document("endpoint", served)
        assert served["model_id"] == local_id and served["state"] == "READY"
        before = _json(run_mcv("predict", original["id"], str(image), "--json"))["predictions"][0]
        after = _json(run_mcv("predict", served["id"], str(image), "--json"))["predictions"][0]
        assert [label["name"] for label in after["labels"]] == [label["name"] for label in before["labels"]]
        for a, b in zip(after["labels"], before["labels"], strict=True):
            assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-5)
    finally:
        for endpoint in (original, served):
            run_mcv("undeploy", endpoint["id"], "--json")


def test_deploy_another_providers_model_with_local(trained: Any, tmp_path: Path) -> None:
    foreign = _record(trained, provider="customvision")
    out = run_mcv("deploy", foreign.id, "--provider", "local")
    _one_line_error(out, f"model {foreign.id} has no ONNX export", f"mcv export {foreign.id} --format onnx")

    local = _record(trained, exported_from=foreign.id)
    export_info = {"onnx": {"path": str(trained.model_dir), "files": ["model.onnx"], "local_model_id": local.id}}
    RunStore().update_model(foreign.id, info={"exports": export_info})
    endpoint = _json(run_mcv("deploy", foreign.id, "--provider", "local", "--json"))
    try:
        validate_document("endpoint", endpoint)
        assert endpoint["provider"] == "local" and endpoint["model_id"] == local.id
        answer = httpx.post(endpoint["url"] + "/v1/predict", content=trained.images[0].read_bytes(), timeout=30)
        assert answer.status_code == 200 and len(answer.json()["labels"]) == 3
        listed = _json(run_mcv("predict", endpoint["id"], str(trained.images[0]), "--json"))
        validate_document("prediction_list", listed)
    finally:
        run_mcv("undeploy", endpoint["id"])


def test_unknown_and_unsupported_formats_exit_2_in_one_line(trained: Any, mcv_home: Path) -> None:
    model = _record(trained)
    _one_line_error(run_mcv("export", model.id, "--format", "tflite"), "export:tflite", "ONNX only")
    _one_line_error(run_mcv("export", model.id, "--format", "pdf"), "unknown export format 'pdf'", "onnx")
    out = run_mcv("export", model.id, "--format", "docker", "--json")
    assert out.returncode == 2
    error = json.loads(out.stdout)
    validate_document("error", error)
    assert error["exit_code"] == 2 and "export:docker" in error["error"]
    _one_line_error(run_mcv("export", "model_missing", "--format", "onnx"), "model_missing")
    assert not (mcv_home / "exports").exists()


def test_nothing_half_written_when_the_hook_or_unpacking_fails(trained: Any, mcv_home: Path) -> None:
    from multicloud_cv import exporting
    from multicloud_cv.registry import registry

    trainer = registry().trainer("local")
    model = _record(trained)
    first = trainer.export(model.id, "onnx")
    folder = Path(first.path)
    before = sorted(p.name for p in folder.iterdir())
    info = RunStore().model(model.id).info

    def broken(source: Path, target: Path) -> None:
        target.mkdir(parents=True)
        (target / "model.onnx").write_bytes(b"half")
        raise ServiceError("the download broke")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(exporting, "unpack", broken)
        with pytest.raises(ServiceError, match="download broke"):
            trainer.export(model.id, "onnx")
    assert sorted(p.name for p in folder.iterdir()) == before  # the earlier export is intact
    assert sorted(p.name for p in folder.parent.iterdir()) == ["onnx"]  # no temporary folder left
    assert RunStore().model(model.id).info == info

    gone = _record(trained)
    RunStore().update_model(gone.id, artifact=str(mcv_home / "nowhere"))
    out_dir = mcv_home / "never"
    with pytest.raises(BadInput, match="no ONNX file"):
        trainer.export(gone.id, "onnx", out_dir)
    assert not out_dir.exists() and not list(mcv_home.glob(".never.*"))
    assert "exports" not in RunStore().model(gone.id).info

    (out_dir / "sub").mkdir(parents=True)
    out = run_mcv("export", model.id, "--format", "onnx", "--out", str(out_dir))
    _one_line_error(out, "not an empty folder")


def test_unsafe_archives_are_refused(tmp_path: Path) -> None:
    for name in ("../evil.txt", "/abs.txt"):
        archive = tmp_path / "bad.zip"
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zipped:
            zipped.writestr("model.onnx", b"x")
            zipped.writestr(name, b"x")
        archive.write_bytes(buffer.getvalue())
        with pytest.raises(ServiceError, match="outside the folder"):
            unpack(archive, tmp_path / "target")
        assert not (tmp_path / "evil.txt").exists()
        if (tmp_path / "target").exists():
            (tmp_path / "target" / "model.onnx").unlink(missing_ok=True)
            (tmp_path / "target").rmdir()
    link = zipfile.ZipInfo("model.onnx")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr(link, "/etc/passwd")
    (tmp_path / "link.zip").write_bytes(buffer.getvalue())
    with pytest.raises(ServiceError, match="not a plain file"):
        unpack(tmp_path / "link.zip", tmp_path / "linked")
