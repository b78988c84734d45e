"""Exceptions raised by the local training engine.

They are deliberately plain :class:`Exception` subclasses: the framework core wraps them
into its own error hierarchy.
"""

from __future__ import annotations


class EngineError(Exception):
    """Training cannot go on: bad configuration, unreadable image, missing optional dependency..."""


class TrainingInterrupted(EngineError):
    """``should_stop()`` asked the run to stop; ``last.pt`` was saved, so ``train`` can resume."""
