"""The service's words: error codes, HTTP statuses and messages of Rekognition Custom Labels.

Sources (cited per group below; DG = Amazon Rekognition Custom Labels Developer Guide, repository
awsdocs/amazon-rekognition-custom-labels-developer-guide, ``doc_source/<page>.md``; BC = botocore's
``rekognition/2016-06-27`` service model):

* API errors (BC error shapes per operation): ``InvalidParameterException`` for bad parameters (the model
  has no ValidationException; cloud-apis.md 8), ``ResourceNotFoundException``, ``ResourceInUseException``,
  ``ResourceAlreadyExistsException`` (CreateDataset), ``ResourceNotReadyException`` (DetectCustomLabels on
  a model that is not running), ``ImageTooLargeException``, ``InvalidImageFormatException``,
  ``InvalidS3ObjectException``, ``InvalidPaginationTokenException``, ``LimitExceededException``,
  ``ThrottlingException``, ``ProvisionedThroughputExceededException``, ``InternalServerError``. HTTP
  statuses: 400 for client errors; ``InternalServerError`` and ``ThrottlingException`` are marked
  ``"fault": true`` in the model and answer 500 (the Rekognition API reference lists both as HTTP 500).
  Error bodies carry ``__type``, ``Code`` and ``Message`` as Rekognition's do (botocore reads either
  ``message`` or ``Message``).
* Non-terminal JSON Line errors and warnings (DG ``tm-debugging-json-line-errors.md``,
  ``debugging-datasets-non-terminal-errors.md``): :data:`LINE_MESSAGES`.
* Terminal manifest file errors (DG ``tm-terminal-errors-reference.md``,
  ``debugging-datasets-terminal-errors.md``) and terminal manifest content errors (DG
  ``tm-debugging-aggregate-errors.md``): :data:`TERMINAL_MESSAGES`.

Codes and texts the guide does not give, chosen by the emulator and marked as such:
``ERROR_DUPLICATE_SOURCE_REF`` (the guide states the rule "An image can only be referenced once in a
dataset" but names no code), the message of ``ERROR_INVALID_IMAGE_DIMENSION`` (the code is listed, its page
section is missing), the wording of the API errors' messages, and StatusMessage values written
``<CODE>: <message>`` (the guide says the StatusMessage "contains the error" without an example).
"""

from __future__ import annotations

from multicloud_cv.emulation.faults import ErrorCatalogue

# ------------------------------------------------------------------------------------------ API errors

INVALID_PARAMETER = "InvalidParameterException"
NOT_FOUND = "ResourceNotFoundException"
IN_USE = "ResourceInUseException"
ALREADY_EXISTS = "ResourceAlreadyExistsException"
NOT_READY = "ResourceNotReadyException"
IMAGE_TOO_LARGE = "ImageTooLargeException"
INVALID_IMAGE_FORMAT = "InvalidImageFormatException"
INVALID_S3_OBJECT = "InvalidS3ObjectException"
INVALID_TOKEN = "InvalidPaginationTokenException"
THROTTLING = "ThrottlingException"
THROUGHPUT = "ProvisionedThroughputExceededException"
INTERNAL = "InternalServerError"

STATUS = {THROTTLING: 500, INTERNAL: 500, "ServiceUnavailableException": 503}
"""HTTP status of the codes that do not answer 400."""

MESSAGES = {
    THROTTLING: "Amazon Rekognition is temporarily unable to process the request. Try your call again.",
    THROUGHPUT: (
        "The number of requests exceeded your throughput limit. If you want to increase this limit, contact "
        "Amazon Rekognition."
    ),
    INTERNAL: "Amazon Rekognition experienced a service issue. Try your call again.",
    "LimitExceededException": "An Amazon Rekognition service limit was exceeded.",
    "AccessDeniedException": "You are not authorized to perform the action.",
}
"""Messages of injected errors: the service model's documentation of each error shape."""

CATALOGUE = ErrorCatalogue(
    status=STATUS,
    messages=MESSAGES,
    by_status={500: INTERNAL, 503: INTERNAL, 429: THROUGHPUT},
    server_default=INTERNAL,
    client_default=INVALID_PARAMETER,
)
"""How Rekognition words an injected error (a bare 5xx is ``InternalServerError``, 429 throughput)."""

# --------------------------------------------------------------------------------- manifest line errors

