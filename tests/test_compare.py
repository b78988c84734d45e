"""``mcv compare``: one split for every provider, our scores, failures and refusals reported, resume, cleanup.

Uses the in-process ``centroid`` example provider (instant) and ``local`` with cheap settings
(1 epoch, seed 0, a tiny dataset). Each run of ``local`` trains in a real worker process and serves
from a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from support import run_mcv

from multicloud_cv.compare import compare, compare_key, exit_code, parse_provider_pairs, report_markdown
from multicloud_cv.datasets import load_dataset
from multicloud_cv.errors import BadInput
from multicloud_cv.registry import registry
from multicloud_cv.runs import RunStore
from multicloud_cv.states import JobState
from multicloud_cv.testing import make_tiny_dataset, validate_document
from multicloud_cv.testing.datasets import make_multilabel_dataset

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs" / "schema" / "comparison.schema.json").read_text())
LOCAL_HP = {"local": {"seed": "0"}}


def flat_dataset(root: Path, per_class: dict[str, int] | None = None) -> Path:
    """``root/<class>/*.png`` with no split folders, so compare has to assign the test split."""
    generated = make_tiny_dataset(root.parent / f"{root.name}-gen", classes=3, train_per_class=10, test_per_class=0)
    for folder in sorted((generated / "train").iterdir()):
        keep = (per_class or {}).get(folder.name, 10)
        (root / folder.name).mkdir(parents=True)
        for image in sorted(folder.iterdir())[:keep]:
            shutil.move(str(image), root / folder.name / image.name)
    shutil.rmtree(generated)
    return root


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def live_endpoints() -> list[Any]:
    return RunStore().endpoints()


@pytest.fixture()
def flat(tmp_path: Path) -> Path:
    return flat_dataset(tmp_path / "shapes")


@pytest.fixture()
def cancel_local_jobs() -> Iterator[None]:
    """Never leave a local worker running after a test, whatever it asserted."""
    yield
    for record in RunStore().jobs("local"):
        if not JobState(record.state).is_terminal():
            registry().trainer("local").cancel(record.id)


def _json(out: Any, code: int = 0) -> Any:
    assert out.returncode == code, out.stderr
    return json.loads(out.stdout)


@pytest.mark.usefixtures("cancel_local_jobs")
def test_local_and_centroid_share_one_split_failures_are_reported_and_reruns_resume(flat: Path, mcv_home: Path) -> None:
    before = listing(flat)
    # run 1: local cannot finish within the timeout -> failed with its reason; centroid still finishes
    first = compare(flat, ["local", "centroid"], epochs=1, hyperparameters=LOCAL_HP, train_timeout=0.3)
    local, centroid = first.providers
    assert (local.provider, local.state, local.stage) == ("local", "failed", "train")
    assert "still not finished" in (local.reason or "") and local.job_id
    assert centroid.state == "ok" and centroid.evaluation is not None and centroid.endpoint_state == "DELETED"
    assert exit_code(first) == 1
    assert live_endpoints() == []

    # run 2, same comparison: the still-running local job is awaited, centroid's model reused, nothing submitted
    jobs_before = [r.id for r in RunStore().jobs()]
    second = compare(flat, ["local", "centroid"], epochs=1, hyperparameters=LOCAL_HP)
    assert second.compare_id == first.compare_id
    assert [r.id for r in RunStore().jobs()] == jobs_before
    assert [r.state for r in second.providers] == ["ok", "ok"] and exit_code(second) == 0
    local, centroid = second.providers
    assert local.reused and local.job_id == first.providers[0].job_id
    assert centroid.reused and centroid.model_id == first.providers[1].model_id
    assert local.train_seconds is not None and local.train_seconds > 0
    assert local.prediction_cost_per_1000_usd == 0.0 and local.prediction_cost_basis  # the local endpoint is free
    assert local.provider_reported.get("val_accuracy") is not None  # the provider's own number, beside ours

    # the same held-out images for both, the ones in the stored split file, which is not in the dataset folder
    split_file = Path(second.split.file or "")
    assert second.split.source == "assigned" and split_file.is_relative_to(mcv_home)
    assert listing(flat) == before
    assigned = json.loads(split_file.read_text())["images"]
    test_images = sorted(path for path, split in assigned.items() if split == "test")
    assert len(test_images) == second.split.test_images == 6  # 20 % of 10 per class, 3 classes
    fingerprint = hashlib.sha256("\n".join(test_images).encode()).hexdigest()
    assert local.test_fingerprint == centroid.test_fingerprint == second.split.test_fingerprint == fingerprint
    assert local.evaluation is not None and centroid.evaluation is not None
    assert local.evaluation.num_images == centroid.evaluation.num_images == 6
    assert local.evaluation.provider == "local" and centroid.evaluation.provider == "centroid"
    assert centroid.evaluation.accuracy is not None and centroid.evaluation.accuracy >= 0.5
    assert live_endpoints() == []  # both endpoints undeployed
    validate_document("comparison", second)
    jsonschema.validate(json.loads(second.model_dump_json()), SCHEMA)


def test_cli_json_keep_then_rerun_reuses_the_kept_endpoint_and_deletes_it(flat: Path) -> None:
    kept = _json(run_mcv("compare", "--dataset", str(flat), "--providers", "centroid", "--keep", "--json"))
    jsonschema.validate(kept, SCHEMA)
    (row,) = kept["providers"]
    assert row["state"] == "ok" and row["endpoint_state"] == "READY" and kept["keep"] is True
    assert [e["id"] for e in _json(run_mcv("endpoints", "--json"))["endpoints"]] == [row["endpoint_id"]]

    again = run_mcv("compare", "--dataset", str(flat), "--providers", "centroid")
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    assert "| provider | state | accuracy | macro F1 | train time | train cost | p50 latency | emulated |" in lines
    assert any(line.startswith("| centroid | ok | 0.") and line.endswith("| no |") for line in lines)
    assert f"reusing endpoint {row['endpoint_id']}" in again.stderr and "reusing model" in again.stderr
    assert _json(run_mcv("endpoints", "--json"))["endpoints"] == []
    assert not (flat / "mcv-split.json").exists()


@pytest.mark.usefixtures("cancel_local_jobs")
def test_provider_that_cannot_do_the_task_is_refused_while_the_other_runs(tmp_path: Path) -> None:
    dataset = make_multilabel_dataset(tmp_path / "multi")
    result = compare(dataset, ["centroid", "local"], epochs=1, hyperparameters=LOCAL_HP, threshold=0.4)
    centroid, local = result.providers
    assert (centroid.state, centroid.stage, centroid.job_id) == ("refused", "check", None)
    assert "task:multilabel" in (centroid.reason or "") and "picks exactly one class" in (centroid.reason or "")
    assert local.state == "ok" and local.evaluation is not None and local.evaluation.task == "multilabel"
    assert local.evaluation.threshold == 0.4 and result.split.source == "dataset"
    assert exit_code(result) == 0  # refused is not a failure: nothing was sent
    assert [r.provider for r in RunStore().jobs()] == ["local"]
    text = report_markdown(result, details=False)
    assert "| centroid | refused | - | - |" in text
    assert "centroid refused: provider 'centroid' cannot do this: task:multilabel" in text
    validate_document("comparison", result)


def test_scoring_failure_is_reported_and_the_endpoint_is_still_deleted(tmp_path: Path) -> None:
    root = make_tiny_dataset(tmp_path / "shapes", classes=2, train_per_class=6, test_per_class=2)
    broken = root / "test" / "circle" / "circle_000.png"
    broken.write_bytes(broken.read_bytes()[:60])  # the header reads fine (preflight passes), the pixels do not
    result = compare(root, ["centroid"])
    (row,) = result.providers
    assert (row.state, row.stage) == ("failed", "evaluate") and "circle_000.png" in (row.reason or "")
    assert row.endpoint_id and row.endpoint_state == "DELETED" and live_endpoints() == []
    assert exit_code(result) == 1


def test_every_provider_refused_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"no provider can run this comparison: .*task:multilabel"):
        compare(make_multilabel_dataset(tmp_path / "multi"), ["centroid"])
    assert RunStore().jobs() == []


def test_unknown_provider_fails_the_whole_command_naming_the_installed_ones(flat: Path) -> None:
    out = run_mcv("compare", "--dataset", str(flat), "--providers", "centroid,nosuch")
    assert out.returncode == 2 and out.stdout == ""
    (line,) = out.stderr.strip().splitlines()
    assert "no provider 'nosuch'" in line and "centroid" in line and "local" in line
    error = _json(run_mcv("compare", "-d", str(flat), "-p", "nosuch", "--json"), code=2)
    validate_document("error", error)
    assert error["type"] == "UnknownProvider" and RunStore().jobs() == []


@pytest.mark.parametrize(
    ("per_class", "message"),
    [
        ({"triangle": 1}, "class 'triangle' has 1 image(s)"),
        (
            {"square": 2},
            "class 'square' (2 images) gets no test image at --test-fraction 0.2; each class needs at least 3",
        ),
    ],
)
def test_dataset_too_small_to_split_exits_2_and_writes_nothing(
    tmp_path: Path, mcv_home: Path, per_class: dict[str, int], message: str
) -> None:
    small = flat_dataset(tmp_path / "small", per_class)
    out = run_mcv("compare", "--dataset", str(small), "--providers", "centroid")
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert "too small to split" in line and message in line
    assert RunStore().jobs() == [] and not (mcv_home / "compare").exists()


def test_bad_provider_pairs_and_rejected_hyperparameters_exit_2_before_any_job(flat: Path) -> None:
    no_prefix = run_mcv("compare", "-d", str(flat), "-p", "centroid", "--hp", "seed=0")
    assert no_prefix.returncode == 2 and "is not provider.key=value" in no_prefix.stderr
    not_compared = run_mcv("compare", "-d", str(flat), "-p", "centroid", "--hp", "local.seed=0")
    assert not_compared.returncode == 2 and "not compared" in not_compared.stderr
    rejected = run_mcv("compare", "-d", str(flat), "-p", "centroid", "--hp", "centroid.lr=0.1")
    assert rejected.returncode == 2 and "takes no hyperparameters" in rejected.stderr
    bad_setting = run_mcv("compare", "-d", str(flat), "-p", "centroid", "-o", "centroid.thumbnail_size=0")
    assert bad_setting.returncode == 2 and "thumbnail_size" in bad_setting.stderr
    assert RunStore().jobs() == []


def test_compare_id_is_stable_and_covers_what_changes_a_model(tmp_path: Path) -> None:
    dataset = load_dataset(flat_dataset(tmp_path / "shapes"))

    def key(**changes: Any) -> str:
        args: dict[str, Any] = {
            "dataset": dataset,
            "fmt": "folder",
            "providers": ["local", "centroid"],
            "epochs": 2,
            "hyperparameters": {"local": {"lr": "0.1"}},
            "settings": {},
            "test_fraction": 0.2,
            "validation_fraction": 0.0,
            "seed": 0,
        }
        return compare_key(**{**args, **changes})[0]

    base = key()
    assert base.startswith("cmp-") and key() == base
    assert key(providers=["centroid", "local"]) == base
    for changed in (
        {"epochs": 3},
        {"hyperparameters": {"local": {"lr": "0.2"}}},
        {"providers": ["local"]},
        {"seed": 1},
        {"test_fraction": 0.3},
        {"settings": {"local": {"threads": "2"}}},
    ):
        assert key(**changed) != base, changed
    _, document = compare_key(
        dataset,
        "folder",
        ["x"],
        None,
        {},
        {"x": {"api_key": "s3cr3t"}},
        0.2,
        0.0,
        0,
        secret_settings={"x": ["api_key"]},
    )
    assert "s3cr3t" not in json.dumps(document)


def test_provider_pairs_are_split_per_provider() -> None:
    pairs = parse_provider_pairs(
        ["local.lr=0.01", "local.seed=3", "sagemaker.image_shape=3,224,224"], ["local", "sagemaker"], "--hp"
    )
    assert pairs == {"local": {"lr": "0.01", "seed": "3"}, "sagemaker": {"image_shape": "3,224,224"}}
