"""Generation: each selected operation becomes a `ToolSpec` with its schemas, plans and validators.

Argument layout (documented in docs/tools.md):
- every path, query, header and cookie parameter is a top-level argument named after the parameter
  (made safe for every client: `$filter` -> `filter`); when two locations share a name, the first in
  the order path, query, header, cookie keeps it and the others become `<location>_<name>`;
- a JSON, form or multipart body whose schema is a plain object is flattened: its properties are
  top-level arguments too, unless one would clash with a parameter; any other body is one argument
  named `body` (`request_body` when a parameter is already called `body`);
- headers the gateway owns (Authorization, Content-Type, Content-Length, Host, Cookie...) and
  parameters the mapping fixes or hides are never arguments.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from gateway.calls.validate import compile_validator
from gateway.errors import ConfigError, Diagnostic
from gateway.mapping import SelectedOperation, WidgetKind, WidgetSettings
from gateway.media import essence, is_json, is_xml
from gateway.spec import pointer
from gateway.spec.model import ApiModel, MediaType, Operation, Parameter, RequestBody
from gateway.tools import names
from gateway.tools.model import (
    ArgumentBinding,
    BodyKind,
    BodyPlan,
    RequestPlan,
    ResponsePlan,
    ToolSpec,
    WidgetSpec,
)
from gateway.tools.schemas import SchemaConverter

OWNED_HEADERS = frozenset(
    {"authorization", "content-type", "content-length", "host", "cookie", "transfer-encoding", "connection",
     "proxy-authorization", "te", "upgrade", "keep-alive"}
)
LOCATION_ORDER = {"path": 0, "query": 1, "header": 2, "cookie": 3}
MAX_DESCRIPTION = 1000

METHOD_ANNOTATIONS: Mapping[str, Mapping[str, bool]] = {
    "get": {"readOnlyHint": True, "openWorldHint": True},
    "head": {"readOnlyHint": True, "openWorldHint": True},
    "options": {"readOnlyHint": True, "openWorldHint": True},
    "post": {"readOnlyHint": False, "destructiveHint": False, "idempotentHint": False, "openWorldHint": True},
    "patch": {"readOnlyHint": False, "destructiveHint": False, "idempotentHint": False, "openWorldHint": True},
    "put": {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": True, "openWorldHint": True},
    "delete": {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": True, "openWorldHint": True},
}


def body_kind(content_type: str) -> BodyKind:
    media = essence(content_type)
    if media == "*/*" or is_json(media):
        return "json"
    if media == "application/x-www-form-urlencoded":
        return "form"
    if media.startswith("multipart/"):
        return "multipart"
    if media.startswith("text/") or is_xml(media):
        return "text"
    return "binary"


_KIND_PREFERENCE = {"json": 0, "form": 1, "multipart": 2, "text": 3, "binary": 4}


def choose_media_type(body: RequestBody) -> MediaType | None:
    """The body media type the gateway sends: JSON first, then form, multipart, text, anything else."""
    if not body.content:
        return None
    return min(body.content, key=lambda m: (_KIND_PREFERENCE[body_kind(m.content_type)], m.content_type == "*/*"))


def success_response_schema(operation: Operation) -> Mapping[str, Any] | None:
    """The JSON schema of the first 2xx answer (200 before 201 before 2XX), if it has one."""
    candidates = sorted(
        (r for r in operation.responses if r.status[:1] == "2"),
        key=lambda r: (r.status.upper() == "2XX", r.status),
    )
    for response in candidates:
        for media in response.content:
            if body_kind(media.content_type) == "json" and media.schema is not None:
                return media.schema
        return None  # the preferred success answer is not JSON: promise nothing
    return None


def accept_header(operation: Operation) -> str:
    types_ = [m.content_type for r in operation.responses if r.status[:1] in ("2", "d") for m in r.content]
    json_first = sorted(dict.fromkeys(types_), key=lambda t: body_kind(t) != "json")
    return ", ".join(json_first[:4]) if json_first else "application/json"


def describe(operation: Operation, override: str | None) -> str:
    if override:
        return override
    parts = [p.strip() for p in (operation.summary, operation.description) if p and p.strip()]
    if len(parts) == 2 and parts[1].startswith(parts[0].rstrip(".")):
        parts = parts[1:]
    text = "\n\n".join(parts) or f"{operation.method.upper()} {operation.path}"
    if len(text) > MAX_DESCRIPTION:
        cut = text[:MAX_DESCRIPTION]
        end = max(cut.rfind(". "), cut.rfind("\n"))
        text = (cut[: end + 1] if end > MAX_DESCRIPTION // 2 else cut).rstrip() + " ..."
    if operation.deprecated:
        text = "(Deprecated) " + text
    return text


_NARROWING_WORDS = frozenset({
    "page", "per", "limit", "offset", "cursor", "marker", "after", "before", "skip", "top", "max", "size",
    "since", "until", "next", "token", "filter", "q", "query", "search", "fields", "select", "status", "state",
})


def narrowing_arguments(bindings: Sequence[ArgumentBinding]) -> tuple[str, ...]:
    """Query arguments that page or filter an answer (`per_page`, `$top`, `q`, `filter`, `pageToken`...).

    A preview of an answer too large for the model's text names them, so the model can ask for less.
    """
    found = []
    for binding in bindings:
        if binding.target == "query":
            words = re.findall(r"[a-z]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", binding.wire_name).lower())
            if _NARROWING_WORDS.intersection(words):
                found.append(binding.argument)
    return tuple(found)


def split_qualifier(path: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """`/x/{p}?op=OPEN` -> (`/x/{p}`, (("op", "OPEN"),)); a `#...` qualifier is never sent."""
    base, query = re.split(r"[?#]", path, maxsplit=1)[0], ""
    if "?" in path and ("#" not in path or path.index("?") < path.index("#")):
        query = path.split("?", 1)[1].split("#", 1)[0]
    pairs = []
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        pairs.append((key, value))
    return base, tuple(pairs)


def check_mapping_values(tool: str, wire: str, override: Any, schema: Mapping[str, Any],
                         defs: Mapping[str, Any]) -> None:
    """A mapping's `fixed` or `default` value must be one the backend accepts: checked against the schema."""
    for key, present, value in (("fixed", override.has_fixed, override.fixed),
                                ("default", override.has_default, override.default)):
        if not present:
            continue
        problems = compile_validator({**schema, "$defs": dict(defs)} if defs else schema)(value)
        if problems:
            message = problems[0][1]
            raise ConfigError(override.where, f"tool {tool!r}: parameter {wire!r}: {key} value {value!r} does not "
                                              f"fit the parameter's schema ({message})")


