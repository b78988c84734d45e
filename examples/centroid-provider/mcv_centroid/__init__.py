"""mcv-example-centroid: a worked example of a multicloud-cv provider plugin.

A nearest-class-centroid classifier on small RGB thumbnails, trained in-process and served
from a "virtual" endpoint. See ``docs/writing-a-provider.md`` for the walk-through.
"""

__version__ = "0.1.0"