LINE_MESSAGES = {
    "ERROR_MISSING_SOURCE_REF": "The source-ref key is missing.",
    "ERROR_INVALID_SOURCE_REF_FORMAT": "The format of the source-ref value is invalid.",
    "ERROR_NO_LABEL_ATTRIBUTES": "No label attributes found.",
    "ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT": "The format of the label attribute {} is invalid.",
    "ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT": "The format of the label attribute metadata is invalid.",
    "ERROR_NO_VALID_LABEL_ATTRIBUTES": "No valid label attributes found.",
    "ERROR_MISSING_BOUNDING_BOX_CONFIDENCE": "One or more bounding boxes has a missing confidence value.",
    "ERROR_MISSING_CLASS_MAP_ID": "One of more class ids is missing from the class map.",
    "ERROR_INVALID_JSON_LINE": "The JSON Line has an invalid format.",
    "ERROR_INVALID_IMAGE": "The image is invalid. Check S3 path and/or image properties.",
    "ERROR_INVALID_IMAGE_DIMENSION": "The image dimension is invalid.",  # emulator's words (see module doc)
    "ERROR_INVALID_BOUNDING_BOX": "The bounding box has off frame values.",
    "ERROR_NO_VALID_ANNOTATIONS": "No valid annotations found.",
    "ERROR_BOUNDING_BOX_TOO_SMALL": "The height and width of the bounding box is too small.",
    "ERROR_TOO_MANY_BOUNDING_BOXES": "There are more bounding boxes than the allowed maximum.",
    "ERROR_DUPLICATE_SOURCE_REF": "An image can only be referenced once in a dataset.",  # emulator's code
    "WARNING_UNANNOTATED_RECORD": "Record is unannotated.",
    "WARNING_NO_ANNOTATIONS": "No annotations were found.",
    "WARNING_NO_ATTRIBUTE_ANNOTATIONS": "No attribute annotations were found.",
}

# ------------------------------------------------------------------------------------- terminal errors

TERMINAL_MESSAGES = {
    # manifest file errors (no validation results are written)
    "ERROR_MANIFEST_INACCESSIBLE_OR_UNSUPPORTED_FORMAT": "The manifest file extension or contents are invalid.",
    "ERROR_EMPTY_MANIFEST": "The manifest file is empty.",
    "ERROR_MANIFEST_SIZE_TOO_LARGE": "The manifest file size exceeds the maximum supported size.",
    "ERROR_CANNOT_WRITE_OUTPUT_S3_BUCKET": "Unable to write to output S3 bucket.",
    "ERROR_INVALID_PERMISSIONS_MANIFEST_S3_BUCKET": "The S3 bucket permissions are incorrect.",
    # manifest content errors (reported in the manifest summary)
    "ERROR_MANIFEST_ROWS_EXCEEDS_MAXIMUM": "The manifest file has too many rows.",
    "ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST": "The manifest file contains too many invalid rows.",
    "ERROR_IMAGES_IN_MULTIPLE_S3_BUCKETS": "The manifest file contains images from multiple S3 buckets.",
    "ERROR_INSUFFICIENT_IMAGES_PER_LABEL_FOR_AUTOSPLIT": (
        "The manifest file contains insufficient labeled images per label to perform auto-split."
    ),
    "ERROR_MANIFEST_TOO_FEW_LABELS": "The manifest file has too few labels.",
    "ERROR_MANIFEST_TOO_MANY_LABELS": "The manifest file has too many labels.",
    "ERROR_INSUFFICIENT_LABEL_OVERLAP": "Less than 50% label overlap between the training and testing manifest files.",
    "ERROR_MANIFEST_TOO_FEW_USABLE_LABELS": "The manifest file has too few usable labels.",
    "ERROR_INSUFFICIENT_USABLE_LABEL_OVERLAP": (
        "Less than 50% usable label overlap between the training and testing manifest files."
    ),
    # dataset operations (DescribeDataset StatusMessage)
    "ERROR_TOO_MANY_RECORDS_IN_ERROR": "The manifest file has too many terminal errors.",
    "ERROR_INSUFFICIENT_IMAGES_PER_LABEL_FOR_DISTRIBUTE": (
        "The manifest file doesn't have enough labeled images to distribute the dataset."
    ),
}


def line_error(code: str, detail: str | None = None, attribute: str | None = None) -> dict[str, str]:
    """A JSON Line ``{"code", "message"}`` entry; ``detail`` is added as context (the guide's message field is
    "Description and additional contextual details of the error")."""
    message = LINE_MESSAGES[code].replace("{}", attribute or "")
    if detail:
        message = f"{message} {detail}"
    return {"code": code, "message": message}


def terminal(code: str) -> dict[str, str]:
    """A manifest summary ``{"code", "message"}`` entry of a terminal error."""
    return {"code": code, "message": TERMINAL_MESSAGES[code]}


def status_message(code: str, detail: str | None = None) -> str:
    """A StatusMessage for a terminal error: ``<CODE>: <message>`` (plus ``detail``)."""
    text = f"{code}: {TERMINAL_MESSAGES[code]}"
    return f"{text} {detail}" if detail else text
