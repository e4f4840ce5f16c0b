"""clevertap-consumer: Kafka → CleverTap delivery of RudderStack/Segment-spec events."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("clevertap-consumer")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