class ToolGenerator:
    """Turns the selected operations of one API into tool specs; one instance per backend."""

    def __init__(self, api: ApiModel, *, backend: str = "default", prefix: str = "") -> None:
        self.api = api
        self.backend = backend
        self.prefix = prefix
        self.converter = SchemaConverter(api.document, api.dialect)
        self.warnings: list[Diagnostic] = []

    def generate(self, selected: list[SelectedOperation], taken: set[str] | None = None) -> list[ToolSpec]:
        raw = [self.prefix + (s.settings.name or names.operation_name(s.operation)) for s in selected]
        final = names.unique([names.tool_name(n) for n in raw], taken or ())
        return [self.tool(s, name) for s, name in zip(selected, final, strict=True)]

    # -- one tool ---------------------------------------------------------------------------------------------

    def tool(self, selected: SelectedOperation, name: str) -> ToolSpec:
        operation, settings = selected.operation, selected.settings
        defs: dict[str, Any] = {}
        properties: dict[str, Any] = {}
        required: list[str] = []
        bindings: list[ArgumentBinding] = []
        constants: dict[str, Any] = {}
        defaults: dict[str, Any] = {}
        taken: set[str] = set()

        def add(argument_for: str, wire: str, target: str, schema: dict[str, Any], is_required: bool,
                parameter: Parameter | None = None) -> None:
            override = settings.parameters.get(wire)
            if override is not None:
                check_mapping_values(name, wire, override, schema, defs)
            argument = names.unique([argument_for], taken)[0]
            taken.add(argument)
            bindings.append(ArgumentBinding(argument, target, wire, parameter,  # type: ignore[arg-type]
                                            allow_slash=bool(override and override.allow_slash)))
            if override and override.has_fixed:
                constants[argument] = override.fixed
                return
            if override and override.hidden:
                if override.has_default:
                    constants[argument] = override.default
                    return
                if is_required:
                    raise ConfigError(selected.settings.where,
                                      f"tool {name!r}: parameter {wire!r} is required, so it cannot be hidden "
                                      "without a fixed value or a default")
                return
            if override and override.description:
                schema = {**schema, "description": override.description}
            if override and override.has_default:
                schema = {**schema, "default": override.default}
                defaults[argument] = override.default
                is_required = False
            properties[argument] = schema
            if is_required:
                required.append(argument)

        path, fixed_query = split_qualifier(operation.path)
        params = sorted(
            (p for p in self._parameters(operation, path, fixed_query)
             if not (p.location == "header" and p.name.lower() in OWNED_HEADERS)),
            key=lambda p: LOCATION_ORDER[p.location],
        )
        seen_names: set[str] = set()
        for param in params:
            argument = names.argument_name(param.name)
            if argument in seen_names:
                argument = names.argument_name(f"{param.location}_{param.name}")
            seen_names.add(argument)
            schema = self.converter.input_schema(param.schema, defs)
            if param.location == "path" and schema.get("type") == "string" and "minLength" not in schema:
                schema = {**schema, "minLength": 1}  # an empty value would collapse the path
            if param.description and "description" not in schema:
                schema = {**schema, "description": param.description}
            required_param = param.required or param.location == "path"
            add(argument, param.name, param.location, schema, required_param, param)

        body_plan = None
        if operation.request_body is not None:
            body_plan = self._body(operation.request_body, defs, seen_names, add)

        input_schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            input_schema["required"] = required
        if defs:
            input_schema["$defs"] = defs
        method = operation.method.upper()
        accept = "" if any(p.location == "header" and p.name.lower() == "accept" for p in params) \
            else accept_header(operation)
        request = RequestPlan(method, path, tuple(bindings), body_plan, fixed_query, constants, defaults, accept)
        response = self._response(operation, settings, narrowing_arguments(bindings))
        annotations = {**METHOD_ANNOTATIONS.get(operation.method, {"openWorldHint": True}),
                       **(settings.annotations or {})}
        title = settings.title or operation.summary.strip().rstrip(".")[:80] or None
        return ToolSpec(
            name=name,
            title=title,
            description=describe(operation, settings.description),
            input_schema=input_schema,
            operation=operation,
            request=request,
            response=response,
            backend=self.backend,
            annotations=annotations,
            timeout=settings.timeout,
            scopes=settings.scopes if settings.scopes is not None else self._scopes(operation),
            public=settings.noauth,
            validate=compile_validator(input_schema),
            widget=self._widget(name, operation, settings.widget, response.output_schema, title, settings.where),
            invoking=settings.invoking,
            invoked=settings.invoked,
            visibility=settings.visibility,
            pinned=settings.pinned,
            keywords=settings.keywords,
        )

    def _widget(self, tool: str, operation: Operation, settings: WidgetSettings | None,
                output: Mapping[str, Any] | None, title: str | None, where: str) -> WidgetSpec | None:
        """The mapping's widget, else the built-in one that fits the answer's schema (None: no widget).

        Only a tool that promises an output schema gets one by itself: a mapping `select` reshapes the
        answer, so the spec's schema no longer says what it looks like.
        """
        if settings is not None and not settings.enabled:
            return None
        # The spec's own schema, not the relaxed output schema, which keeps no scalar types to tell a list by.
        shape = success_response_schema(operation) if output is not None else None
        kind = settings.kind if settings is not None and settings.kind else widget_for_output(shape, self._resolve)
        if kind is None:
            if settings is not None:
                self.warnings.append(Diagnostic(settings.where, f"tool {tool!r}: widget: the output schema does not "
                                                "say whether the answer is a table, a card or a list (or there is "
                                                "none), so the tool gets no widget; name one with `kind`"))
            return None
        default_title = title or tool
        if settings is None:
            return WidgetSpec(kind=kind, title=default_title, where=where)
        return WidgetSpec(
            kind=kind,
            title=settings.title or default_title,
            template=settings.template,
            columns=settings.columns,
            page_size=settings.page_size or 10,
            actions=settings.actions,
            row_action=settings.row_action,
            description=settings.description,
            prefers_border=settings.prefers_border if settings.prefers_border is not None else True,
            where=settings.where,
        )

    def _scopes(self, operation: Operation) -> tuple[str, ...]:
        """The OAuth scopes the operation's OpenAPI security asks for: those of the first alternative that
        names an oauth2 or openIdConnect scheme (the operation's own `security`, else the document's)."""
        requirements = operation.security if operation.security is not None else self.api.security
        for requirement in requirements:
            scopes = [scope for scheme, wanted in requirement.items()
                      if self.api.security_schemes.get(scheme, {}).get("type") in ("oauth2", "openIdConnect")
                      for scope in wanted]
            if scopes:
                return tuple(dict.fromkeys(scopes))
        return ()

    def _parameters(self, operation: Operation, path: str, fixed_query: tuple[tuple[str, str], ...]
                    ) -> list[Parameter]:
        """The operation's parameters, minus those its path qualifier fixes (`?op=OPEN` sends op itself),
        plus a string parameter for every `{name}` in the path template the spec forgot to declare."""
        fixed = {name for name, _ in fixed_query}
        params = [p for p in operation.parameters if not (p.location == "query" and p.name in fixed)]
        declared = {p.name for p in params if p.location == "path"}
        for name in dict.fromkeys(re.findall(r"{([^{}]+)}", path)):
            if name not in declared:
                self.warnings.append(Diagnostic(
                    f"{self.api.source}{operation.pointer}",
                    f"path parameter {{{name}}} is not declared; it becomes a required string argument"))
                params.append(Parameter(name, "path", {"type": "string"}, required=True, style="simple",
                                        explode=False))
        return params

    def _body(self, body: RequestBody, defs: dict[str, Any], seen: set[str], add: Any) -> BodyPlan | None:
        media = choose_media_type(body)
        if media is None:
            return None
        kind = body_kind(media.content_type)
        if kind == "multipart":
            media = replace(media, schema=self._shallow(media.schema))  # the builder reads part schemas directly
        schema = self._object_schema(media.schema) if kind in ("json", "form", "multipart") else None
        props = schema.get("properties") if schema else None
        if isinstance(props, Mapping) and props:
            wanted = {names.argument_name(p) for p in props}
            if not wanted & seen and len(wanted) == len(props):
                listed = schema.get("required")
                inner_required = set(listed) if isinstance(listed, list) else set()
                if body.required or not inner_required:
                    for prop, prop_schema in props.items():
                        if isinstance(prop_schema, Mapping) and self._read_only(prop_schema):
                            continue
                        converted = self.converter.input_schema(prop_schema, defs)
                        add(names.argument_name(prop), prop, "body-property", converted,
                            body.required and prop in inner_required)
                    return BodyPlan(media, kind, body.required, flattened=True)
        converted = self.converter.input_schema(media.schema, defs) if media.schema is not None else {}
        if kind in ("text", "binary") and not converted.get("type"):
            converted = {"type": "string", **converted}
        elif "type" not in converted and _object_part(converted) and (
                "properties" in converted or "allOf" in converted):
            converted = {"type": "object", **converted}  # Azure-style bodies leave out `type: object`
        if body.description and "description" not in converted:
            converted = {**converted, "description": body.description}
        add("request_body" if "body" in seen else "body", "body", "body", converted, body.required)
        return BodyPlan(media, kind, body.required, flattened=False)

    def _resolve(self, schema: Any, depth: int = 0) -> Any:
        while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and depth < 20:
            try:
                schema = pointer.resolve(self.api.document, schema["$ref"])
            except KeyError:
                return None
            depth += 1
        return schema

    def _shallow(self, schema: Any) -> Any:
        """`schema` with its top-level ref and its properties' refs followed (for multipart file detection)."""
        resolved = self._resolve(schema)
        if not isinstance(resolved, Mapping) or not isinstance(resolved.get("properties"), Mapping):
            return resolved
        props = {k: self._resolve(v) or {} for k, v in resolved["properties"].items()}
        return {**resolved, "properties": props}

    def _object_schema(self, schema: Any) -> Mapping[str, Any] | None:
        """The body schema when it is a plain object with properties (refs followed), else None."""
        schema = self._resolve(schema)
        if not isinstance(schema, Mapping):
            return None
        if any(k in schema for k in ("oneOf", "anyOf", "allOf", "not", "discriminator")):
            return None
        kind = schema.get("type", "object")
        if kind != "object" or not isinstance(schema.get("properties"), Mapping):
            return None
        return schema

    def _read_only(self, schema: Mapping[str, Any]) -> bool:
        resolved = self._resolve(schema)
        return isinstance(resolved, Mapping) and resolved.get("readOnly") is True

    def _response(self, operation: Operation, settings: Any, narrowing: tuple[str, ...]) -> ResponsePlan:
        response = settings.response
        select = response.select if response else None
        # A mapping `select` reshapes the answer, so the spec's response schema no longer describes it.
        output = None if select is not None else self.converter.output_schema(success_response_schema(operation))
        if output is not None and "type" not in output and (
                isinstance(output.get("properties"), Mapping)
                or (output.get("allOf") and all(_object_part(p) for p in output["allOf"]))):
            output = {"type": "object", **output}  # an object in all but name: promise it, so no wrapping is needed
        return ResponsePlan(
            output_schema=output,
            wrap=output is not None and output.get("type") != "object",
            select=select,
            max_items=response.max_items if response else None,
            summary=response.render_summary if response and response.summary else None,
            max_bytes=settings.max_response_bytes,
            max_text_bytes=settings.max_text_bytes,
            narrowing=narrowing,
            check=compile_validator(output) if output is not None else None,
        )


