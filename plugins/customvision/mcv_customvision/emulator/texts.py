"""How the emulated Custom Vision words its answers: error codes, messages and the gateway's bodies.

Contracts (the SDK 3.1.1 models and reference pains.md section 4):

* Service errors are ``{"code": "<CustomVisionErrorCodes value>", "message": "..."}`` (the SDK's
  ``CustomVisionError``); every code used here is a value of the SDK's enum (the tests check that).
* The API gateway answers a missing or wrong key with HTTP 401 and ``{"error": {"code": "401", "message":
  ...}}`` (:data:`ACCESS_DENIED`), and throttling with HTTP 429, a ``Retry-After`` header and ``{"error":
  {"code": "429", "message": "Requests to the <Operation> Operation under Cognitive Services Custom Vision API
  have exceeded rate limit of your current Custom_Vision.<Training|Prediction> <tier> pricing tier. ..."}}``.
* Injected faults with a bare HTTP status take the code of :data:`TRAINING_CATALOGUE` or
  :data:`PREDICTION_CATALOGUE` (500: ``ErrorUnknown``; 503: the featurization or prediction service
  unavailable).
* The texts of the training validation follow the portal's words quoted in pains.md A3 ("Not enough images for
  training", "Make sure you have at least 1 non-negative tag and 5 images for every tag.").
"""

from __future__ import annotations

from typing import Any

from multicloud_cv.emulation.faults import ErrorCatalogue
from multicloud_cv.emulation.protocol import ApiError

ACCESS_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an "
    "active subscription and use a correct regional API endpoint for your resource."
)

NOT_FOUND_RESOURCE = "Resource not found"


def gateway_body(status: int, message: str) -> dict[str, Any]:
    """The API gateway's error body (401, 404 for an unknown path, 429)."""
    return {"error": {"code": str(status), "message": message}}


def throttled_message(operation: str, api: str, tier: str, seconds: float) -> str:
    """The 429 text of pains.md A4 for ``operation`` of the ``training`` or ``prediction`` API."""
    meter = "Custom_Vision.Training" if api == "training" else "Custom_Vision.Prediction"
    unit = "second" if seconds == 1 else "seconds"
    return (
        f"Requests to the {operation} Operation under Cognitive Services Custom Vision API have exceeded rate limit "
        f"of your current {meter} {tier} pricing tier. Please retry after {seconds:g} {unit}. Please contact Azure "
        "support service if you would like to further increase the default rate limit."
    )


class CvError(ApiError):
    """A Custom Vision service error: answered as ``{"code", "message"}`` with HTTP ``status``."""

    def payload(self) -> dict[str, Any]:
        """The service's error body."""
        return {"code": self.code, "message": self.message}


def bad_request(code: str, message: str) -> CvError:
    """HTTP 400 with one of the enum's codes."""
    return CvError(code, message, status=400)


def not_found_project(project_id: str) -> CvError:
    return CvError("NotFoundProject", f"Project {project_id} not found.", status=404)


def not_found_iteration(iteration_id: str) -> CvError:
    return CvError("NotFoundIteration", f"Iteration {iteration_id} not found.", status=404)


def not_found_tag(tag_id: str) -> CvError:
    return CvError("NotFoundTag", f"Tag {tag_id} not found.", status=404)


INVALID_ITERATION = CvError("NotFound", "Invalid iteration", status=404)
"""Prediction on a project or publish name that is not published (pains.md A5)."""

NOT_ENOUGH_IMAGES = "Not enough images for training."
MIN_IMAGES_HINT = "Make sure you have at least 1 non-negative tag and {n} images for every tag."

_FAULT_MESSAGES = {
    "ErrorUnknown": "An unexpected error occurred. Please try again.",
    "ErrorFeaturizationServiceUnavailable": "The featurization service is unavailable. Please try again later.",
    "ErrorPredictionServiceUnavailable": "The prediction service is unavailable. Please try again later.",
    "ErrorServerTimeOut": "The server timed out. Please try again.",
    "BadRequest": "Bad Request",
}

TRAINING_CATALOGUE = ErrorCatalogue(
    status={"ErrorFeaturizationServiceUnavailable": 503, "ErrorUnknown": 500, "ErrorServerTimeOut": 504},
    messages=_FAULT_MESSAGES,
    by_status={500: "ErrorUnknown", 503: "ErrorFeaturizationServiceUnavailable", 504: "ErrorServerTimeOut"},
    server_default="ErrorUnknown",
    client_default="BadRequest",
)
"""Codes of injected faults on the training API."""

PREDICTION_CATALOGUE = ErrorCatalogue(
    status={"ErrorPredictionServiceUnavailable": 503, "ErrorUnknown": 500, "ErrorServerTimeOut": 504},
    messages=_FAULT_MESSAGES,
    by_status={500: "ErrorUnknown", 503: "ErrorPredictionServiceUnavailable", 504: "ErrorServerTimeOut"},
    server_default="ErrorUnknown",
    client_default="BadRequest",
)
"""Codes of injected faults on the prediction API."""
