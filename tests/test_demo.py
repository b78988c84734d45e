"""`mcv demo --json` on a small real subset: the whole path, one valid JSON document."""

from __future__ import annotations

import json

from support import run_mcv

from multicloud_cv.testing import validate_document


def test_demo_json_small() -> None:
    out = run_mcv("demo", "--json", "--train-per-class", "40", "--test-per-class", "10", "--epochs", "2")
    assert out.returncode == 0, out.stderr
    document = json.loads(out.stdout)
    validate_document("demo", document)
    assert document["evaluation"]["num_images"] in (100, 359)  # Fashion-MNIST subset, or the digits fallback
    assert document["evaluation"]["accuracy"] > 0.3  # 10 classes: far above chance after 2 short epochs
    assert len(document["predictions"]) == 5
    assert all(p["provider"] == "local" and p["labels"] for p in document["predictions"])
    assert json.loads(run_mcv("endpoints", "--json").stdout)["endpoints"] == []  # undeployed at the end
