"""The operations of a bundled document, in document order, as `Operation` records.

Walks `paths` (then Azure's `x-ms-paths`), follows path-item, parameter, request-body and response references,
merges path-level parameters into each operation's (the operation's win on the same name and location), and turns
Swagger 2.0 operations into their OpenAPI 3 shape on the way. One bad operation is skipped with a warning naming
its pointer and why; it never stops the others. Callbacks and webhooks are not operations: the gateway calls the
API, it does not receive calls from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.errors import Diagnostic
from gateway.spec import openapi3, pointer, swagger2
from gateway.spec.model import Operation, RequestBody, Response, SchemaDialect
from gateway.spec.openapi3 import ObjectError
from gateway.spec.refs import RefError, deref, locate

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_IGNORED_HEADERS = frozenset({"content-type", "authorization"})
"""OpenAPI 3: header parameters with these names SHALL be ignored (the body and the security schemes say them).
OpenAPI says the same of `Accept`, but real specs declare it to choose among the answers' media types (often
with an enum), so it is kept: the tool offers it and the gateway's own `Accept` yields to it."""


class OperationBuilder:
    """Builds the operations of one bundled document and collects the warnings met on the way."""

    def __init__(
        self, document: Mapping[str, Any], name: str, spec_version: str, dialect: SchemaDialect, base_url: str | None,
        *, lint: bool = True,
    ) -> None:
        self._document = document
        self._name = name
        self._swagger2 = spec_version == "2.0"
        self._dialect = dialect
        self._base_url = base_url
        self._host_parameters = swagger2.host_parameter_names(document) if self._swagger2 else frozenset()
        self.warnings: list[Diagnostic] = []
        self._check = None
        if lint and not self._swagger2:
            from gateway.spec.validate import check_operation  # openapi-pydantic's models: a tenth of start-up

            self._check = check_operation

    def warn(self, at: str, message: str) -> None:
        self.warnings.append(Diagnostic(locate(self._document, self._name, at), message))

    def build(self) -> tuple[Operation, ...]:
        operations = []
        for key in ("paths", "x-ms-paths"):
            paths = self._document.get(key)
            if paths is None:
                continue
            if not isinstance(paths, Mapping):
                self.warn(f"#/{key}", f"`{key}` is not a map: ignored")
                continue
            for path, item in paths.items():
                if not path.startswith("x-"):
                    operations.extend(self._path_item(path, item, pointer.join(f"#/{key}", path)))
        return tuple(operations)

    def _path_item(self, path: str, item: Any, at: str) -> list[Operation]:
        try:
            resolved, item_at = deref(self._document, item, at)
        except RefError as exc:
            self.warn(at, f"path item skipped: {exc}")
            return []
        if not isinstance(resolved, Mapping):
            self.warn(at, "path item is not an object: skipped")
            return []
        if resolved is not item:  # a `$ref` with siblings: the siblings are added to the referenced path item
            resolved = {**resolved, **{k: v for k, v in item.items() if k != "$ref"}}
        operations = []
        for method in METHODS:
            if method not in resolved:
                continue
            op_at = pointer.join(item_at, method)
            try:
                operations.append(self._operation(path, method, resolved[method], op_at, resolved, item_at))
            except ObjectError as exc:
                self.warn(exc.at, f"operation {method.upper()} {path} skipped: {exc.message}")
        return operations

    def _operation(self, path: str, method: str, op: Any, at: str, item: Mapping[str, Any], item_at: str) -> Operation:
        if not isinstance(op, Mapping):
            raise ObjectError(at, "the operation is not an object")
        if self._check is not None:
            for problem_at, message in self._check(op, at, self._dialect):
                self.warn(problem_at, message)
        located = self._parameters(path, item.get("parameters"), item_at, op.get("parameters"), at)
        if self._swagger2:
            consumes = swagger2.mime_types(self._document, op, "consumes")
            located, body = swagger2.convert_parameters(located, consumes, self.warn)
            body_at = at
        else:
            body, body_at = self._deref(op.get("requestBody"), pointer.join(at, "requestBody"), "requestBody")
        security = op.get("security")
        return Operation(
            method=method,
            path=path,
            pointer=at,
            operation_id=op.get("operationId") if isinstance(op.get("operationId"), str) else None,
            summary=openapi3.text(op.get("summary")),
            description=openapi3.text(op.get("description")),
            tags=tuple(tag for tag in op.get("tags") or () if isinstance(tag, str)),
            deprecated=op.get("deprecated") is True,
            parameters=tuple(openapi3.parameter(param, param_at, self.warn) for param, param_at in located),
            request_body=self._request_body(body, body_at),
            responses=self._responses(op, at),
            security=None if security is None else openapi3.security(security, pointer.join(at, "security"), self.warn),
            servers=openapi3.servers(op.get("servers"), pointer.join(at, "servers"), self._base_url, self.warn)
            or openapi3.servers(item.get("servers"), pointer.join(item_at, "servers"), self._base_url, self.warn),
            extensions={k: v for k, v in op.items() if isinstance(k, str) and k.startswith("x-")},
        )

    def _parameters(
        self, path: str, path_level: Any, path_at: str, op_level: Any, op_at: str
    ) -> list[tuple[Mapping[str, Any], str]]:
        """Path-level then operation-level parameters, refs followed; the operation's replace same name + in."""
        merged: dict[tuple[str, str], tuple[Mapping[str, Any], str]] = {}
        for declared, at in ((path_level, path_at), (op_level, op_at)):
            if declared is None:
                continue
            if not isinstance(declared, list):
                raise ObjectError(pointer.join(at, "parameters"), "`parameters` is not a list")
            for i, param in enumerate(declared):
                param, param_at = self._deref(param, pointer.join(at, "parameters", i), "parameter")
                name, location = openapi3.parameter_key(param, param_at)
                if self._ignored(name, location, path):
                    continue
                merged[(name, location)] = (param, param_at)
        return list(merged.values())

    def _ignored(self, name: str, location: str, path: str) -> bool:
        if self._swagger2:  # an x-ms-parameterized-host variable, unless the path itself uses it
            return location == "path" and name in self._host_parameters and "{" + name + "}" not in path
        return location == "header" and name.lower() in _IGNORED_HEADERS

    def _request_body(self, body: Any, at: str) -> RequestBody | None:
        return None if body is None else openapi3.request_body(body, at, self._document, self.warn)

    def _responses(self, op: Mapping[str, Any], at: str) -> tuple[Response, ...]:
        declared = op.get("responses")
        at = pointer.join(at, "responses")
        if not isinstance(declared, Mapping):
            return ()
        produces = swagger2.mime_types(self._document, op, "produces") if self._swagger2 else []
        responses = []
        for status, obj in declared.items():
            if status.startswith("x-"):
                continue
            try:
                obj, obj_at = deref(self._document, obj, pointer.join(at, status))
            except RefError as exc:
                self.warn(pointer.join(at, status), f"response skipped: {exc}")
                continue
            if not isinstance(obj, Mapping):
                self.warn(obj_at, "response is not an object: skipped")
                continue
            if self._swagger2:
                obj = swagger2.convert_response(obj, produces)
            responses.append(openapi3.response(status, obj, obj_at, self._document, self.warn))
        return tuple(responses)

    def _deref(self, node: Any, at: str, what: str) -> tuple[Any, str]:
        try:
            return deref(self._document, node, at)
        except RefError as exc:
            raise ObjectError(at, f"{what} cannot be resolved: {exc}") from None
