"""qos-agent: the probe that measures its links and publishes results."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qosfleet")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
