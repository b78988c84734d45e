"""Provider plugins, found through entry points with stevedore.

Namespaces: ``multicloud_cv.trainers``, ``multicloud_cv.deployers``,
``multicloud_cv.predictors``; the entry-point name is the provider name. Loading imports
the plugin's entry-point module only, which must not import its SDK at module load.

Every plugin that fails to load (import error, wrong plugin API version, class of the
wrong kind) is kept as a :class:`Failure` with the reason and, when known, the install
command, so ``mcv providers`` can show it and ``--provider x`` can explain it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from multicloud_cv import PLUGIN_API_VERSION
from multicloud_cv.errors import PluginLoadError, ProviderNotInstalled, UnknownProvider

if TYPE_CHECKING:
    from multicloud_cv.interfaces import ProviderPlugin

log = logging.getLogger(__name__)

Role = Literal["trainer", "deployer", "predictor"]
NAMESPACES: dict[Role, str] = {
    "trainer": "multicloud_cv.trainers",
    "deployer": "multicloud_cv.deployers",
    "predictor": "multicloud_cv.predictors",
}

#: Providers this project knows of, with the command that installs each (like fsspec's
#: ``known_implementations``): a known name that is not installed gets this hint.
KNOWN_PROVIDERS: dict[str, str] = {
    "local": "pip install -e plugins/local  (distribution multicloud-cv-local)",
    "sagemaker": "pip install -e plugins/sagemaker  (distribution multicloud-cv-sagemaker, needs boto3)",
    "rekognition": "pip install -e plugins/rekognition  (distribution multicloud-cv-rekognition, needs boto3)",
    "vertex": "pip install -e plugins/vertex  (distribution multicloud-cv-vertex, needs google-cloud-aiplatform)",
    "customvision": "pip install -e plugins/customvision  "
    "(distribution multicloud-cv-customvision, needs azure-cognitiveservices-vision-customvision)",
}


@dataclass(frozen=True)
class Failure:
    """A plugin that did not load, why, and how to fix it."""

    name: str
    namespace: str
    reason: str
    install: str | None = None


@dataclass
class ProviderEntry:
    """An installed provider: its classes by role and the distribution that ships them."""

    name: str
    classes: dict[Role, type[ProviderPlugin]] = field(default_factory=dict)
    distribution: str | None = None
    version: str | None = None

    @property
    def roles(self) -> list[Role]:
        """Roles in the order trainer, deployer, predictor."""
        return [role for role in NAMESPACES if role in self.classes]

    @property
    def primary(self) -> type[ProviderPlugin]:
        """A class for the provider's metadata (all roles share name, settings and capabilities)."""
        return next(iter(self.classes.values()))


def _api_problem(cls: type, role: Role) -> str | None:
    from multicloud_cv.interfaces import Deployer, Predictor, Trainer

    base = {"trainer": Trainer, "deployer": Deployer, "predictor": Predictor}[role]
    if not isinstance(cls, type) or not issubclass(cls, base):
        return f"entry point does not name a {base.__name__} subclass (got {cls!r})"
    declared = str(getattr(cls, "api_version", ""))
    if not declared:
        return f'declares no api_version; set api_version = "{PLUGIN_API_VERSION}" on the class'
    if declared.split(".")[0] != PLUGIN_API_VERSION.split(".")[0]:
        return (
            f"written for plugin API {declared or '(none)'}, this multicloud-cv speaks {PLUGIN_API_VERSION}; "
            "upgrade the plugin or multicloud-cv so they match"
        )
    return None


T = TypeVar("T")


class Registry:
    """Installed providers, loaded once from entry points."""

    def __init__(self) -> None:
        from stevedore import ExtensionManager

        self.entries: dict[str, ProviderEntry] = {}
        self.failures: list[Failure] = []
        for role, namespace in NAMESPACES.items():

            def on_failure(_manager: Any, entrypoint: Any, exc: BaseException, namespace: str = namespace) -> None:
                self._record_failure(entrypoint.name, namespace, exc)

            manager = ExtensionManager(namespace, invoke_on_load=False, on_load_failure_callback=on_failure)
            for ext in manager.extensions:
                problem = _api_problem(ext.plugin, role)
                if problem:
                    self.failures.append(Failure(ext.name, namespace, problem, KNOWN_PROVIDERS.get(ext.name)))
                    continue
                entry = self.entries.setdefault(ext.name, ProviderEntry(ext.name))
                entry.classes[role] = ext.plugin
                package = sys.modules.get(ext.plugin.__module__.split(".")[0])
                entry.version = getattr(package, "__version__", None)

    def _record_failure(self, name: str, namespace: str, exc: BaseException) -> None:
        install = KNOWN_PROVIDERS.get(name)
        missing = isinstance(exc, ModuleNotFoundError)
        reason = f"cannot import {getattr(exc, 'name', exc)}" if missing else f"{type(exc).__name__}: {exc}"
        log.debug("plugin %s in %s failed to load: %s", name, namespace, reason)
        self.failures.append(Failure(name, namespace, reason, install))

    @property
    def names(self) -> list[str]:
        """Installed provider names, sorted."""
        return sorted(self.entries)

    def entry(self, name: str) -> ProviderEntry:
        """The provider called ``name``; a clear error when it is unknown, broken or not installed."""
        if name in self.entries:
            return self.entries[name]
        failed = [f for f in self.failures if f.name == name]
        if failed:
            hint = f"; install with: {failed[0].install}" if failed[0].install else ""
            raise PluginLoadError(f"provider '{name}' failed to load: {failed[0].reason}{hint}")
        if name in KNOWN_PROVIDERS:
            raise ProviderNotInstalled(f"provider '{name}' is not installed; install it with: {KNOWN_PROVIDERS[name]}")
        installed = ", ".join(self.names) or "(none)"
        raise UnknownProvider(f"no provider '{name}'; installed: {installed}")

    def get(
        self,
        name: str,
        role: Role,
        config: Mapping[str, str] | None = None,
        overrides: Mapping[str, str] | None = None,
        store: Any = None,
    ) -> Any:
        """An instance of provider ``name`` in ``role``, with its settings resolved.

        Settings come from the config file, ``MCV_<NAME>_<KEY>`` and ``overrides`` (see
        :mod:`multicloud_cv.config`) unless ``config`` is given whole.
        """
        from multicloud_cv.config import resolve

        entry = self.entry(name)
        if role not in entry.classes:
            have = ", ".join(entry.roles)
            raise UnknownProvider(f"provider '{name}' has no {role}; it provides: {have}")
        cls = entry.classes[role]
        if config is not None:  # a complete mapping from the caller: defaults filled, nothing read from file or env
            values = resolve(name, cls.settings, config, environ={}, use_config_file=False)
        else:
            values = resolve(name, cls.settings, overrides)
        return cls(values, store=store)

    def trainer(self, name: str, **kwargs: Any) -> Any:
        """Shortcut for ``get(name, "trainer", ...)``."""
        return self.get(name, "trainer", **kwargs)

    def deployer(self, name: str, **kwargs: Any) -> Any:
        """Shortcut for ``get(name, "deployer", ...)``."""
        return self.get(name, "deployer", **kwargs)

    def predictor(self, name: str, **kwargs: Any) -> Any:
        """Shortcut for ``get(name, "predictor", ...)``."""
        return self.get(name, "predictor", **kwargs)


_REGISTRY: Registry | None = None


def registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry()
    return cast(Registry, _REGISTRY)


def reset() -> None:
    """Forget the loaded registry (tests install plugins at run time)."""
    global _REGISTRY
    _REGISTRY = None
