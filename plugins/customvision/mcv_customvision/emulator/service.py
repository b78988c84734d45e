"""The emulated Custom Vision: the training API (v3.4-preview) and the prediction API (v3.1) operations.

:class:`CustomVisionService` holds the projects (:mod:`.store`) and answers the operations listed by
:meth:`CustomVisionService.operations` through :class:`.rest.RestService`. What it enforces, as the service does
(codes from the SDK's ``CustomVisionErrorCodes``, numbers from :data:`mcv_customvision.limits.LIMITS`):

* Projects: a name; a domain id of GetDomains (``BadRequestProjectUnknownDomain``); ``classificationType``
  Multiclass | Multilabel for classification domains (``BadRequestProjectUnknownClassification``; object
  detection projects have none); target export platforms only on compact domains
  (``BadRequestProjectUnsupportedExportPlatform``); unique names (``BadRequestProjectNameNotUnique``); the
  tier's project cap (F0: 2, S0: 100; ``BadRequestExceedProjectLimit``). DeleteProject refuses while an
  iteration is published (``BadRequestIterationIsPublished``).
* Tags: a unique name (``BadRequestTagName`` / ``BadRequestTagNameNotUnique``), type Regular | Negative |
  GeneralProduct (``BadRequestTagType``), one Negative tag (``BadRequestMultipleNegativeTag``), the tier's tag
  cap (``BadRequestExceedTagPerProjectLimit``).
* Image batches (CreateImagesFromFiles: JSON with base64 contents; CreateImagesFromData: multipart/form-data,
  any field name, or application/octet-stream, ``tagIds`` in the query): at most 64 images and 20 distinct tags
  a batch, at least one image (``BadRequestImageBatch``); regions complete and inside 0..1, on object detection
  projects only (``BadRequestImageRegions``); at most 10 metadata items (``BadRequestImageMetadataKey``). Per
  image: over 6 MB ``ErrorImageSize``; not a JPEG, PNG, GIF or BMP Pillow decodes ``ErrorImageFormat``; a side
  over 10,240 px ``ErrorImageDimensions`` (under 256 px is accepted: the service upscales); a tag id not in the
  project ``ErrorInvalidTag``; more than 300 regions ``ErrorRegionLimitExceed``; a Negative tag with another tag
  ``ErrorNegativeAndRegularTagOnSameImage``; the tier's image cap ``ErrorLimitExceed``; the same bytes as an
  image already in the project (or earlier in the batch) ``OKDuplicate`` (the existing image). HTTP 200 when
  every image is OK or OKDuplicate, else 207 with ``isBatchSuccessful: false``.
* TrainProject: one training at a time (``BadRequestTrainingAlreadyInProgress``); ``trainingType`` Regular |
  Advanced, Advanced with ``reservedBudgetInHours`` >= 1
  (``BadRequestReservedBudgetInHoursNotEnoughForAdvancedTraining``); 20 iterations
  (``BadRequestExceedIterationPerProjectLimit``); Multiclass needs 2 tags with images
  (``BadRequestMultiClassClassificationTrainingValidationFailed``); every non-negative tag needs 5 images
  (classification, ``BadRequestTrainingValidationFailed``) or 15 images with a region of it (detection,
  ``BadRequestDetectionTrainingValidationFailed``), the message naming the tag; nothing changed since the last
  Completed (or running) iteration and no ``forceTrain``: ``BadRequestTrainingNotNeeded``. Then the iteration
  trains for real (:mod:`.training`).
* Publish: a Completed iteration (``BadRequestIterationIsNotTrained``), ``predictionId`` equal to the emulator's
  prediction resource id (``BadRequestInvalidPublishTarget``), a publish name unique in the project unless
  ``overwrite`` (``BadRequestInvalidPublishName``). Unpublish of an iteration that is not published:
  ``BadRequestIterationNotPublished``. DeleteIteration refuses a published iteration
  (``BadRequestIterationIsPublished``).
* Export: a Completed iteration (``BadRequestExportWhileTraining`` while training), trained on an exportable
  (compact) domain, a platform of ``ExportPlatform`` with a flavor that fits it
  (``BadRequestExportValidationFailed``); one export per platform and flavor at a time
  (``BadRequestExportAlreadyInProgress``). The export walks Exporting -> Done (Failed when the archive cannot be
  built) and its ``downloadUri`` is ``<endpoint>/_emulator/exports/<id>.zip`` (no key, like a SAS URL).
* Prediction (Classify/Detect, with and without store): a project and publish name that is published, else 404
  ``NotFound`` "Invalid iteration"; the project's kind (``BadRequestNotSupported``); a body (multipart, as the SDK
  sends, or raw bytes) of at most 4 MB (``BadRequestImageSizeBytes``) that decodes (``BadRequestImageFormat``).
  Answers are the trained model's, sorted by probability.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import re
import shutil
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcv_customvision.domains import domains
from mcv_customvision.emulator import texts
from mcv_customvision.emulator.rest import PREDICTION, TRAINING, Operation, Reply, Request, RestService
from mcv_customvision.emulator.store import (
    ExportJob,
    Iteration,
    Project,
    StoredImage,
    Tag,
    TrainingImage,
    new_id,
    now,
)
from mcv_customvision.emulator.texts import CvError, bad_request
from mcv_customvision.emulator.training import IterationRunner, detect, input_side, performance
from mcv_customvision.limits import LIMITS
from multicloud_cv.emulation.faults import FaultBook
from multicloud_cv.emulation.training import Limits

log = logging.getLogger(__name__)

TRAINING_BASE = "/customvision/v3.4-preview/training"
PREDICTION_BASE = "/customvision/v3.1/prediction"

IMAGE_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "BMP": ".bmp"}
TAG_TYPES = ("Regular", "Negative", "GeneralProduct")
CLASSIFIERS = ("Multiclass", "Multilabel")
TRAINING_TYPES = ("Regular", "Advanced")
EXPORT_FLAVORS: dict[str, tuple[str | None, ...]] = {
    "ONNX": (None, "ONNX10", "ONNX12"),
    "TensorFlow": (None, "TensorFlowNormal", "TensorFlowLite"),
    "CoreML": (None,),
    "DockerFile": (None, "Linux", "Windows", "ARM"),
    "OpenVino": (None,),
    "VAIDK": (None,),
}
PUBLISH_NAME = re.compile(r"^[A-Za-z0-9_\-. ]{1,64}$")


def parse_multipart(body: bytes, content_type: str) -> list[tuple[str, str | None, bytes]]:
    """``(field name, file name, bytes)`` of each part of a multipart/form-data body (byte-exact)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise bad_request("BadRequestImageStream", "The multipart body has no boundary.")
    delimiter = b"--" + match.group(1).encode("latin-1")
    parts: list[tuple[str, str | None, bytes]] = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        if data.endswith(b"\r\n"):
            data = data[:-2]
        headers = head.decode("latin-1")
        name = re.search(r'name="([^"]*)"', headers)
        filename = re.search(r'filename="([^"]*)"', headers)
        parts.append((name.group(1) if name else "", filename.group(1) if filename else None, data))
    return parts


