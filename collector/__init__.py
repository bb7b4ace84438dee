"""qos-collector: the central side that validates, stores and judges the probes' results."""
