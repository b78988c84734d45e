"""The ``mcv compare --report out.html`` page: one self-contained HTML file with the table and the charts.

Contract of :func:`report_html`:

* **One file, no network.** plotly.js is inlined once (the first chart, ``include_plotlyjs=True``); every
  other chart reuses it (``include_plotlyjs=False``). No ``<script src>`` or ``<link href>`` points anywhere.
* **What it shows**: an EMULATED banner when any provider ran on an emulator (and "(emulated)" after that
  provider's name in the table and in every chart); the split and the threshold; the summary table (with the
  hosting cost per hour and the prediction cost per 1,000 images); why each failed or refused provider
  did not finish; each provider's details (ids, hyperparameters, its own metrics, warnings); cost notes.
* **Charts**, each a plotly graph in a ``<div>`` with a stable id (:func:`chart_ids` lists them in order):
  ``chart-metrics`` (accuracy and macro F1; mAP@.5, mAP and macro F1 for detection), ``chart-cost-accuracy``
  (training cost against the headline metric), ``chart-f1-heatmap`` (per-label F1, providers by labels),
  ``chart-confusion-<provider>`` (one per provider with a confusion matrix: single-label classification),
  ``chart-latency`` (p50 and p95 per provider: the :class:`~multicloud_cv.schema.Comparison` keeps those two
  percentiles, not each image's latency) and ``chart-train-time``. Only providers that were scored appear in
  the charts; a comparison where none was scored still draws every chart, empty, with a note.
* **Self-check for browsers**: an inline script collects window errors and unhandled promise rejections into
  ``document.body.dataset.errors`` (one message a line; empty when none) and, once the page has loaded, sets
  ``document.body.dataset.charts`` to the number of plotly graphs that drew their SVG (``.js-plotly-plot``
  holding an ``svg.main-svg``). ``data-charts-expected`` on ``<body>`` holds the number of charts written.

plotly is imported only when a report is drawn (``pip install plotly``, or the ``report`` extra); without it
:func:`report_html` raises :class:`ReportDependencyMissing` (a :class:`BadInput`, exit 2). Importing this module
imports neither plotly nor anything heavy.

Prediction cost per 1,000 images (:func:`prediction_cost_per_1000`): a per-request price from the price table
when the service bills per transaction (Custom Vision: about $2 per 1,000); otherwise an *estimate* from the
endpoint's hourly cost and the measured p50 latency (one request at a time, the endpoint busy all hour:
``hourly x p50_ms / 3600``). SageMaker and Vertex endpoints bill per instance or node hour; Rekognition Custom
Labels bills DetectCustomLabels by inference-unit hours while the model runs, not per image.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

from multicloud_cv.errors import BadInput

if TYPE_CHECKING:
    from multicloud_cv.cost import PriceTable
    from multicloud_cv.schema import Comparison, Evaluation, ProviderResult

log = logging.getLogger(__name__)

#: Units of the price table that bill per request (per 1,000 of them).
PER_1000_UNITS = frozenset({"1000_transactions", "1000_images", "1000_predictions"})
INSTALL_HINT = "pip install plotly (or pip install 'multicloud-cv[report]')"

#: Said beside the per-1,000 figure of providers whose prediction price is hourly, by provider name.
BILLING_NOTES = {
    "rekognition": "Rekognition Custom Labels bills DetectCustomLabels by inference-unit hours while the model "
    "runs, not per image",
    "sagemaker": "SageMaker real-time endpoints bill per instance hour",
    "vertex": "Vertex AI endpoints bill per node hour",
    "local": "the local provider runs on this machine: no charge",
}


class ReportDependencyMissing(BadInput):
    """The HTML report needs plotly, which is not installed."""


def require_plotly() -> None:
    """Raise :class:`ReportDependencyMissing` (naming ``pip install plotly``) unless plotly can be imported.

    Callers that write a report at the end of a long run (``mcv compare --report x.html``) call this first.
    """
    try:
        import plotly  # noqa: F401
    except ImportError as exc:
        raise ReportDependencyMissing(
            f"the HTML report draws its charts with plotly, not installed: {INSTALL_HINT}"
        ) from exc


# -- figures ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PredictionCost:
    """USD per 1,000 images predicted (``None``: unknown), whether it is an estimate, and how it was found."""

    usd: float | None
    estimate: bool
    basis: str


def prediction_cost_per_1000(
    result: ProviderResult, prices: PriceTable | None = None, region: str | None = None
) -> PredictionCost:
    """The cost of predicting 1,000 images with ``result``'s endpoint (see the module docstring for the rule).

    ``prices`` defaults to :func:`multicloud_cv.cost.default_prices` (the bundled table and the config's
    ``[prices]`` overrides).
    """
    from multicloud_cv.cost import default_prices

    table = prices if prices is not None else default_prices()
    per_request = [
        row
        for row in (*table.overrides, *table.rows)
        if row.provider == result.provider
        and row.unit in PER_1000_UNITS
        and (region is None or row.region in (region, "*"))
    ]
    if per_request:
        row = per_request[0]
        return PredictionCost(
            row.price_usd, False, f"{row.item} price per {row.unit} ({row.source}, as of {row.as_of})"
        )
    hourly = result.hosting_cost_per_hour_usd
    note = BILLING_NOTES.get(result.provider)
    if hourly is None:
        return PredictionCost(None, False, note or "no prediction or hosting price known")
    if hourly == 0:
        return PredictionCost(0.0, False, note or "the endpoint costs nothing")
    p50 = result.evaluation.latency_ms_p50 if result.evaluation else None
    if not p50:
        return PredictionCost(None, True, (note + "; " if note else "") + "no measured latency to estimate from")
    usd = round(hourly * p50 / 3600.0, 6)
    basis = f"estimate: ${hourly:g}/h x p50 {p50:.1f} ms, one request at a time"
    return PredictionCost(usd, True, (note + "; " if note else "") + basis)


def _name(result: ProviderResult) -> str:
    return f"{result.provider} (emulated)" if result.emulated else result.provider


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "provider"


def chart_ids(comparison: Comparison) -> list[str]:
    """The ids of the chart ``<div>``\\ s :func:`report_html` writes, in page order."""
    ids = ["chart-metrics", "chart-cost-accuracy", "chart-f1-heatmap"]
    ids += [
        f"chart-confusion-{_slug(r.provider)}" for r in _scored(comparison) if r.evaluation and r.evaluation.confusion
    ]
    return [*ids, "chart-latency", "chart-train-time"]


def _scored(comparison: Comparison) -> list[ProviderResult]:
    return [r for r in comparison.providers if r.evaluation is not None]


def _metrics(comparison: Comparison) -> list[tuple[str, Any]]:
    """(label, reader) of the metric bars for the comparison's task."""
    if comparison.task == "detection":
        return [("mAP@.5", lambda e: e.map50), ("mAP@.5:.95", lambda e: e.map), ("macro F1", lambda e: e.macro_f1)]
    first = "exact-match accuracy" if comparison.task == "multilabel" else "accuracy"
    return [(first, lambda e: e.accuracy), ("macro F1", lambda e: e.macro_f1)]


