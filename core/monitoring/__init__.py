"""Prometheus metrics, the seed's alert conditions evaluated in-process, automated actions."""