def image_payloads(request: Request) -> list[tuple[str | None, bytes]]:
    """The images of a CreateImagesFromData / prediction body: multipart parts or the raw body."""
    if request.content_type.lower().startswith("multipart/"):
        return [(filename, data) for _name, filename, data in parse_multipart(request.body, request.content_type)]
    return [(None, request.body)] if request.body else []


def probe(data: bytes) -> tuple[str, int, int] | None:
    """``(format, width, height)`` of an image the service accepts, ``None`` when it does not decode."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            fmt = str(opened.format)
            opened.load()
            width, height = opened.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
    if fmt not in IMAGE_FORMATS:
        return None
    return fmt, int(width), int(height)


class CustomVisionService(RestService):
    """Training and prediction APIs over one set of projects (see the module docstring)."""

    def __init__(
        self,
        *,
        faults: FaultBook,
        closing: threading.Event,
        keys: Mapping[str, str],
        tier: str,
        prediction_resource_id: str,
        state_dir: Path,
        pace: float,
        limits: Limits,
    ) -> None:
        super().__init__(faults, closing, keys, tier)
        self.caps = LIMITS.tier(tier)
        self.prediction_resource_id = prediction_resource_id
        self.state_dir = state_dir
        self.pace = pace
        self.limits = limits
        self.base_url = ""
        self.projects: dict[str, Project] = {}
        self.exports: dict[str, ExportJob] = {}
        self.images: dict[str, StoredImage] = {}
        self.lock = threading.RLock()
        self.domains = {d.id: d for d in domains()}

    # ------------------------------------------------------------------------------------ route table

    def operations(self) -> list[Operation]:
        """Every operation with its method, path (under its API's base) and handler."""
        t, p = TRAINING, PREDICTION
        pi = "/projects/{projectId}"
        it = pi + "/iterations/{iterationId}"
        cl = "/{projectId}/classify/iterations/{publishedName}"
        return [
            Operation("GetDomains", "GET", "/domains", t, self.get_domains),
            Operation("GetDomain", "GET", "/domains/{domainId}", t, self.get_domain),
            Operation("GetProjects", "GET", "/projects", t, self.get_projects),
            Operation("CreateProject", "POST", "/projects", t, self.create_project),
            Operation("GetProject", "GET", pi, t, self.get_project),
            Operation("DeleteProject", "DELETE", pi, t, self.delete_project, 204),
            Operation("GetTags", "GET", pi + "/tags", t, self.get_tags),
            Operation("CreateTag", "POST", pi + "/tags", t, self.create_tag),
            Operation("GetTag", "GET", pi + "/tags/{tagId}", t, self.get_tag),
            Operation("DeleteTag", "DELETE", pi + "/tags/{tagId}", t, self.delete_tag, 204),
            Operation("CreateImagesFromFiles", "POST", pi + "/images/files", t, self.create_images_from_files),
            Operation("CreateImagesFromData", "POST", pi + "/images", t, self.create_images_from_data),
            Operation("GetImages", "GET", pi + "/images", t, self.get_images),
            Operation("DeleteImages", "DELETE", pi + "/images", t, self.delete_images, 204),
            Operation("GetImageCount", "GET", pi + "/images/count", t, self.get_image_count),
            Operation("GetTaggedImages", "GET", pi + "/images/tagged", t, self.get_tagged_images),
            Operation("GetTaggedImageCount", "GET", pi + "/images/tagged/count", t, self.get_tagged_image_count),
            Operation("TrainProject", "POST", pi + "/train", t, self.train_project),
            Operation("GetIterations", "GET", pi + "/iterations", t, self.get_iterations),
            Operation("GetIteration", "GET", it, t, self.get_iteration),
            Operation("DeleteIteration", "DELETE", it, t, self.delete_iteration, 204),
            Operation("GetIterationPerformance", "GET", it + "/performance", t, self.get_iteration_performance),
            Operation("PublishIteration", "POST", it + "/publish", t, self.publish_iteration),
            Operation("UnpublishIteration", "DELETE", it + "/publish", t, self.unpublish_iteration, 204),
            Operation("ExportIteration", "POST", it + "/export", t, self.export_iteration),
            Operation("GetExports", "GET", it + "/export", t, self.get_exports),
            Operation("QuickTestImage", "POST", pi + "/quicktest/image", t, self.quick_test_image),
            Operation("ClassifyImage", "POST", cl + "/image", p, self.classify),
            Operation(
                "ClassifyImageWithNoStore",
                "POST",
                "/{projectId}/classify/iterations/{publishedName}/image/nostore",
                p,
                self.classify,
            ),
            Operation("DetectImage", "POST", "/{projectId}/detect/iterations/{publishedName}/image", p, self.detect),
            Operation(
                "DetectImageWithNoStore",
                "POST",
                "/{projectId}/detect/iterations/{publishedName}/image/nostore",
                p,
                self.detect,
            ),
        ]

    # -------------------------------------------------------------------------------------- lookups

    def _project(self, project_id: str) -> Project:
        project = self.projects.get(project_id)
        if project is None:
            raise texts.not_found_project(project_id)
        return project

    @staticmethod
    def _iteration(project: Project, iteration_id: str) -> Iteration:
        iteration = project.iterations.get(iteration_id)
        if iteration is None:
            raise texts.not_found_iteration(iteration_id)
        return iteration

    def project_ids(self) -> list[str]:
        with self.lock:
            return list(self.projects)

    # -------------------------------------------------------------------------------------- domains

    def get_domains(self, _request: Request) -> Any:
        return [d.as_wire() for d in self.domains.values()]

    def get_domain(self, request: Request) -> Any:
        domain = self.domains.get(request.params["domainId"])
        if domain is None:
            raise CvError("NotFoundDomain", f"Domain {request.params['domainId']} not found.", status=404)
        return domain.as_wire()

    # ------------------------------------------------------------------------------------- projects

    def get_projects(self, _request: Request) -> Any:
        with self.lock:
            return [p.as_wire() for p in self.projects.values()]

    def create_project(self, request: Request) -> Any:
        name = (request.text("name") or "").strip()
        if not name:
            raise bad_request("BadRequestProjectName", "The project name is required.")
        if len(name) > 256:
            raise bad_request("BadRequestProjectName", "The project name is longer than 256 characters.")
        description = request.text("description") or ""
        domain_id = request.text("domainId") or next(d.id for d in self.domains.values() if d.name == "General")
        domain = self.domains.get(domain_id)
        if domain is None:
            raise bad_request("BadRequestProjectUnknownDomain", f"Unknown domain id: {domain_id}.")
        classification: str | None = None
        if domain.type == "Classification":
            classification = request.text("classificationType") or "Multiclass"
            if classification not in CLASSIFIERS:
                raise bad_request(
                    "BadRequestProjectUnknownClassification",
                    f"Unknown classification type: {classification}. Use Multiclass or Multilabel.",
                )
        platforms = request.ids("targetExportPlatforms")
        if platforms and (not domain.exportable or any(p not in domain.exportable_platforms for p in platforms)):
            raise bad_request(
                "BadRequestProjectUnsupportedExportPlatform",
                f"The domain '{domain.name}' does not support export to {', '.join(platforms)}; "
                "choose a compact domain.",
            )
        with self.lock:
            if any(p.name == name for p in self.projects.values()):
                raise bad_request("BadRequestProjectNameNotUnique", f"A project named '{name}' already exists.")
            if len(self.projects) >= self.caps.projects:
                raise bad_request(
                    "BadRequestExceedProjectLimit",
                    f"The {self.tier} tier allows {self.caps.projects} projects; delete one or upgrade the resource.",
                )
            project_id = new_id()
            folder = self.state_dir / "projects" / project_id
            (folder / "images").mkdir(parents=True, exist_ok=True)
            project = Project(
                id=project_id,
                name=name,
                description=description,
                domain_id=domain.id,
                domain_type=domain.type,
                classification_type=classification,
                target_export_platforms=platforms,
                created=now(),
                folder=folder,
            )
            self.projects[project_id] = project
            return project.as_wire()

    def get_project(self, request: Request) -> Any:
        with self.lock:
            return self._project(request.params["projectId"]).as_wire()

    def delete_project(self, request: Request) -> Any:
        with self.lock:
            project = self._project(request.params["projectId"])
            published = [i for i in project.iterations.values() if i.publish_name]
            if published:
                raise bad_request(
                    "BadRequestIterationIsPublished",
                    f"Cannot delete the project: iteration '{published[0].name}' is published as "
                    f"'{published[0].publish_name}'. Unpublish it first.",
                )
            for iteration in project.iterations.values():
                iteration.deleted = True
                for job in iteration.exports:
                    self.exports.pop(job.id, None)
            for image_id in project.images:
                self.images.pop(image_id, None)
            del self.projects[project.id]
        shutil.rmtree(project.folder, ignore_errors=True)
        return None

    # ----------------------------------------------------------------------------------------- tags

    def get_tags(self, request: Request) -> Any:
        with self.lock:
            project = self._project(request.params["projectId"])
            return [tag.as_wire(project.image_count(tag.id)) for tag in project.tags.values()]

    def create_tag(self, request: Request) -> Any:
        name = (request.text("name") or "").strip()
        kind = request.text("type") or "Regular"
        with self.lock:
            project = self._project(request.params["projectId"])
            if not name:
                raise bad_request("BadRequestTagName", "The tag name is required.")
            if any(t.name.casefold() == name.casefold() for t in project.tags.values()):
                raise bad_request("BadRequestTagNameNotUnique", f"A tag named '{name}' already exists.")
            if kind not in TAG_TYPES:
                raise bad_request("BadRequestTagType", f"Unknown tag type: {kind}.")
            if kind == "Negative" and any(t.type == "Negative" for t in project.tags.values()):
                raise bad_request("BadRequestMultipleNegativeTag", "The project already has a negative tag.")
            if len(project.tags) >= self.caps.tags:
                raise bad_request(
                    "BadRequestExceedTagPerProjectLimit",
                    f"The {self.tier} tier allows {self.caps.tags} tags per project.",
                )
            tag = Tag(id=new_id(), name=name, description=request.text("description"), type=kind, created=now())
            project.tags[tag.id] = tag
            project.touch()
            return tag.as_wire(0)

    def get_tag(self, request: Request) -> Any:
        with self.lock:
            project = self._project(request.params["projectId"])
            tag = project.tags.get(request.params["tagId"])
            if tag is None:
                raise texts.not_found_tag(request.params["tagId"])
            return tag.as_wire(project.image_count(tag.id))

    def delete_tag(self, request: Request) -> Any:
        with self.lock:
            project = self._project(request.params["projectId"])
            tag_id = request.params["tagId"]
            if tag_id not in project.tags:
                raise texts.not_found_tag(tag_id)
            del project.tags[tag_id]
            for image in project.images.values():
                image.tag_ids = [t for t in image.tag_ids if t != tag_id]
                image.regions = [r for r in image.regions if r["tagId"] != tag_id]
            project.touch()
        return None

    # --------------------------------------------------------------------------------------- images

    @staticmethod
    def _check_regions(project: Project, regions: Any, number: int) -> list[dict[str, Any]]:
        if regions is None:
            return []
        if not isinstance(regions, list):
            raise bad_request("BadRequestImageRegions", f"Image {number}: regions must be a list.")
        if regions and not project.detection:
            raise bad_request(
                "BadRequestImageRegions", "Regions can only be added to images of an object detection project."
            )
        checked = []
        for region in regions:
            if not isinstance(region, dict):
                raise bad_request("BadRequestImageRegions", f"Image {number}: a region must be an object.")
            missing = [k for k in ("tagId", "left", "top", "width", "height") if region.get(k) is None]
            if missing:
                raise bad_request(
                    "BadRequestImageRegions", f"Image {number}: a region is missing {', '.join(missing)}."
                )
            try:
                left, top, width, height = (float(region[k]) for k in ("left", "top", "width", "height"))
            except (TypeError, ValueError):
                raise bad_request("BadRequestImageRegions", f"Image {number}: region values must be numbers.") from None
            eps = 1e-6
            if min(left, top) < 0 or width <= 0 or height <= 0 or left + width > 1 + eps or top + height > 1 + eps:
                raise bad_request(
                    "BadRequestImageRegions",
                    f"Image {number}: region (left {left}, top {top}, width {width}, height {height}) is outside the "
                    "image; region coordinates are normalised to 0..1.",
                )
            checked.append({"tagId": str(region["tagId"]), "left": left, "top": top, "width": width, "height": height})
        return checked

    def _add_images(
        self,
        project: Project,
        entries: list[tuple[str | None, bytes | None, list[str], list[dict[str, Any]]]],
        metadata: dict[str, str] | None,
    ) -> Reply:
        """Add ``(source name, bytes or None when undecodable base64, tag ids, regions)``: the batch's summary."""
        results = []
        batch_digests: dict[str, StoredImage] = {}
        for source, data, tag_ids, regions in entries:
            status = "OK"
            image: StoredImage | None = None
            shape = None
            all_tags = set(tag_ids) | {r["tagId"] for r in regions}
            if data is None:
                status = "ErrorImageFormat"
            elif len(data) > LIMITS.max_image_bytes:
                status = "ErrorImageSize"
            elif (shape := probe(data)) is None:
                status = "ErrorImageFormat"
            elif max(shape[1], shape[2]) > LIMITS.max_image_side:
                status = "ErrorImageDimensions"
            elif any(t not in project.tags for t in all_tags):
                status = "ErrorInvalidTag"
            elif len(regions) > LIMITS.max_regions_per_image:
                status = "ErrorRegionLimitExceed"
            elif len(all_tags) > 1 and any(project.tags[t].type == "Negative" for t in all_tags):
                status = "ErrorNegativeAndRegularTagOnSameImage"
            if status == "OK" and data is not None and shape is not None:
                digest = hashlib.sha256(data).hexdigest()
                existing = batch_digests.get(digest) or project.images.get(project.digests.get(digest, ""))
                if existing is not None:
                    status, image = "OKDuplicate", existing
                elif len(project.images) >= self.caps.images:
                    status = "ErrorLimitExceed"
                else:
                    image_id = new_id()
                    path = project.folder / "images" / f"{image_id}{IMAGE_FORMATS[shape[0]]}"
                    path.write_bytes(data)
                    created = now()
                    image = StoredImage(
                        id=image_id,
                        created=created,
                        width=shape[1],
                        height=shape[2],
                        digest=digest,
                        path=path,
                        tag_ids=sorted(set(tag_ids), key=tag_ids.index),
                        regions=[{**r, "regionId": new_id(), "created": created} for r in regions],
                        metadata=dict(metadata or {}),
                    )
                    project.images[image_id] = image
                    project.digests[digest] = image_id
                    self.images[image_id] = image
                    batch_digests[digest] = image
                    project.touch()
            results.append(
                {
                    "sourceUrl": source,
                    "status": status,
                    "image": image.as_wire(project.tags, self.base_url) if image is not None else None,
                }
            )
        successful = all(r["status"] in ("OK", "OKDuplicate") for r in results)
        return Reply(200 if successful else 207, {"isBatchSuccessful": successful, "images": results})

    @staticmethod
    def _check_batch(count: int, tag_ids: set[str], metadata: Any) -> None:
        if count == 0:
            raise bad_request("BadRequestImageBatch", "The batch has no images.")
        if count > LIMITS.max_images_per_batch or len(tag_ids) > LIMITS.max_tags_per_batch:
            raise bad_request(
                "BadRequestImageBatch",
                f"The batch has {count} images and {len(tag_ids)} tags: at most "
                f"{LIMITS.max_images_per_batch} images and {LIMITS.max_tags_per_batch} tags per batch.",
            )
        if metadata is not None and (not isinstance(metadata, dict) or len(metadata) > LIMITS.max_metadata_items):
            raise bad_request(
                "BadRequestImageMetadataKey",
                f"At most {LIMITS.max_metadata_items} metadata key/value pairs per image.",
            )

    def create_images_from_files(self, request: Request) -> Any:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("images") or [], list):
            raise bad_request("BadRequestImageBatch", "The body must be an ImageFileCreateBatch.")
        batch_tags = [str(t) for t in body.get("tagIds") or []]
        raw_entries = body.get("images") or []
        with self.lock:
            project = self._project(request.params["projectId"])
            entries: list[tuple[str | None, bytes | None, list[str], list[dict[str, Any]]]] = []
            every_tag = set(batch_tags)
            for number, entry in enumerate(raw_entries, start=1):
                if not isinstance(entry, dict):
                    raise bad_request("BadRequestImageBatch", f"Image {number} must be an ImageFileCreateEntry.")
                regions = self._check_regions(project, entry.get("regions"), number)
                tags = batch_tags + [str(t) for t in entry.get("tagIds") or [] if str(t) not in batch_tags]
                every_tag |= set(tags) | {r["tagId"] for r in regions}
                try:
                    data: bytes | None = base64.b64decode(entry.get("contents") or "", validate=True)
                except (binascii.Error, ValueError, TypeError):
                    data = None
                entries.append((entry.get("name"), data, tags, regions))
            self._check_batch(len(entries), every_tag, body.get("metadata"))
            return self._add_images(project, entries, body.get("metadata"))

    def create_images_from_data(self, request: Request) -> Any:
        tags = request.ids("tagIds")
        payloads = image_payloads(request)
        with self.lock:
            project = self._project(request.params["projectId"])
            self._check_batch(len(payloads), set(tags), None)
            return self._add_images(project, [(name, data, list(tags), []) for name, data in payloads], None)

    def _images(self, request: Request, tagged: bool | None) -> list[StoredImage]:
        project = self._project(request.params["projectId"])
        wanted = set(request.ids("tagIds"))
        found = []
        for image in project.images.values():
            tags = image.all_tag_ids()
            if tagged is True and not tags:
                continue
            if tagged is False and tags:
                continue
            if wanted and not wanted & tags:
                continue
            found.append(image)
        if (request.text("orderBy") or "Newest") == "Newest":
            found.reverse()
        return found

    def _page(self, request: Request, images: list[StoredImage]) -> list[dict[str, Any]]:
        project = self._project(request.params["projectId"])
        skip = int(request.number("skip", 0) or 0)
        take = int(request.number("take", 50) or 50)
        return [image.as_wire(project.tags, self.base_url) for image in images[skip : skip + take]]

    def get_images(self, request: Request) -> Any:
        with self.lock:
            return self._page(request, self._images(request, None))

    def get_tagged_images(self, request: Request) -> Any:
        with self.lock:
            return self._page(request, self._images(request, True))

    def get_image_count(self, request: Request) -> Any:
        with self.lock:
            return len(self._images(request, None))

    def get_tagged_image_count(self, request: Request) -> Any:
        with self.lock:
            return len(self._images(request, True))

    def delete_images(self, request: Request) -> Any:
        with self.lock:
            project = self._project(request.params["projectId"])
            ids = set(project.images) if request.flag("allImages") else set(request.ids("imageIds"))
            for image_id in ids & set(project.images):
                image = project.images.pop(image_id)
                project.digests.pop(image.digest, None)
                self.images.pop(image_id, None)
                project.touch()
        return None

    # ------------------------------------------------------------------------------------- training

    def _validate_training(self, project: Project, selected: list[str]) -> list[Tag]:
        regular = [t for t in project.tags.values() if t.type != "Negative" and (not selected or t.id in selected)]
        minimum = LIMITS.min_images_per_tag("detection" if project.detection else "classification")
        counts = {}
        for tag in regular:
            if project.detection:
                counts[tag.id] = sum(1 for i in project.images.values() if tag.id in i.region_tag_ids())
            else:
                counts[tag.id] = sum(1 for i in project.images.values() if tag.id in i.tag_ids)
        code = "BadRequestTrainingValidationFailed"
        if project.detection:
            code = "BadRequestDetectionTrainingValidationFailed"
        hint = texts.MIN_IMAGES_HINT.format(n=minimum)
        if not regular:
            raise bad_request(code, f"{texts.NOT_ENOUGH_IMAGES} {hint} The project has no non-negative tag.")
        if project.classification_type == "Multiclass" and sum(1 for c in counts.values() if c) < 2:
            raise bad_request(
                "BadRequestMultiClassClassificationTrainingValidationFailed",
                "Not enough tags for training. A Multiclass project needs at least 2 tags with images.",
            )
        for tag in regular:
            if counts[tag.id] < minimum:
                what = "images with a region of it" if project.detection else "images"
                raise bad_request(
                    code,
                    f"{texts.NOT_ENOUGH_IMAGES} {hint} Tag '{tag.name}' has {counts[tag.id]} {what}.",
                )
        return regular

    def train_project(self, request: Request) -> Any:
        training_type = request.text("trainingType") or "Regular"
        budget = int(request.number("reservedBudgetInHours", 0) or 0)
        force = request.flag("forceTrain")
        body = request.json() if request.body else None
        selected = [str(t) for t in (body or {}).get("selectedTags") or []] if isinstance(body, dict) else []
        if training_type not in TRAINING_TYPES:
            raise bad_request("BadRequestInvalid", f"Unknown training type: {training_type}. Use Regular or Advanced.")
        if training_type == "Advanced" and budget < 1:
            raise bad_request(
                "BadRequestReservedBudgetInHoursNotEnoughForAdvancedTraining",
                "Advanced training needs a reserved budget of at least 1 hour (reservedBudgetInHours).",
            )
        with self.lock:
            project = self._project(request.params["projectId"])
            live = [i for i in project.iterations.values() if not i.deleted]
            if any(i.status == "Training" for i in live):
                raise bad_request("BadRequestTrainingAlreadyInProgress", "Training is already in progress.")
            if len(live) >= LIMITS.max_iterations:
                raise bad_request(
                    "BadRequestExceedIterationPerProjectLimit",
                    f"The project has {len(live)} iterations, the most allowed: delete one before training.",
                )
            tags = self._validate_training(project, selected)
            if not force and any(i.status == "Completed" and i.revision == project.revision for i in live):
                raise bad_request("BadRequestTrainingNotNeeded", "Nothing changed since last training.")
            tag_ids = [t.id for t in tags]
            snapshot = [
                TrainingImage(
                    path=image.path,
                    tag_ids=[t for t in image.tag_ids if t in tag_ids],
                    regions=[dict(r) for r in image.regions if r["tagId"] in tag_ids],
                    width=image.width,
                    height=image.height,
                )
                for image in project.images.values()
                if image.all_tag_ids() & set(tag_ids)
            ]
            project.iteration_counter += 1
            domain = self.domains[project.domain_id]
            iteration_id = new_id()
            task = (
                "detection"
                if project.detection
                else "multilabel"
                if project.classification_type == "Multilabel"
                else "classification"
            )
            iteration = Iteration(
                id=iteration_id,
                name=f"Iteration {project.iteration_counter}",
                project_id=project.id,
                domain_id=project.domain_id,
                exportable=domain.exportable,
                exportable_to=list(domain.exportable_platforms),
                classification_type=project.classification_type,
                training_type=training_type,
                reserved_budget_in_hours=budget,
                revision=project.revision,
                created=now(),
                task=task,
                tag_ids=tag_ids,
                labels=[t.name for t in tags],
                snapshot=snapshot,
                model_dir=project.folder / "iterations" / iteration_id / "model",
            )
            project.iterations[iteration_id] = iteration
            runner = IterationRunner(iteration, self.pace, self.limits, self.closing, self.faults.next_failure())
            self.start_thread(f"customvision-train-{iteration_id[:8]}", runner.run)
            return iteration.as_wire()

    def get_iterations(self, request: Request) -> Any:
        with self.lock:
            project = self._project(request.params["projectId"])
            return [i.as_wire() for i in project.iterations.values() if not i.deleted]

    def get_iteration(self, request: Request) -> Any:
        with self.lock:
            project = self._project(request.params["projectId"])
            return self._iteration(project, request.params["iterationId"]).as_wire()

    def delete_iteration(self, request: Request) -> Any:
        with self.lock:
            project = self._project(request.params["projectId"])
            iteration = self._iteration(project, request.params["iterationId"])
            if iteration.publish_name:
                raise bad_request(
                    "BadRequestIterationIsPublished",
                    f"Cannot delete iteration '{iteration.name}': it is published as '{iteration.publish_name}'. "
                    "Unpublish it first.",
                )
            iteration.deleted = True
            del project.iterations[iteration.id]
            for job in iteration.exports:
                self.exports.pop(job.id, None)
        if iteration.model_dir is not None:
            shutil.rmtree(iteration.model_dir.parent, ignore_errors=True)
        return None

    def _completed(self, project: Project, iteration_id: str) -> Iteration:
        iteration = self._iteration(project, iteration_id)
        if iteration.status != "Completed":
            raise bad_request(
                "BadRequestIterationIsNotTrained",
                f"Iteration '{iteration.name}' is not trained (status {iteration.status}).",
            )
        return iteration

    def get_iteration_performance(self, request: Request) -> Any:
        threshold = request.number("threshold", 0.5)
        overlap = request.number("overlapThreshold", 0.3)
        assert threshold is not None and overlap is not None
        for name, value in (("threshold", threshold), ("overlapThreshold", overlap)):
            if not 0 <= value <= 1:
                raise bad_request("BadRequestPredictionInvalidQueryParameters", f"{name} must be between 0 and 1.")
        with self.lock:
            project = self._project(request.params["projectId"])
            iteration = self._completed(project, request.params["iterationId"])
        return performance(iteration, threshold, overlap)

    # ---------------------------------------------------------------------------------- publishing

    def publish_iteration(self, request: Request) -> Any:
        name = (request.text("publishName") or "").strip()
        target = request.text("predictionId") or ""
        overwrite = request.flag("overwrite")
        with self.lock:
            project = self._project(request.params["projectId"])
            iteration = self._completed(project, request.params["iterationId"])
            if target != self.prediction_resource_id:
                raise bad_request(
                    "BadRequestInvalidPublishTarget",
                    f"Invalid prediction resource id '{target}': pass the Azure Resource Manager id of a Custom "
                    "Vision prediction resource (/subscriptions/<subscription>/resourceGroups/<group>/providers/"
                    "Microsoft.CognitiveServices/accounts/<name>).",
                )
            if not PUBLISH_NAME.match(name):
                raise bad_request("BadRequestInvalidPublishName", f"Invalid publish name: '{name}'.")
            if iteration.publish_name == name:
                return True
            if iteration.publish_name:
                raise bad_request(
                    "BadRequestIterationIsPublished",
                    f"Iteration '{iteration.name}' is already published as '{iteration.publish_name}'.",
                )
            holder = next((i for i in project.iterations.values() if i.publish_name == name), None)
            if holder is not None:
                if not overwrite:
                    raise bad_request(
                        "BadRequestInvalidPublishName",
                        f"The publish name '{name}' is already used by '{holder.name}'; unpublish it or pass "
                        "overwrite=true.",
                    )
                holder.publish_name = None
                holder.original_publish_resource_id = None
            iteration.publish_name = name
            iteration.original_publish_resource_id = target
            iteration.last_modified = now()
        return True

    def unpublish_iteration(self, request: Request) -> Any:
        with self.lock:
            project = self._project(request.params["projectId"])
            iteration = self._iteration(project, request.params["iterationId"])
            if not iteration.publish_name:
                raise bad_request("BadRequestIterationNotPublished", f"Iteration '{iteration.name}' is not published.")
            iteration.publish_name = None
            iteration.original_publish_resource_id = None
            iteration.last_modified = now()
        return None

    # ---------------------------------------------------------------------------------------- export

    def export_iteration(self, request: Request) -> Any:
        platform = request.text("platform") or ""
        flavor = request.text("flavor")
        with self.lock:
            project = self._project(request.params["projectId"])
            iteration = self._iteration(project, request.params["iterationId"])
            if iteration.status == "Training":
                raise bad_request("BadRequestExportWhileTraining", "Cannot export while the iteration is training.")
            if iteration.status != "Completed":
                raise bad_request("BadRequestIterationIsNotTrained", f"Iteration '{iteration.name}' is not trained.")
            domain = self.domains[iteration.domain_id]
            if not domain.exportable:
                raise bad_request(
                    "BadRequestExportValidationFailed",
                    f"Export is not supported: iteration '{iteration.name}' was trained on the domain "
                    f"'{domain.name}', which is not compact. Only compact domains export; retrain on a compact "
                    "domain.",
                )
            if platform not in EXPORT_FLAVORS or platform not in domain.exportable_platforms:
                raise bad_request(
                    "BadRequestExportValidationFailed",
                    f"Unsupported export platform '{platform}'; use one of {', '.join(domain.exportable_platforms)}.",
                )
            if flavor not in EXPORT_FLAVORS[platform]:
                allowed = ", ".join(f for f in EXPORT_FLAVORS[platform] if f) or "none"
                raise bad_request(
                    "BadRequestExportValidationFailed",
                    f"Unsupported flavor '{flavor}' for platform {platform}; flavors: {allowed}.",
                )
            for job in iteration.exports:
                if job.platform == platform and job.flavor == flavor:
                    if job.status == "Exporting":
                        raise bad_request(
                            "BadRequestExportAlreadyInProgress", f"An export to {platform} is already in progress."
                        )
                    if job.status == "Done":
                        return job.as_wire()
                    iteration.exports.remove(job)
                    break
            job = ExportJob(id=uuid.uuid4().hex, platform=platform, flavor=flavor)
            iteration.exports.append(job)
            self.exports[job.id] = job
            self.start_thread(f"customvision-export-{job.id[:8]}", lambda: self._run_export(iteration, job))
            return job.as_wire()

    def _run_export(self, iteration: Iteration, job: ExportJob) -> None:
        try:
            if self.closing.wait(self.pace):
                return
            from mcv_customvision.emulator.export import build_export

            assert iteration.model_dir is not None
            data = build_export(iteration.model_dir, iteration.task, list(iteration.labels), job.platform, job.flavor)
            folder = self.state_dir / "exports"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{job.id}.zip"
            path.write_bytes(data)
            if self.closing.wait(self.pace):
                return
            with self.lock:
                job.path = path
                job.download_uri = f"{self.base_url}/_emulator/exports/{job.id}.zip"
                job.status = "Done"
        except Exception:
            log.warning("export %s of iteration %s failed inside the emulator", job.id, iteration.id, exc_info=True)
            with self.lock:
                job.status = "Failed"

    def get_exports(self, request: Request) -> Any:
        with self.lock:
            project = self._project(request.params["projectId"])
            iteration = self._iteration(project, request.params["iterationId"])
            return [job.as_wire() for job in iteration.exports]

    def export_file(self, export_id: str) -> Path | None:
        """The archive of a finished export (the download route)."""
        with self.lock:
            job = self.exports.get(export_id)
            return job.path if job is not None and job.status == "Done" else None

    def image_file(self, image_id: str) -> Path | None:
        """A stored training image (the image URI route)."""
        with self.lock:
            image = self.images.get(image_id)
            return image.path if image is not None else None

    # ------------------------------------------------------------------------------------ prediction

    def _predict_body(self, request: Request) -> bytes:
        payloads = image_payloads(request)
        if not payloads or not payloads[0][1]:
            raise bad_request("BadRequestImageStream", "The request has no image.")
        data = payloads[0][1]
        if len(data) > LIMITS.max_predict_image_bytes:
            raise bad_request(
                "BadRequestImageSizeBytes",
                f"Image size in bytes {len(data)} exceeds the limit of {LIMITS.max_predict_image_bytes} bytes (4 MB).",
            )
        if probe(data) is None:
            raise bad_request("BadRequestImageFormat", f"Bad Request Image Format, Uri: {uuid.uuid4().hex}")
        return data

    def _answer(self, project: Project, iteration: Iteration, data: bytes) -> dict[str, Any]:
        from multicloud_cv.emulation.serving import decode_rgb

        model = iteration.model
        if model is None:
            raise CvError("ErrorPredictionModelNotFound", "The iteration's model is not available.", status=500)
        predictions: list[dict[str, Any]] = []
        if iteration.task == "detection":
            for label, score, x0, y0, x1, y1 in detect(model, decode_rgb(data), input_side(self.limits)):
                if not 0 <= label < len(iteration.tag_ids):
                    continue
                predictions.append(
                    {
                        "probability": score,
                        "tagId": iteration.tag_ids[label],
                        "tagName": iteration.labels[label],
                        "boundingBox": {"left": x0, "top": y0, "width": x1 - x0, "height": y1 - y0},
                        "tagType": "Regular",
                    }
                )
        else:
            for index, score in enumerate(model.classify(data)):
                predictions.append(
                    {
                        "probability": score,
                        "tagId": iteration.tag_ids[index],
                        "tagName": iteration.labels[index],
                        "tagType": "Regular",
                    }
                )
        predictions.sort(key=lambda p: -float(p["probability"]))
        return {
            "id": new_id(),
            "project": project.id,
            "iteration": iteration.id,
            "created": now(),
            "predictions": predictions,
        }

    def _published(self, request: Request, detection: bool) -> tuple[Project, Iteration]:
        with self.lock:
            project = self.projects.get(request.params["projectId"])
            name = request.params["publishedName"]
            iteration = None
            if project is not None:
                iteration = next(
                    (i for i in project.iterations.values() if i.publish_name == name and not i.deleted), None
                )
            if project is None or iteration is None:
                raise texts.INVALID_ITERATION
            if project.detection != detection:
                kind = "an object detection" if project.detection else "a classification"
                use = "Detect" if project.detection else "Classify"
                raise bad_request("BadRequestNotSupported", f"The project is {kind} project: use {use}Image.")
            return project, iteration

    def classify(self, request: Request) -> Any:
        project, iteration = self._published(request, detection=False)
        return self._answer(project, iteration, self._predict_body(request))

    def detect(self, request: Request) -> Any:
        project, iteration = self._published(request, detection=True)
        return self._answer(project, iteration, self._predict_body(request))

    def quick_test_image(self, request: Request) -> Any:
        with self.lock:
            project = self._project(request.params["projectId"])
            wanted = request.text("iterationId")
            if wanted:
                iteration = self._completed(project, wanted)
            else:
                done = [i for i in project.iterations.values() if i.status == "Completed" and not i.deleted]
                if not done:
                    raise CvError(
                        "NotFoundProjectDefaultIteration", "The project has no trained iteration.", status=404
                    )
                iteration = done[-1]
        return self._answer(project, iteration, self._predict_body(request))