def _object_part(schema: Any) -> bool:
    """An allOf part that only ever adds object constraints (typed object, possibly nullable, or untyped)."""
    if not isinstance(schema, Mapping):
        return False
    kind = schema.get("type")
    if kind is None:
        if isinstance(schema.get("allOf"), list):
            return all(_object_part(p) for p in schema["allOf"])
        return not {"anyOf", "oneOf", "enum", "const", "items"} & schema.keys()
    kinds = set(kind) if isinstance(kind, list) else {kind}
    return "object" in kinds and kinds <= {"object", "null"}


_SCALAR_TYPES = frozenset({"string", "number", "integer", "boolean"})
_MAX_SHAPE_DEPTH = 16
_WIDGET_FOR_SHAPE: Mapping[str, WidgetKind] = {"objects": "table", "object": "card", "scalars": "list"}


def widget_for_output(schema: Any, resolve: Callable[[Any], Any] = lambda schema: schema) -> WidgetKind | None:
    """The built-in widget for a response schema: array of objects -> table, object -> card, array of
    scalars -> list; None when the schema is missing or its shape is mixed or unknown. `resolve` follows
    a `$ref` (the spec's own schemas are not self-contained)."""
    shape = _Shapes(resolve).shape(schema, 0)
    return _WIDGET_FOR_SHAPE[shape] if shape is not None else None


