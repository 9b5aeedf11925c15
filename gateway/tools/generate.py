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

from gateway.calls.request import is_file_part
from gateway.calls.validate import compile_validator
from gateway.errors import ConfigError, Diagnostic
from gateway.mapping import SelectedOperation, WidgetKind, WidgetSettings
from gateway.mapping.select import describe as describe_operation
from gateway.media import essence, is_json, is_json_lines, is_xml
from gateway.spec import pointer
from gateway.spec.model import ApiModel, Encoding, MediaType, Operation, Parameter, RequestBody
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
from gateway.tools.xml import xml_plan

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


def success_media(operation: Operation) -> MediaType | None:
    """The media type of the first 2xx answer (200 before 201 before 2XX) the gateway reads as data: JSON
    first, then line-delimited JSON, then XML; None when that answer has none of them (or no schema)."""
    candidates = sorted(
        (r for r in operation.responses if r.status[:1] == "2"),
        key=lambda r: (r.status.upper() == "2XX", r.status),
    )
    for response in candidates:
        for test in (lambda t: body_kind(t) == "json", is_json_lines, is_xml):
            for media in response.content:
                if test(media.content_type) and media.schema is not None:
                    return media
        return None  # the preferred success answer is not data: promise nothing
    return None


def success_response_schema(operation: Operation) -> Mapping[str, Any] | None:
    """The JSON schema of the first 2xx answer, if it is JSON (one document) and has one."""
    media = success_media(operation)
    return media.schema if media is not None and body_kind(media.content_type) == "json" else None


