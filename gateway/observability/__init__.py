"""Observing the gateway: structured logs with a request id, Prometheus metrics, OpenTelemetry traces.

Observers, not stages: they read the call path's outcomes and the upstream exchange, and never change
what a call does.
"""
