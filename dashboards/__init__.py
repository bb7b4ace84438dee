"""Grafana dashboards as code: generated JSON, provisioning, and a Grafana-free PNG renderer."""
