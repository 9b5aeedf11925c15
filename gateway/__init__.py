"""Semantic Adapter Gateway: OpenAPI operations served as MCP tools.

The gateway is two pipelines. At start-up: load spec -> apply mapping -> tool specs -> serve.
Per call: validate -> authorize -> forward -> shape. Each stage lives in its own package
(`spec`, `mapping`, `tools`, `calls`) and hands the next one plain frozen dataclasses.
"""

__version__ = "0.1.0"
