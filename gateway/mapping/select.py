"""Apply a mapping to an API: which operations become tools, each with its merged settings.

This is where the mapping meets the spec, so this is where references are checked: a `tools:` key must
name exactly one operation, and a parameter setting must name a parameter the operation has. Those are
errors (with the line and close names to try). Rules that select nothing and entries for operations
that are not selected are only warnings: the mapping still works, but probably not as intended.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import Diagnostic
from gateway.mapping.model import SelectedOperation, SelectRule, ToolEntry, ToolMapping, ToolSettings
from gateway.spec.model import ApiModel, Operation
from gateway.spec.pointer import resolve
from gateway.yamlfile import FieldPath, config_error, did_you_mean, format_field

_METHOD_KEY = re.compile(r"^(get|put|post|delete|options|head|patch|trace)\s+(\S.*)$", re.IGNORECASE)
_MAX_REF_DEPTH = 32


def select_operations(api: ApiModel, mapping: ToolMapping) -> tuple[list[SelectedOperation], list[Diagnostic]]:
    """The operations to serve, in spec order, with their settings; plus warnings about the mapping.

    Raises `ConfigError` (every problem, each at its line) when a `tools:` entry names no operation, or
    several, or configures a parameter the operation does not have.
    """
    problems: list[Diagnostic] = []
    entries = _entries_by_operation(api, mapping.tools, problems)
    for index, entry in entries.items():
        _check_parameters(api, api.operations[index], entry, problems)
    if problems:
        raise config_error(problems)
    selection = _Selection(api.operations, mapping)
    warnings = [*selection.warnings(), *_unselected_entries(api.operations, entries, selection)]
    selected = [
        SelectedOperation(operation, _settings(mapping, entries.get(index), selection.where(index)))
        for index, operation in enumerate(api.operations)
        if selection.chosen[index]
    ]
    if not selected:
        warnings.append(Diagnostic(mapping.source, "no operation is selected: this API would have no tools"))
    return selected, warnings


def describe(operation: Operation) -> str:
    """`listPets (GET /pets)`, or `GET /pets` for an operation without an operationId."""
    route = f"{operation.method.upper()} {operation.path}"
    return f"{operation.operation_id} ({route})" if operation.operation_id else route


def _problem(where: str, path: FieldPath, text: str, severity: str = "error") -> Diagnostic:
    return Diagnostic(where, f"{format_field(path)}: {text}", severity)


def _entries_by_operation(
    api: ApiModel, entries: Sequence[ToolEntry], problems: list[Diagnostic]
) -> dict[int, ToolEntry]:
    """Index of each configured operation in `api.operations` -> its entry."""
    found: dict[int, ToolEntry] = {}
    for entry in entries:
        indices = _operations_for_key(api.operations, entry.key)
        path = ("tools", entry.key)
        if not indices:
            problems.append(_problem(entry.where, path, _no_operation(api.operations, entry.key)))
        elif len(indices) > 1:
            routes = [f"{api.operations[i].method.upper()} {api.operations[i].path}" for i in indices]
            problems.append(_problem(entry.where, path, f"operationId {entry.key!r} is used by {len(indices)} "
                                     f"operations ({', '.join(routes)}); key the entry by method and path instead, "
                                     f"e.g. {routes[0]!r}"))
        elif indices[0] in found:
            earlier = found[indices[0]]
            problems.append(_problem(entry.where, path, f"configures {describe(api.operations[indices[0]])}, which "
                                     f"{format_field(('tools', earlier.key))} at {earlier.where} already configures"))
        else:
            found[indices[0]] = entry
    return found


def _operations_for_key(operations: Sequence[Operation], key: str) -> list[int]:
    """`"GET /pets/{petId}"` matches method and path template exactly; anything else is an operationId."""
    route = _METHOD_KEY.match(key.strip())
    if route:
        method, path = route.group(1).lower(), route.group(2)
        by_route = [i for i, op in enumerate(operations) if op.method == method and op.path == path]
        if by_route:
            return by_route
    return [i for i, op in enumerate(operations) if op.operation_id == key]


def _no_operation(operations: Sequence[Operation], key: str) -> str:
    if _METHOD_KEY.match(key.strip()):
        routes = [f"{op.method.upper()} {op.path}" for op in operations]
        return f"the spec has no operation {key!r}{did_you_mean(key, routes)}"
    ids = [op.operation_id for op in operations if op.operation_id]
    hint = did_you_mean(key, ids) or " (keys are operationIds, or \"METHOD /path\" as written in the spec)"
    return f"no operation has operationId {key!r}{hint}"


@dataclass(frozen=True, slots=True)
class _Target:
    """Something a parameter setting can apply to: a parameter in one location, or a body property."""

    location: str  # path, query, header, cookie, or body
    required: bool


def _check_parameters(api: ApiModel, operation: Operation, entry: ToolEntry, problems: list[Diagnostic]) -> None:
    targets, open_body = _parameter_targets(api, operation)
    for name, settings in entry.parameters.items():
        path = ("tools", entry.key, "parameters", name)
        found = targets.get(name, [])
        if not found and not open_body:
            names = ", ".join(targets) or "none"
            problems.append(_problem(settings.where, path, f"{describe(operation)} has no parameter {name!r}"
                                     f"{did_you_mean(name, targets)}; its parameters: {names}"))
            continue
        other_kinds = sorted({target.location for target in found} - {"path"}) if found else ["body"]
        if settings.allow_slash and other_kinds:
            problems.append(_problem(settings.where, (*path, "allow_slash"), f"only path parameters take allow_slash; "
                                     f"{name!r} is a {other_kinds[0]} parameter"))
        hides_required = settings.hidden and not (settings.has_fixed or settings.has_default)
        if hides_required and any(target.required for target in found):
            problems.append(_problem(settings.where, (*path, "hidden"), f"{name!r} is required, so hiding it needs "
                                     "a `default` (or `fixed`) value to send"))


def _parameter_targets(api: ApiModel, operation: Operation) -> tuple[dict[str, list[_Target]], bool]:
    """Names a parameter setting may use, and whether the body accepts names not known here."""
    targets: dict[str, list[_Target]] = {}
    for parameter in operation.parameters:
        targets.setdefault(parameter.name, []).append(_Target(parameter.location, parameter.required))
    open_body = False
    body = operation.request_body
    for media in body.content if body else ():
        if media.schema is None:
            continue
        shape = _ObjectShape()
        shape.read(api.document, media.schema, 0)
        open_body = open_body or shape.open
        for name in shape.properties:
            targets.setdefault(name, []).append(_Target("body", name in shape.required))
    return targets, open_body


@dataclass(slots=True)
class _ObjectShape:
    """The top-level properties of a body schema, through `$ref` and `allOf`.

    `open` means "cannot tell": alternatives (`oneOf`/`anyOf`), extra properties allowed explicitly, an
    object schema without `properties`, or an unresolvable reference. Then unknown names are accepted.
    """

    properties: list[str] = field(default_factory=list)
    required: set[str] = field(default_factory=set)
    open: bool = False

    def read(self, document: Mapping[str, Any], schema: Any, depth: int) -> None:
        while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and depth < _MAX_REF_DEPTH:
            try:
                schema = resolve(document, schema["$ref"])
            except KeyError:
                self.open = True
                return
            depth += 1
        if not isinstance(schema, Mapping) or depth >= _MAX_REF_DEPTH:
            self.open = True
            return
        for member in schema.get("allOf", ()):
            self.read(document, member, depth + 1)
        kind = schema.get("type")
        may_be_object = kind in (None, "object") or (isinstance(kind, list) and "object" in kind)
        extra = schema.get("additionalProperties")
        if (
            any(key in schema for key in ("oneOf", "anyOf", "patternProperties"))
            or (extra is not None and extra is not False)
            or (may_be_object and "properties" not in schema and "allOf" not in schema)
        ):
            self.open = True
        properties = schema.get("properties")
        if isinstance(properties, Mapping):
            self.properties.extend(name for name in properties if name not in self.properties)
        required = schema.get("required")
        if isinstance(required, list):
            self.required.update(name for name in required if isinstance(name, str))


class _Selection:
    """Runs the include/exclude rules over every operation, remembering which rule did what."""

    def __init__(self, operations: Sequence[Operation], mapping: ToolMapping) -> None:
        self.operations = operations
        self.mapping = mapping
        self.matched: dict[SelectRule, list[int]] = {}
        self.included_by: dict[int, SelectRule] = {}
        self.excluded_by: dict[int, SelectRule] = {}
        self.chosen = [self._choose(index, operation) for index, operation in enumerate(operations)]

    def where(self, index: int) -> str:
        """The line that selected an operation: its first matching include rule, else the mapping itself."""
        rule = self.included_by.get(index)
        return rule.where if rule is not None else self.mapping.source

    def _choose(self, index: int, operation: Operation) -> bool:
        include = self.mapping.select.include
        allow_deprecated = self.mapping.defaults.include_deprecated or not operation.deprecated
        if include is None:
            chosen = allow_deprecated
        else:
            hits = self._hits(include, index, operation)
            chosen = bool(hits) and (allow_deprecated or any(rule.operation_id is not None for rule in hits))
            if hits:
                self.included_by[index] = hits[0]
        exclusions = self._hits(self.mapping.select.exclude, index, operation)
        if chosen and exclusions:
            self.excluded_by[index] = exclusions[0]
            chosen = False
        return chosen

    def _hits(self, rules: Sequence[SelectRule], index: int, operation: Operation) -> list[SelectRule]:
        hits = [rule for rule in rules if rule.matches(operation)]
        for rule in hits:
            self.matched.setdefault(rule, []).append(index)
        return hits

    def warnings(self) -> list[Diagnostic]:
        found: list[Diagnostic] = []
        for kind, rules in (("include", self.mapping.select.include or ()), ("exclude", self.mapping.select.exclude)):
            for position, rule in enumerate(rules):
                path = ("select", kind, position)
                matched = self.matched.get(rule, [])
                if not matched:
                    ids = [op.operation_id for op in self.operations if op.operation_id]
                    hint = did_you_mean(rule.operation_id, ids) if rule.operation_id else ""
                    found.append(_problem(rule.where, path, f"matches no operation{hint}", "warning"))
                elif kind == "include" and all(self.operations[i].deprecated for i in matched) and not any(
                    self.chosen[i] or i in self.excluded_by for i in matched
                ):
                    found.append(_problem(rule.where, path, f"matches only deprecated operations ({len(matched)}), "
                                          "which are skipped; set defaults.include_deprecated: true or name them "
                                          "by operationId", "warning"))
        return found


def _unselected_entries(
    operations: Sequence[Operation], entries: Mapping[int, ToolEntry], selection: _Selection
) -> list[Diagnostic]:
    found = []
    for index, entry in entries.items():
        if selection.chosen[index]:
            continue
        operation = operations[index]
        rule = selection.excluded_by.get(index)
        if rule is not None:
            why = f"it is excluded by the rule at {rule.where}"
        elif operation.deprecated and not selection.mapping.defaults.include_deprecated:
            why = "it is deprecated (name it in an operationId rule, or set defaults.include_deprecated: true)"
        else:
            why = "no select.include rule matches it"
        found.append(_problem(entry.where, ("tools", entry.key), f"configures {describe(operation)}, which is not "
                              f"selected: {why}", "warning"))
    return found


def _settings(mapping: ToolMapping, entry: ToolEntry | None, where: str) -> ToolSettings:
    defaults = mapping.defaults
    if entry is None:
        return ToolSettings(where=where, timeout=defaults.timeout, max_response_bytes=defaults.max_response_bytes,
                            max_text_bytes=defaults.max_text_bytes)
    return ToolSettings(
        where=entry.where,
        name=entry.name,
        title=entry.title,
        description=entry.description,
        annotations=entry.annotations,
        timeout=entry.timeout if entry.timeout is not None else defaults.timeout,
        max_response_bytes=entry.max_response_bytes or defaults.max_response_bytes,
        scopes=entry.scopes,
        noauth=entry.noauth,
        parameters=entry.parameters,
        response=entry.response,
        widget=entry.widget,
        invoking=entry.invoking,
        invoked=entry.invoked,
        visibility=entry.visibility,
        pinned=entry.pinned,
        keywords=entry.keywords,
        max_text_bytes=defaults.max_text_bytes,
    )
