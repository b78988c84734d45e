"""The Cloud Quotas API's view of Vertex AI's training quotas, as the emulator answers it.

``GET /v1/projects/{p}/locations/global/services/aiplatform.googleapis.com/quotaInfos`` (the Cloud Quotas API's
ListQuotaInfos, ``google-cloud-quotas``' REST path) lists one ``QuotaInfo`` per accelerator quota metric of
``mcv_vertex/data/machines.json``, per region a ``DimensionsInfo`` with ``details.value`` (the limit). Every limit
starts at :data:`DEFAULT_LIMIT` in every region of the table; :meth:`QuotaBook.set` changes one (``-1``: unlimited),
as a project with no quota for a GPU type has ``0`` there (pains.md V1). Usage is not modelled: the Cloud Quotas API
does not report it either (Cloud Monitoring does).
"""

from __future__ import annotations

import threading
from typing import Any

DEFAULT_LIMIT = 8
SERVICE = "aiplatform.googleapis.com"


class QuotaBook:
    """Limits by (metric, region); thread-safe."""

    def __init__(self) -> None:
        self._limits: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def set(self, metric: str, region: str, value: int) -> None:
        with self._lock:
            self._limits[(metric, region)] = value

    def quota_infos(self, project: str) -> list[dict[str, Any]]:
        """The ``QuotaInfo`` JSON of every accelerator metric (camelCase, as the REST API answers)."""
        from mcv_vertex.machines import data

        regions = sorted(data()["regions"])
        out = []
        with self._lock:
            for accelerator, metric in sorted(data()["quota_metrics"].items()):
                quota_id = "".join(part.capitalize() for part in metric.rsplit("/", 1)[-1].split("_")) + "PerRegion"
                out.append(
                    {
                        "name": f"projects/{project}/locations/global/services/{SERVICE}/quotaInfos/{quota_id}",
                        "quotaId": quota_id,
                        "metric": metric,
                        "service": SERVICE,
                        "isPrecise": True,
                        "containerType": "PROJECT",
                        "dimensions": ["region"],
                        "metricDisplayName": f"Custom model training {accelerator}",
                        "quotaDisplayName": f"Custom model training {accelerator} per region",
                        "metricUnit": "1",
                        "dimensionsInfos": [
                            {
                                "dimensions": {"region": region},
                                "details": {"value": str(self._limits.get((metric, region), DEFAULT_LIMIT))},
                                "applicableLocations": [region],
                            }
                            for region in regions
                        ],
                    }
                )
        return out
