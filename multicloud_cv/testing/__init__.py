"""The conformance kit every provider plugin's tests run.

Subclass :class:`ProviderConformance` in your plugin's test suite, set ``provider_name``
(and, if needed, override the fixtures ``provider_config`` and ``train_hyperparameters``),
and pytest runs the same checks against your provider as against the built-in ones::

    from multicloud_cv.testing import ProviderConformance

    class TestMyCloud(ProviderConformance):
        provider_name = "mycloud"
        min_accuracy = 0.6

See ``docs/writing-a-provider.md``.
"""

from multicloud_cv.testing.data import make_tiny_dataset
from multicloud_cv.testing.suite import ProviderConformance, validate_document

__all__ = ["ProviderConformance", "make_tiny_dataset", "validate_document"]
