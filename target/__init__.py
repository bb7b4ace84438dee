"""qos-target: the measurement server a probe tests against (HTTP download, upload, echo)."""
