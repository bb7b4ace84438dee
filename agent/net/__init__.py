"""Helpers the measurement kinds share: interface binding, raw HTTP, TCP_INFO, CPU, sampling."""
