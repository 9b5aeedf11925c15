"""Start-up stage 1: an OpenAPI / Swagger document (file or URL) -> `ApiModel`."""

from gateway.spec.load import load_spec
from gateway.spec.model import ApiModel, MediaType, Operation, Parameter, RequestBody, Response, Server

__all__ = ["ApiModel", "MediaType", "Operation", "Parameter", "RequestBody", "Response", "Server", "load_spec"]
