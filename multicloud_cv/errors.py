"""One exception hierarchy for the whole framework.

Every error a user can meet is an :class:`MCVError` with a message that says what is
wrong and what to do. The CLI maps :class:`BadInput` (and subclasses) to exit code 2 and
every other :class:`MCVError` to exit code 1. Messages never contain credentials.
"""

from __future__ import annotations


class MCVError(Exception):
    """Base of every error raised by multicloud-cv and its plugins."""

    exit_code = 1


class BadInput(MCVError):
    """The request itself is wrong (bad path, bad option, unknown id): exit code 2."""

    exit_code = 2


class DatasetError(BadInput):
    """The dataset cannot be used as given (missing, unreadable, too few classes...)."""


class ConfigError(BadInput):
    """A provider setting is missing or invalid."""


class UnknownProvider(BadInput):
    """No installed provider has that name."""


class ProviderNotInstalled(BadInput):
    """A known provider whose distribution or SDK is not installed; the message has the install command."""


class NotFound(BadInput):
    """A job, model or endpoint id that no run record and no provider knows."""


class UnsupportedFeature(BadInput):
    """A request the provider declared it cannot serve; raised before any work starts."""

    def __init__(self, provider: str, gaps: dict[str, str]) -> None:
        self.provider = provider
        self.gaps = dict(gaps)
        details = "; ".join(f"{feature}: {reason}" for feature, reason in sorted(self.gaps.items()))
        super().__init__(f"provider '{provider}' cannot do this: {details}")


class InvalidImage(BadInput):
    """A file or payload given for prediction is not a decodable image."""


class PortInUse(BadInput):
    """The local endpoint's port is taken."""


class PluginLoadError(MCVError):
    """A plugin failed to load (import error, wrong API version, bad class)."""


class ServiceError(MCVError):
    """A provider or service failed while doing what was asked: exit code 1."""


class JobFailed(ServiceError):
    """A training job ended in FAILED; the message holds the provider's reason."""


class WaitTimeout(ServiceError):
    """Waiting for a job or endpoint took longer than the given timeout."""


class EndpointUnavailable(ServiceError):
    """An endpoint is recorded but does not answer."""
