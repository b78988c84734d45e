"""SageMaker instance quotas of the emulated account, enforced and readable through the Service Quotas API.

Every instance type botocore's SageMaker model lists (``TrainingInstanceType``, ``ProductionVariantInstanceType``,
``TransformInstanceType``) has a quota named as Service Quotas names it (pains.md S6): ``<type> for training
job usage``, ``<type> for endpoint usage``, ``<type> for transform job usage``. The default is
:data:`DEFAULT_LIMIT` instances; :meth:`Quotas.set` changes one (``SageMakerEmulator.set_quota``). CreateTrainingJob,
CreateEndpoint and CreateTransformJob beyond a quota get ``ResourceLimitExceeded`` with the service's text
(:func:`.faults.quota_message`).

moto 5.2.5 implements only ``ListAWSDefaultServiceQuotas``/``GetServiceQuota`` for ``vpc`` (``ListServiceQuotas``
answers HTTP 500 NotImplementedError), so the emulator answers the Service Quotas API itself (JSON 1.1,
``X-Amz-Target: ServiceQuotasV20190624.<Operation>``) for ``ServiceCode=sagemaker``: ``ListServiceQuotas``
(applied values), ``ListAWSDefaultServiceQuotas`` (defaults), ``GetServiceQuota``, ``GetAWSDefaultServiceQuota``.
``AWS_ENDPOINT_URL_SERVICE_QUOTAS`` points boto3 there (:meth:`SageMakerEmulator.environment`). Quota codes are
stable made-up ``L-XXXXXXXX`` codes (the real ones are not published in the SDK).
"""

from __future__ import annotations

import functools
import hashlib
import threading
from typing import Any

from mcv_sagemaker.emulator.protocol import ApiError

TARGET_PREFIX = "ServiceQuotasV20190624."
SERVICE = "service-quotas"
DEFAULT_LIMIT = 20
"""Instances of each type for each use, unless :meth:`Quotas.set` says otherwise."""

#: usage word -> the SageMaker model's enum of instance types for it
USAGES = {
    "training job": "TrainingInstanceType",
    "endpoint": "ProductionVariantInstanceType",
    "transform job": "TransformInstanceType",
}
PAGE = 100
OPERATIONS = ("ListServiceQuotas", "ListAWSDefaultServiceQuotas", "GetServiceQuota", "GetAWSDefaultServiceQuota")


@functools.cache
def instance_types(usage: str) -> tuple[str, ...]:
    """The instance types SageMaker offers for ``usage`` (botocore's enum)."""
    from mcv_sagemaker.emulator.protocol import service_model

    return tuple(service_model().shape_for(USAGES[usage]).enum)


def quota_name(instance_type: str, usage: str) -> str:
    """``ml.p3.2xlarge for training job usage``."""
    return f"{instance_type} for {usage} usage"


def quota_code(name: str) -> str:
    """A stable code for a quota name (``L-`` and 8 hex digits, the real codes' form)."""
    return "L-" + hashlib.sha1(name.encode()).hexdigest()[:8].upper()


class Quotas:
    """The quota table (defaults plus changes) and the Service Quotas operations on it. Thread-safe."""

    def __init__(self, region: str, account: str) -> None:
        self.region = region
        self.account = account
        self._lock = threading.Lock()
        self._limits: dict[tuple[str, str], int] = {}

    def set(self, instance_type: str, usage: str, limit: int | None) -> None:
        """Set one quota; ``None`` restores the default."""
        if usage not in USAGES:
            raise ValueError(f"usage must be one of {', '.join(USAGES)}, not {usage!r}")
        if instance_type not in instance_types(usage):
            raise ValueError(f"{instance_type!r} is not a SageMaker instance type for {usage} usage")
        if limit is not None and limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        with self._lock:
            if limit is None:
                self._limits.pop((instance_type, usage), None)
            else:
                self._limits[(instance_type, usage)] = int(limit)

    def limit(self, instance_type: str, usage: str) -> int:
        """The applied quota (the default when not changed)."""
        with self._lock:
            return self._limits.get((instance_type, usage), DEFAULT_LIMIT)

    def changed(self) -> list[tuple[str, str, int]]:
        """The quotas that differ from the default, as ``(instance type, usage, limit)``."""
        with self._lock:
            return [(t, u, v) for (t, u), v in sorted(self._limits.items())]

    # --------------------------------------------------------------------------------- Service Quotas API

    def _entry(self, instance_type: str, usage: str, value: int) -> dict[str, Any]:
        name = quota_name(instance_type, usage)
        code = quota_code(name)
        return {
            "ServiceCode": "sagemaker",
            "ServiceName": "Amazon SageMaker",
            "QuotaArn": f"arn:aws:servicequotas:{self.region}:{self.account}:sagemaker/{code}",
            "QuotaCode": code,
            "QuotaName": name,
            "Value": float(value),
            "Unit": "None",
            "Adjustable": True,
            "GlobalQuota": False,
        }

    def _entries(self, applied: bool) -> list[dict[str, Any]]:
        return [
            self._entry(t, usage, self.limit(t, usage) if applied else DEFAULT_LIMIT)
            for usage in USAGES
            for t in instance_types(usage)
        ]

    @staticmethod
    def _service(params: dict[str, Any]) -> None:
        if params.get("ServiceCode") != "sagemaker":
            raise ApiError(
                "NoSuchResourceException",
                f"The request failed because the specified service does not exist ({params.get('ServiceCode')}); "
                "the emulator knows the sagemaker quotas only.",
            )

    @staticmethod
    def _page(items: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        token = params.get("NextToken")
        try:
            start = int(token) if token else 0
        except ValueError as exc:
            raise ApiError("InvalidPaginationTokenException", "Invalid pagination token.") from exc
        size = int(params.get("MaxResults") or PAGE)
        out: dict[str, Any] = {"Quotas": items[start : start + size]}
        if start + size < len(items):
            out["NextToken"] = str(start + size)
        return out

    def _find(self, params: dict[str, Any], applied: bool) -> dict[str, Any]:
        self._service(params)
        for entry in self._entries(applied):
            if entry["QuotaCode"] == params.get("QuotaCode"):
                return {"Quota": entry}
        raise ApiError(
            "NoSuchResourceException",
            f"The request failed because the specified quota does not exist ({params.get('QuotaCode')}).",
        )

    def _op_ListServiceQuotas(self, params: dict[str, Any]) -> dict[str, Any]:
        self._service(params)
        entries = self._entries(applied=True)
        if params.get("QuotaCode"):
            entries = [e for e in entries if e["QuotaCode"] == params["QuotaCode"]]
        return self._page(entries, params)

    def _op_ListAWSDefaultServiceQuotas(self, params: dict[str, Any]) -> dict[str, Any]:
        self._service(params)
        return self._page(self._entries(applied=False), params)

    def _op_GetServiceQuota(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._find(params, applied=True)

    def _op_GetAWSDefaultServiceQuota(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._find(params, applied=False)
