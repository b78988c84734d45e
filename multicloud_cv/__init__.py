"""multicloud-cv: train and serve image models on any cloud through one interface.

The core never imports a cloud SDK, torch or onnxruntime at module load; providers are
plugins found through entry points (see :mod:`multicloud_cv.registry`).
"""

from __future__ import annotations

__version__ = "0.1.0"

#: Version of the plugin API. A plugin declares the version it was written against
#: (``api_version`` class attribute); the registry refuses a plugin whose major
#: version differs, with a message naming both versions.
PLUGIN_API_VERSION = "1.0"

__all__ = ["PLUGIN_API_VERSION", "__version__"]