def _empty_note(figure: Any, scored: Sequence[ProviderResult], text: str = "no provider was scored") -> None:
    if not scored:
        figure.add_annotation(text=text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)


def _figures(comparison: Comparison) -> list[tuple[str, Any]]:
    """(div id, plotly figure) for every chart, in page order (the same ids as :func:`chart_ids`)."""
    import plotly.graph_objects as go

    from multicloud_cv.compare import primary_metric

    scored = _scored(comparison)
    names = [_name(r) for r in scored]
    evaluations: list[Evaluation] = [r.evaluation for r in scored if r.evaluation is not None]
    layout: dict[str, Any] = {"template": "plotly_white", "height": 330, "margin": {"t": 50, "l": 60, "r": 20, "b": 50}}
    out: list[tuple[str, Any]] = []

    bars = go.Figure(layout={**layout, "title": "Scores on the shared test split (ours)", "barmode": "group"})
    for label, read in _metrics(comparison):
        values = [read(e) for e in evaluations]
        bars.add_bar(name=label, x=names, y=values, text=[_fmt(v) for v in values], textposition="outside")
    bars.update_yaxes(range=[0, 1.08], title="score")
    _empty_note(bars, scored)
    out.append(("chart-metrics", bars))

    metric, read_metric = primary_metric(comparison)
    costed = [r for r in scored if r.train_cost_usd is not None and r.evaluation is not None]
    scatter = go.Figure(layout={**layout, "title": f"Training cost against {metric}"})
    scatter.add_scatter(
        x=[r.train_cost_usd for r in costed],
        y=[read_metric(r.evaluation) if r.evaluation else None for r in costed],
        text=[_name(r) for r in costed],
        mode="markers+text",
        textposition=[_POSITIONS[i % len(_POSITIONS)] for i in range(len(costed))],
        marker={"size": 14},
        cliponaxis=False,
        name=metric,
    )
    top = max([r.train_cost_usd or 0.0 for r in costed] + [0.0])
    pad = top * 0.1 or 0.01
    scatter.update_xaxes(title="training cost (USD, estimate)", range=[-pad, top + pad])
    scatter.update_yaxes(title=metric, range=[0, 1.08])
    _empty_note(scatter, costed, "no scored provider has a known training cost")
    out.append(("chart-cost-accuracy", scatter))

    labels = list(comparison.classes)
    z = []
    for evaluation in evaluations:
        f1 = {row.name: row.f1 for row in evaluation.per_label}
        z.append([f1.get(name) for name in labels])
    heat = go.Figure(layout={**layout, "title": "F1 per label", "height": max(260, 90 + 45 * len(names))})
    heat.add_heatmap(
        z=z, x=labels, y=names, zmin=0, zmax=1, colorscale="Viridis", texttemplate="%{z:.2f}", colorbar={"title": "F1"}
    )
    heat.update_yaxes(autorange="reversed")
    _empty_note(heat, scored)
    out.append(("chart-f1-heatmap", heat))

    for result in scored:
        scores = result.evaluation
        if scores is None or not scores.confusion:
            continue
        axis = scores.labels or labels
        matrix = go.Figure(
            layout={**layout, "title": f"Confusion matrix: {_name(result)}", "height": max(320, 140 + 40 * len(axis))}
        )
        matrix.add_heatmap(
            z=scores.confusion,
            x=axis,
            y=axis,
            colorscale="Blues",
            texttemplate="%{z}",
            colorbar={"title": "images"},
        )
        matrix.update_xaxes(title="predicted", side="bottom")
        matrix.update_yaxes(title="true", autorange="reversed")
        out.append((f"chart-confusion-{_slug(result.provider)}", matrix))

    latency = go.Figure(
        layout={**layout, "title": "Prediction latency per image, as the client saw it", "barmode": "group"}
    )
    latency.add_bar(name="p50", x=names, y=[e.latency_ms_p50 for e in evaluations])
    latency.add_bar(name="p95", x=names, y=[e.latency_ms_p95 for e in evaluations])
    latency.update_yaxes(title="ms", rangemode="tozero")
    _empty_note(latency, scored)
    out.append(("chart-latency", latency))

    timed = [r for r in comparison.providers if r.train_seconds is not None]
    train = go.Figure(layout={**layout, "title": "Training time (job created to job ended)"})
    train.add_bar(
        x=[_name(r) + (" (reused)" if r.reused else "") for r in timed],
        y=[r.train_seconds for r in timed],
        text=[_duration(r.train_seconds) for r in timed],
        textposition="outside",
        name="training",
    )
    train.update_yaxes(title="seconds", rangemode="tozero")
    _empty_note(train, timed, "no training time recorded")
    out.append(("chart-train-time", train))
    return out