def accept_header(operation: Operation) -> str:
    """The `Accept` of every call: the media types the success answers declare (JSON first, at most four);
    only when they declare none, those of the `default` answer; `application/json` when nothing is declared.
    Never a type the operation does not declare: a backend that negotiates would answer 406."""
    for statuses in (("2",), ("d",)):
        types_ = [m.content_type for r in operation.responses if r.status[:1].lower() in statuses for m in r.content]
        if types_:
            json_first = sorted(dict.fromkeys(types_), key=lambda t: (body_kind(t) != "json", not is_json_lines(t)))
            return ", ".join(json_first[:4])
    return "application/json"


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
        self._part_types: dict[str, str] = {}  # multipart file part -> its encoding's media type (per body)

    def generate(self, selected: list[SelectedOperation], taken: set[str] | None = None) -> list[ToolSpec]:
        raw = [self.prefix + (s.settings.name or names.operation_name(s.operation)) for s in selected]
        final = names.unique([names.tool_name(n) for n in raw], taken or ())
        tools = []
        for chosen, name in zip(selected, final, strict=True):
            try:
                tools.append(self.tool(chosen, name))
            except RecursionError:  # schemas nested hundreds of levels deep: no model could fill them anyway
                where = f"{self.api.source}{chosen.operation.pointer}"
                self.warnings.append(Diagnostic(where, f"{describe_operation(chosen.operation)}: its schemas are "
                                                "nested too deeply to convert; the operation is not served"))
        return tools

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
            greedy = target == "path" and (wire.endswith("+") or wire.startswith("*"))  # {proxy+}, {*path}
            bindings.append(ArgumentBinding(argument, target, wire, parameter,  # type: ignore[arg-type]
                                            allow_slash=bool(override and override.allow_slash) or greedy))
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
            filled = (target == "header" and wire.lower() == "accept") or (target == "query" and wire == "api-version")
            if filled and "default" in schema and argument not in defaults:
                defaults[argument] = schema["default"]  # sent when the model gives none (the gateway's Accept is not)
                is_required = False
            properties[argument] = schema
            if is_required:
                required.append(argument)

        path, fixed_query = split_qualifier(operation.path)
        aws_style = self._aws_style(operation)
        params = sorted(
            (self._aws_parameter(p, aws_style) for p in self._parameters(operation, path, fixed_query)
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
            if param.location == "query" and param.name == "api-version" and _is_string(schema) \
                    and not {"default", "enum", "const"} & schema.keys() and self.api.version.strip():
                schema = {**schema, "default": self.api.version.strip()}  # Azure: the version the spec describes
            required_param = param.required or param.location == "path"
            never_empty = param.location == "path" or (
                param.location in ("query", "header") and required_param and not param.allow_empty_value)
            if never_empty and _is_string(schema) and "minLength" not in schema:
                schema = {**schema, "minLength": 1}  # an empty value would collapse the path, or is never sent
            if param.description and "description" not in schema:
                schema = {**schema, "description": param.description}
            elif param.description and str(schema.get("description")).startswith("Values: "):
                schema = {**schema, "description": f"{param.description}\n\n{schema['description']}"}
            if param.location == "header" and param.name.lower() == "accept" and "default" not in schema \
                    and required_param and isinstance(schema.get("enum"), list) and schema["enum"]:
                schema = {**schema, "default": schema["enum"][0]}  # the spec's first choice, filled in
            add(argument, param.name, param.location, schema, required_param, param)

        body_plan = None
        if operation.request_body is not None:
            body_plan = self._body(operation.request_body, defs, seen_names, add, aws_style)

        for repair in self.converter.repairs():
            self.warnings.append(Diagnostic(f"{self.api.source}{operation.pointer}",
                                            f"tool {name!r}: {repair}, so that valid values pass"))
        input_schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            input_schema["required"] = required
        if defs:
            input_schema["$defs"] = defs
        method = operation.method.upper()
        accept = accept_header(operation)  # a spec-declared Accept argument replaces it, call by call
        request = RequestPlan(method, path, tuple(bindings), body_plan, fixed_query, constants, defaults, accept)
        chooses = any(b.target == "header" and b.wire_name.lower() == "accept" and b.argument in properties
                      for b in bindings)
        response = self._response(operation, settings, narrowing_arguments(bindings), chooses)
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
            file_params=tuple(name for name, prop in properties.items()
                              if isinstance(prop, Mapping) and prop.get("contentEncoding") == "base64"),
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
            link_domains=settings.link_domains,
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

    def _aws_style(self, operation: Operation) -> str | None:
        """`x-aws-query` or `x-aws-ec2` when the spec says the API speaks an AWS query protocol
        (`x-aws-protocol: query|ec2` on the operation or in `info`), else None."""
        info = self.api.document.get("info")
        declared = operation.extensions.get("x-aws-protocol") or (
            info.get("x-aws-protocol") if isinstance(info, Mapping) else None)
        return {"query": "x-aws-query", "ec2": "x-aws-ec2"}.get(str(declared).lower()) if declared else None

    def _aws_parameter(self, param: Parameter, style: str | None) -> Parameter:
        """A query parameter holding a list or a structure, flattened the AWS way in an AWS query API."""
        if style is None or param.location != "query" or param.media_type is not None:
            return param
        schema = self._resolve(param.schema)
        kind = schema.get("type") if isinstance(schema, Mapping) else None
        if kind in ("array", "object") or (isinstance(schema, Mapping) and "properties" in schema):
            return replace(param, style=style, explode=True)
        return param

    def _body(self, body: RequestBody, defs: dict[str, Any], seen: set[str], add: Any,
              aws_style: str | None = None) -> BodyPlan | None:
        media = choose_media_type(body)
        if media is None:
            return None
        kind = body_kind(media.content_type)
        if kind in ("form", "multipart"):
            media = replace(media, schema=self._shallow(media.schema))  # the builder reads part schemas directly
        if kind == "form" and aws_style is not None:
            flattened_encoding = {name: replace(media.encoding.get(name) or Encoding(), style=aws_style)
                                  for name, _ in _top_properties(media.schema, self._resolve)}
            media = replace(media, encoding={**media.encoding, **flattened_encoding})
        self._part_types: dict[str, str] = {}
        files = self._file_parts(media) if kind == "multipart" else {}
        required_arrays = self._required_arrays(media.schema) if kind in ("form", "multipart") else frozenset()
        extra: dict[str, Any] = {
            "xml": xml_plan(media.schema, self._resolve) if kind == "text" and is_xml(media.content_type) else None,
            "required_arrays": required_arrays,
        }
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
                        converted = self._part_schema(self.converter.input_schema(prop_schema, defs), prop, files,
                                                      required_arrays)
                        add(names.argument_name(prop), prop, "body-property", converted,
                            body.required and prop in inner_required)
                    return BodyPlan(media, kind, body.required, flattened=True, base64=files, **extra)
        converted = self.converter.input_schema(media.schema, defs) if media.schema is not None else {}
        if kind == "binary" and _binary_body(converted):
            files = {"": _byte_lengths(converted)}
            converted = _base64_schema(converted, media.content_type)
        elif kind in ("text", "binary") and not converted.get("type"):
            converted = {"type": "string", **converted}
        elif "type" not in converted and _object_part(converted) and (
                "properties" in converted or "allOf" in converted):
            converted = {"type": "object", **converted}  # Azure-style bodies leave out `type: object`
        if files.keys() - {""} or required_arrays:
            converted = self._nested_parts(converted, files, required_arrays)
        if body.description and "description" not in converted:
            converted = {**converted, "description": body.description}
        add("request_body" if "body" in seen else "body", "body", "body", converted, body.required)
        return BodyPlan(media, kind, body.required, flattened=False, base64=files, **extra)

    def _file_parts(self, media: MediaType) -> dict[str, tuple[int | None, int | None]]:
        """Multipart properties that are files (each taken as base64), with the byte lengths the spec allows."""
        found: dict[str, tuple[int | None, int | None]] = {}
        for name, schema in _top_properties(media.schema, self._resolve):
            encoding = media.encoding.get(name)
            declared = encoding.content_type.split(",", 1)[0].strip() if encoding and encoding.content_type else None
            item = self._resolve(schema.get("items")) if schema.get("type") == "array" else schema
            if not isinstance(item, Mapping) or item.get("format") in ("byte", "base64"):
                continue  # base64 text by definition (`byte`; OpenAPI 3.0's `base64` parts): sent as the text it is
            if is_file_part(item, declared) and item.get("type") in (None, "string", "file"):
                found[name] = _byte_lengths(item)
                if declared is not None and "*" not in declared:
                    self._part_types[name] = declared
        return found

    def _required_arrays(self, schema: Any) -> frozenset[str]:
        """Required array properties of a form or multipart body (in any branch): an empty one would vanish."""
        found: set[str] = set()
        for part in _branches(self._resolve(schema), self._resolve):
            required = part.get("required") if isinstance(part.get("required"), list) else []
            properties = part.get("properties")
            for name, prop in (properties.items() if isinstance(properties, Mapping) else ()):
                prop = self._resolve(prop)
                if name in required and isinstance(prop, Mapping) and prop.get("type") == "array":
                    found.add(name)
        return frozenset(found)

    def _part_schema(self, converted: dict[str, Any], name: str, files: Mapping[str, Any],
                     required_arrays: frozenset[str]) -> dict[str, Any]:
        """A body property's argument schema: base64 for file parts, `minItems: 1` for required arrays."""
        if name in files:
            media_type = self._part_types.get(name)
            if converted.get("type") == "array" and isinstance(converted.get("items"), Mapping):
                converted = {**converted, "items": _base64_schema(converted["items"], media_type)}
            else:
                converted = _base64_schema(converted, media_type)
        if name in required_arrays and converted.get("type") == "array" and "minItems" not in converted:
            converted = {**converted, "minItems": 1}
        return converted

    def _nested_parts(self, converted: dict[str, Any], files: Mapping[str, Any],
                      required_arrays: frozenset[str]) -> dict[str, Any]:
        """`_part_schema` applied to the properties of a whole-body argument (and of its anyOf/allOf branches)."""
        out = dict(converted)
        if isinstance(out.get("properties"), Mapping):
            required = set(out.get("required") or ())
            out["properties"] = {
                name: self._part_schema(dict(prop), name, files, required_arrays & required)
                if isinstance(prop, Mapping) else prop
                for name, prop in out["properties"].items()}
        for key in ("anyOf", "allOf"):
            if isinstance(out.get(key), list):
                out[key] = [self._nested_parts(branch, files, required_arrays) if isinstance(branch, dict) else branch
                            for branch in out[key]]
        return out

    def _resolve(self, schema: Any, depth: int = 0) -> Any:
        while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and depth < 20:
            try:
                schema = pointer.resolve(self.api.document, schema["$ref"])
            except KeyError:
                return None
            depth += 1
        return schema

    def _shallow(self, schema: Any, depth: int = 0) -> Any:
        """`schema` with its top-level ref, its properties' refs (and their items') and its branches followed:
        the request builder reads part schemas (files, integers, XML) without the document at hand."""
        resolved = self._resolve(schema)
        if not isinstance(resolved, Mapping) or depth > 4:
            return resolved
        out = dict(resolved)
        if isinstance(resolved.get("properties"), Mapping):
            props = {}
            for key, value in resolved["properties"].items():
                value = self._resolve(value) or {}
                if isinstance(value, Mapping) and isinstance(value.get("items"), Mapping):
                    value = {**value, "items": self._resolve(value["items"]) or {}}
                props[key] = value
            out["properties"] = props
        for key in ("allOf", "anyOf", "oneOf"):
            if isinstance(resolved.get(key), list):
                out[key] = [self._shallow(branch, depth + 1) for branch in resolved[key]]
        return out

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

    def _response(self, operation: Operation, settings: Any, narrowing: tuple[str, ...],
                  accept_argument: bool = False) -> ResponsePlan:
        response = settings.response
        select = response.select if response else None
        # A mapping `select` reshapes the answer, so the spec's response schema no longer describes it.
        media = success_media(operation)
        if accept_argument and any(body_kind(m.content_type) != "json" for r in operation.responses
                                   if r.status[:1] == "2" for m in r.content):
            media = None  # the model's Accept may choose an answer that is not JSON: promise no shape
        output = None
        if select is None and media is not None and body_kind(media.content_type) == "json":
            output = self.converter.output_schema(media.schema)
        elif select is None and media is not None and is_json_lines(media.content_type):
            records = self.converter.output_schema(media.schema)  # the schema of one record
            output = {"type": "array", "items": records} if records is not None else {"type": "array"}
        read_xml = xml_plan(media.schema, self._resolve) if media is not None and is_xml(media.content_type) else None
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
            xml=read_xml if read_xml is not None and read_xml.kind == "object" else None,
        )


def _top_properties(schema: Any, resolve: Callable[[Any], Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(name, resolved schema) of every top-level property of a body, in any allOf/anyOf/oneOf branch."""
    found = []
    for part in _branches(resolve(schema), resolve):
        for name, prop in (part.get("properties") or {}).items():
            prop = resolve(prop)
            if isinstance(prop, Mapping):
                found.append((str(name), prop))
    return found


def _branches(schema: Any, resolve: Callable[[Any], Any], depth: int = 0) -> list[Mapping[str, Any]]:
    if not isinstance(schema, Mapping) or depth > 4:
        return []
    found = [schema]
    for key in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(key) or ():
            found += _branches(resolve(branch), resolve, depth + 1)
    return found


def _binary_body(converted: Mapping[str, Any]) -> bool:
    """Whether a body of a binary media type is bytes (a string or no schema), not a vendor-typed object."""
    kind = converted.get("type")
    return kind in (None, "string") and not {"properties", "items", "anyOf", "allOf"} & converted.keys()


def _byte_lengths(schema: Mapping[str, Any]) -> tuple[int | None, int | None]:
    low, high = schema.get("minLength"), schema.get("maxLength")
    return (low if isinstance(low, int) else None, high if isinstance(high, int) else None)


BASE64_PATTERN = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
"""Exactly the strings that are standard, padded base64 (RFC 4648 section 4)."""


def _base64_schema(schema: Mapping[str, Any], media_type: str | None) -> dict[str, Any]:
    """The argument schema of binary content: a base64 string (JSON Schema `contentEncoding`), its media type
    when one is known. Length limits count the decoded bytes, so the request builder checks them instead."""
    out = {k: v for k, v in schema.items() if k not in ("format", "minLength", "maxLength", "pattern", "enum")}
    out["type"] = "string"
    out["contentEncoding"] = "base64"
    out["pattern"] = BASE64_PATTERN  # validators treat contentEncoding as an annotation: this one they check
    declared = media_type or schema.get("contentMediaType")
    if isinstance(declared, str) and "*" not in declared:
        out["contentMediaType"] = essence(declared)
    note = "Binary content, base64-encoded."
    description = out.get("description")
    out["description"] = f"{description} ({note})" if isinstance(description, str) and description else note
    return out


def _is_string(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "string" or (isinstance(kind, list) and "string" in kind and "null" not in kind)


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
            found = {k for k in (kind if isinstance(kind, list) else [kind]) if isinstance(k, str)}
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
