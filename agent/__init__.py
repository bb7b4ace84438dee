"""qos-agent: the probe that measures its links and publishes results."""

# A constant, not importlib.metadata: reading the installed metadata costs the idle daemon ~6 MiB
# of RSS on a Pi. tests/unit/agent/test_agent_version.py keeps it equal to pyproject.toml's.
__version__ = "0.1.0"