#: Where the scatter's labels go, in turn, so providers at the same point stay readable.
_POSITIONS = ("top center", "bottom center", "middle right", "middle left", "top right", "bottom left")


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _duration(value: float | None) -> str:
    from multicloud_cv.compare import _seconds

    return _seconds(value)


# -- the page --------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.3em .6em;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f2f2f2}
.banner{background:#fff3cd;border:2px solid #e0a800;padding:.7em 1em;font-weight:bold;margin:1em 0}
.failed{color:#a00}.refused{color:#a60}.chart{margin:1.2em 0;border-top:1px solid #eee}
.note{color:#555;font-size:.92em}
"""

#: Runs first (in <head>): collect errors, and count drawn charts once the page has loaded.
_CHECK_SCRIPT = """
<script>
window.mcvErrors = [];
function mcvShowErrors() { if (document.body) document.body.dataset.errors = window.mcvErrors.join("\\n"); }
window.addEventListener("error", function (e) {
  window.mcvErrors.push(String(e.message || e.type) + (e.filename ? " (" + e.filename + ":" + e.lineno + ")" : ""));
  mcvShowErrors();
});
window.addEventListener("unhandledrejection", function (e) {
  window.mcvErrors.push("unhandled rejection: " + String(e.reason)); mcvShowErrors();
});
function mcvCount() {
  var drawn = 0;
  document.querySelectorAll(".js-plotly-plot").forEach(function (p) { if (p.querySelector("svg.main-svg")) drawn++; });
  document.body.dataset.charts = String(drawn);
  mcvShowErrors();
}
window.addEventListener("load", function () { mcvCount(); setTimeout(mcvCount, 0); setTimeout(mcvCount, 500); });
</script>
"""


def _table(header: Sequence[str], rows: Iterable[Sequence[object]], row_classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{escape(str(cell))}</th>" for cell in header)
    body = []
    for i, row in enumerate(rows):
        cls = f" class='{escape(row_classes[i])}'" if i < len(row_classes) and row_classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _money(value: float | None) -> str:
    from multicloud_cv.compare import _money as money

    return money(value)


def report_html(comparison: Comparison) -> str:
    """The comparison as one self-contained HTML page with charts (see the module docstring).

    Raises :class:`ReportDependencyMissing` when plotly is not installed.
    """
    require_plotly()
    import plotly.io as pio

    from multicloud_cv.compare import _afterword, _detail_lines, _heading, _slim, summary_rows

    figures = _figures(comparison)
    costs = {r.provider: prediction_cost_per_1000(r) for r in comparison.providers}
    header, rows = summary_rows(comparison)
    header = [*header, "hosting / hour", "prediction / 1,000 images"]
    full_rows = []
    for result, row in zip(comparison.providers, rows, strict=True):
        cost = costs[result.provider]
        shown = _money(cost.usd) + (" (estimate)" if cost.estimate and cost.usd is not None else "")
        row = [_name(result), *row[1:], _money(result.hosting_cost_per_hour_usd), shown]
        full_rows.append(row)
    title = f"mcv compare {comparison.compare_id}"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{escape(title)}</title><style>{_STYLE}</style>",
        _CHECK_SCRIPT,
        f"</head><body data-charts='0' data-errors='' data-charts-expected='{len(figures)}'>",
        f"<h1>{escape(title)}</h1>",
    ]
    if comparison.emulated:
        emulated = ", ".join(r.provider for r in comparison.providers if r.emulated)
        parts.append(
            "<div class='banner' id='emulated-banner'>EMULATED: results of "
            f"{escape(emulated)} come from an emulator of the service, not the real cloud; their scores, "
            "times and costs say nothing about the real service.</div>"
        )
    parts.append("<section id='summary'><h2>Summary</h2>")
    parts += [f"<p>{escape(line)}</p>" for line in _heading(comparison)]
    parts.append(_table(header, full_rows, [r.state if r.state != "ok" else "" for r in comparison.providers]))
    after = _afterword(comparison)
    if after:
        parts.append("<ul id='reasons'>" + "".join(f"<li>{escape(line)}</li>" for line in after) + "</ul>")
    parts.append("</section><section id='charts'><h2>Charts</h2>")
    parts.append(
        "<p class='note'>Scores come from mcv's own evaluation code on the same test images and threshold for "
        "every provider. Latency: the comparison keeps each provider's p50 and p95 per-image latency, not every "
        "image's, so the latency chart shows those two percentiles.</p>"
    )
    for i, (div_id, figure) in enumerate(figures):
        html = pio.to_html(
            figure,
            full_html=False,
            include_plotlyjs=i == 0,
            div_id=div_id,
            config={"displaylogo": False, "responsive": True},
            validate=True,
        )
        parts.append(f"<div class='chart' id='{div_id}-box'>{html}</div>")
    parts.append("</section><section id='costs'><h2>Costs</h2><ul>")
    for result in comparison.providers:
        cost = costs[result.provider]
        parts.append(
            f"<li><b>{escape(_name(result))}</b>: training {escape(_money(result.train_cost_usd))}, hosting "
            f"{escape(_money(result.hosting_cost_per_hour_usd))} per hour, prediction "
            f"{escape(_money(cost.usd))} per 1,000 images ({escape(cost.basis)})</li>"
        )
    parts.append(
        "</ul><p class='note'>Prices are on-demand list prices from multicloud_cv/data/prices.csv (each row with its "
        "unit, region, source and as-of date) or the [prices] table of the config file: estimates, never a bill. "
        "Training cost: the job's billable time times the hourly price.</p></section>"
    )
    parts.append("<section id='details'><h2>Per provider</h2>")
    for result in comparison.providers:
        parts.append(f"<h3 id='provider-{_slug(result.provider)}'>{escape(_name(result))}</h3><ul>")
        parts += [f"<li>{escape(line[2:])}</li>" for line in _detail_lines(_slim(result)) if line.startswith("- ")]
        parts.append("</ul>")
        evaluation = result.evaluation
        if evaluation and evaluation.per_label:
            parts.append(
                _table(
                    ["label", "precision", "recall", "F1", "support"],
                    [
                        [r.name, f"{r.precision:.3f}", f"{r.recall:.3f}", f"{r.f1:.3f}", r.support]
                        for r in evaluation.per_label
                    ],
                )
            )
    parts.append("</section></body></html>\n")
    log.debug("report for %s: %d charts", comparison.compare_id, len(figures))
    return "\n".join(parts)