class _Shapes:
    """The shape of a response: "object", "objects" (array of objects), "scalars", or None (mixed, unknown)."""

    def __init__(self, resolve: Callable[[Any], Any]) -> None:
        self.resolve = resolve

    def shape(self, schema: Any, depth: int) -> str | None:
        schema = self.resolve(schema)
        if not isinstance(schema, Mapping) or depth > _MAX_SHAPE_DEPTH:
            return None
        alternatives = schema.get("anyOf") or schema.get("oneOf")
        if isinstance(alternatives, list) and "type" not in schema:
            shapes = {self.shape(alternative, depth + 1) for alternative in alternatives}
            return shapes.pop() if len(shapes) == 1 else None
        kinds = self.types(schema, depth)
        if kinds == {"object"}:
            return "object"
        if kinds == {"array"}:
            items = self.types(schema.get("items"), depth + 1)
            if items == {"object"}:
                return "objects"
            if items and items <= _SCALAR_TYPES:
                return "scalars"
        return None

    def types(self, schema: Any, depth: int) -> set[str]:
        """The JSON types a schema allows, null left out; empty when it cannot tell."""
        schema = self.resolve(schema)
        if not isinstance(schema, Mapping) or depth > _MAX_SHAPE_DEPTH:
            return set()
        kind = schema.get("type")
        if kind is not None:
            found = set(kind) if isinstance(kind, list) else {kind}
        elif "properties" in schema or "additionalProperties" in schema:
            found = {"object"}
        elif "items" in schema:
            found = {"array"}
        elif isinstance(schema.get("enum"), list) and schema["enum"]:
            found = {_json_type(value) for value in schema["enum"]}
        else:
            found = set()
        for part in schema.get("allOf", ()):
            narrowed = self.types(part, depth + 1)
            if narrowed:
                found = found & narrowed if found else narrowed
        alternatives = schema.get("anyOf") or schema.get("oneOf")
        if isinstance(alternatives, list) and not found:
            options = [self.types(alternative, depth + 1) for alternative in alternatives]
            found = set().union(*options) if options and all(options) else set()
        return found - {"null"}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "object" if isinstance(value, dict) else "array" if isinstance(value, list) else "string"


def legacy_output_schema(tool: ToolSpec) -> dict[str, Any] | None:
    """The output schema for clients of protocol 2025-11-25 and older: non-object results are wrapped."""
    schema = tool.response.output_schema
    if schema is None or not tool.response.wrap:
        return dict(schema) if schema is not None else None
    inner = copy.deepcopy(dict(schema))
    defs = inner.pop("$defs", None)
    wrapped: dict[str, Any] = {"type": "object", "properties": {"result": inner}, "required": ["result"]}
    if defs:
        wrapped["$defs"] = defs
    return wrapped
