"""Runners: one module per measurement kind, each turning a test into a result block."""
