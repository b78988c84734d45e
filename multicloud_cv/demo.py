"""``mcv demo``: the whole path on the local provider and a real bundled dataset.

Train (Fashion-MNIST subset, else scikit-learn digits) -> deploy on 127.0.0.1 -> predict a
few held-out images -> evaluate on the held-out split -> undeploy. The endpoint is
undeployed even when a step fails.
"""

from __future__ import annotations

import logging

from multicloud_cv.capabilities import Task
from multicloud_cv.datasets import load_dataset
from multicloud_cv.evaluation import evaluate_endpoint
from multicloud_cv.interfaces import TrainingSpec
from multicloud_cv.registry import registry
from multicloud_cv.runs import RunStore, mcv_home
from multicloud_cv.schema import DemoResult

log = logging.getLogger(__name__)


def run_demo(
    epochs: int = 6,
    train_per_class: int = 500,
    test_per_class: int = 100,
    predict_count: int = 5,
    show_progress: bool = True,
    provider: str = "local",
) -> DemoResult:
    """Run the demo and return the evaluation and the sample predictions."""
    from multicloud_cv.cli.output import count_progress, job_progress, stderr_console

    console = stderr_console()
    store = RunStore()
    run_id = store.new_run("demo")
    from multicloud_cv.bundled import demo_dataset

    with count_progress(show_progress, "writing images") as update:
        written = [0]

        def on_file() -> None:
            written[0] += 1
            if written[0] % 200 == 0:
                update(written[0], written[0])

        path, name = demo_dataset(mcv_home(), train_per_class, test_per_class, on_file)
    dataset = load_dataset(path)
    if show_progress:
        console.print(f"dataset [bold]{name}[/]: {len(dataset.classes)} classes, {dataset.splits}")
    reg = registry()
    trainer = reg.trainer(provider)
    job = trainer.submit(TrainingSpec(dataset=dataset, task=Task.CLASSIFICATION, epochs=epochs), run_id=run_id)
    with job_progress(show_progress, f"training {job.id}") as on_update:
        job = trainer.wait(job.id, on_update=on_update)
    assert job.model_id is not None
    deployer = reg.deployer(provider)
    endpoint = deployer.deploy(job.model_id, run_id=run_id)
    if show_progress:
        console.print(f"endpoint [bold]{endpoint.id}[/] at {endpoint.url}")
    try:
        predictor = reg.predictor(provider)
        test = dataset.split("test")
        step = max(1, len(test) // predict_count)
        samples = [dataset.absolute(img) for img in test[::step][:predict_count]]
        predictions = predictor.predict_batch(endpoint.id, samples, top_k=3)
        with count_progress(show_progress, "evaluating") as on_progress:
            evaluation = evaluate_endpoint(predictor, endpoint.id, dataset, split="test", on_progress=on_progress)
    finally:
        deployer.undeploy(endpoint.id)
    return DemoResult(evaluation=evaluation, predictions=predictions)
