"""Pacing, retries and error translation of Custom Vision calls (:mod:`mcv_customvision.calls`).

The errors are the SDK's own: msrest ``HttpOperationError`` / the SDK's ``CustomVisionErrorException`` built from
real ``requests.Response`` objects in both body shapes the service uses; the end-to-end path through the emulator
is in test_cv_provider.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from mcv_customvision.calls import Caller, TokenBucket, read_error
from multicloud_cv.errors import BadInput, ConfigError, NotFound, ServiceError


def _response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers.update({"Content-Type": "application/json", **(headers or {})})
    response.url = "http://127.0.0.1/customvision/v3.4-preview/training/projects"
    return response


def _error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Exception:
    from azure.cognitiveservices.vision.customvision.training import models
    from azure.cognitiveservices.vision.customvision.training.models import CustomVisionErrorException
    from msrest import Deserializer

    deserialize = Deserializer({k: v for k, v in models.__dict__.items() if isinstance(v, type)})
    return CustomVisionErrorException(deserialize, _response(status, body, headers))


def test_read_error_both_shapes() -> None:
    service = read_error(_error(400, {"code": "BadRequestImageFormat", "message": "Bad Request Image Format, Uri: x"}))
    assert (service.status, service.code) == (400, "BadRequestImageFormat") and "Image Format" in service.message
    body = {"error": {"code": "429", "message": "Please retry after 2 seconds."}}
    gateway = read_error(_error(429, body, {"Retry-After": "2"}))
    assert (gateway.status, gateway.code, gateway.retry_after) == (429, "429", 2.0)


class _Flaky:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


def test_429_retried_after_retry_after_then_succeeds() -> None:
    slept: list[float] = []
    caller = Caller("training", None, max_retries=3, sleep=slept.append)
    method = _Flaky([_error(429, {"error": {"code": "429", "message": "slow down"}}, {"Retry-After": "1.5"})] * 2)
    assert caller("CreateImagesFromFiles", method) == "done"
    assert method.calls == 3 and slept == [1.5, 1.5] and caller.retried == 2


def test_429_gives_up_after_max_retries_with_a_clear_error() -> None:
    caller = Caller("prediction", None, max_retries=2, sleep=lambda s: None)
    method = _Flaky([_error(429, {"error": {"code": "429", "message": "rate limit"}}, {"Retry-After": "0"})] * 5)
    with pytest.raises(ServiceError, match="still throttled after 2 retries"):
        caller("ClassifyImageWithNoStore", method)
    assert method.calls == 3


def test_5xx_retried_on_reads_not_on_creates() -> None:
    caller = Caller("training", None, max_retries=3, sleep=lambda s: None)
    read = _Flaky([_error(503, {"code": "ServiceUnavailable", "message": "busy"})])
    assert caller("GetIteration", read) == "done" and read.calls == 2
    create = _Flaky([_error(503, {"code": "ServiceUnavailable", "message": "busy"})])
    with pytest.raises(ServiceError, match="HTTP 503"):
        caller("CreateProject", create)
    assert create.calls == 1  # a create is not repeated blindly: it may have happened
    safe = _Flaky([_error(500, {"code": "Unknown", "message": "oops"})])
    assert caller("PublishIteration", safe, safe=True) == "done"


@pytest.mark.parametrize(
    ("status", "body", "exc", "fragment"),
    [
        (401, {"error": {"code": "401", "message": "Access denied"}}, ConfigError, "training_key"),
        (404, {"code": "BadRequestIterationNotFound", "message": "Invalid iteration"}, NotFound, "Invalid iteration"),
        (400, {"code": "BadRequestTrainingValidationFailed", "message": "Not enough"}, BadInput, "Not enough"),
        (500, {"code": "Unknown", "message": "boom"}, ServiceError, "HTTP 500"),
    ],
)
def test_errors_translated_with_the_service_text(status: int, body: dict[str, Any], exc: type, fragment: str) -> None:
    caller = Caller("training", None, max_retries=0, sleep=lambda s: None)
    with pytest.raises(exc, match=fragment):
        caller("CreateProject", _Flaky([_error(status, body)]))


def test_token_bucket_paces_to_the_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(rate=2.0, burst=2, clock=lambda: now[0], sleep=sleep)
    for _ in range(6):
        bucket.acquire()
    assert slept[:1] == [0.5]  # two at once (the burst), then one every half second
    assert now[0] == pytest.approx(2.0)
    with pytest.raises(ValueError):
        TokenBucket(rate=0)
