"""The ``mcv compare`` HTML report: one self-contained file whose every chart draws in a real browser.

The browser test runs a real tiny comparison (``centroid`` and ``local``, 1 epoch), writes the report and opens it
in headless Chromium (``chromium --headless --no-sandbox --dump-dom``): the page's own check script must count
every chart drawn and no script error. Chromium is required: CI installs it; without it the test fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from multicloud_cv.compare import compare, report_html
from multicloud_cv.errors import BadInput
from multicloud_cv.report import ReportDependencyMissing, chart_ids, prediction_cost_per_1000
from multicloud_cv.schema import CompareSplit, Comparison, Evaluation, PerLabel, ProviderResult
from multicloud_cv.testing import make_tiny_dataset

EXTERNAL = re.compile(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", re.I)


def chromium() -> str:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return str(shutil.which(name))
    pytest.fail("chromium is not installed: the report test needs a real browser (apt-get install chromium)")


def dump_dom(page: Path) -> str:
    out = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def body_attribute(dom: str, name: str) -> str:
    body = re.search(r"<body\b[^>]*>", dom)
    assert body, dom[:500]
    found = re.search(rf'\b{name}="([^"]*)"', body.group(0))
    assert found, f"<body> has no {name}: {body.group(0)}"
    return found.group(1)


def test_report_of_a_real_comparison_draws_every_chart_in_chromium(tmp_path: Path) -> None:
    dataset = make_tiny_dataset(tmp_path / "shapes", classes=3, train_per_class=8, test_per_class=2)
    comparison = compare(dataset, ["local", "centroid"], epochs=1, hyperparameters={"local": {"seed": "0"}})
    assert [r.state for r in comparison.providers] == ["ok", "ok"]
    page = tmp_path / "report.html"
    page.write_text(report_html(comparison), encoding="utf-8")
    html = page.read_text(encoding="utf-8")
    assert not EXTERNAL.findall(html), "the report must open without a network"
    assert html.count("<script src") == 0 and "cdn.plot.ly" not in html.split("/*", 1)[0]
    ids = chart_ids(comparison)
    assert ids == [
        "chart-metrics",
        "chart-cost-accuracy",
        "chart-f1-heatmap",
        "chart-confusion-local",
        "chart-confusion-centroid",
        "chart-latency",
        "chart-train-time",
    ]
    dom = dump_dom(page)
    assert body_attribute(dom, "data-errors") == ""
    assert body_attribute(dom, "data-charts") == str(len(ids))
    assert 'class="main-svg"' in dom
    for div_id in ids:
        assert f'id="{div_id}"' in dom, div_id


def _comparison() -> Comparison:
    evaluation = Evaluation(
        task="classification",
        num_images=4,
        accuracy=0.75,
        macro_f1=0.7,
        labels=["a", "b"],
        per_label=[
            PerLabel(name="a", index=0, precision=1, recall=0.5, f1=0.67, support=2),
            PerLabel(name="b", index=1, precision=0.67, recall=1, f1=0.8, support=2),
        ],
        confusion=[[1, 1], [0, 2]],
        latency_ms_p50=120.0,
        latency_ms_p95=300.0,
        emulated=True,
    )
    return Comparison(
        compare_id="cmp-000000000000",
        dataset="/data/ab",
        format="folder",
        task="classification",
        classes=["a", "b"],
        split=CompareSplit(source="dataset", train_images=8, validation_images=0, test_images=4, test_fingerprint="x"),
        threshold=0.5,
        providers=[
            ProviderResult(
                provider="sagemaker",
                state="ok",
                evaluation=evaluation,
                train_seconds=400.0,
                train_cost_usd=0.42,
                hosting_cost_per_hour_usd=0.23,
                emulated=True,
            ),
            ProviderResult(provider="rekognition", state="refused", stage="check", reason="needs 2+ labels per image"),
            ProviderResult(provider="local", state="failed", stage="train", reason="worker exited 1"),
        ],
        emulated=True,
    )


def test_report_marks_emulated_runs_and_says_why_providers_did_not_finish() -> None:
    comparison = _comparison()
    html = report_html(comparison)
    assert "id='emulated-banner'" in html and "EMULATED" in html
    assert html.count("sagemaker (emulated)") >= 3  # table, details and the charts' data
    assert "needs 2+ labels per image" in html and "worker exited 1" in html
    assert "threshold 0.5" in html and "4 test" in html
    assert chart_ids(comparison)[3] == "chart-confusion-sagemaker"
    assert all(f'id="{div_id}"' in html for div_id in chart_ids(comparison))


def test_prediction_cost_per_1000_is_an_estimate_from_the_hourly_price_and_latency() -> None:
    cost = prediction_cost_per_1000(_comparison().providers[0])
    assert cost.estimate and cost.usd == pytest.approx(0.23 * 120.0 / 3600.0, abs=1e-6)
    assert "instance hour" in cost.basis
    free = ProviderResult(provider="local", state="ok", hosting_cost_per_hour_usd=0.0)
    assert prediction_cost_per_1000(free).usd == 0.0
    per_request = prediction_cost_per_1000(ProviderResult(provider="customvision", state="ok"))
    assert per_request.usd == 2.0 and not per_request.estimate


def test_missing_plotly_is_bad_input_naming_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "plotly", None)
    with pytest.raises(ReportDependencyMissing, match="pip install plotly") as caught:
        report_html(_comparison())
    assert isinstance(caught.value, BadInput)


def test_importing_the_report_module_does_not_import_plotly() -> None:
    code = "import sys, multicloud_cv.report, multicloud_cv.compare; assert 'plotly' not in sys.modules"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
