"""The gateway service: transports, storage, pipeline, APIs and workers.

Importing this package reads no settings and starts nothing; ``gateway.app``
holds the one composition root.
"""

__version__ = "0.1.0"
