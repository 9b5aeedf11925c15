"""Read a mapping file into a `ToolMapping`, reporting every problem at file:line.

Checks that need no spec happen here: the JSON Schema (unknown keys, types, patterns), JMESPath syntax
and function names in `response.select` / `response.summary`, contradictory parameter settings,
duplicate tool names, and widget settings (a template file exists, a row action names an action).
Checks against the spec (does this operation or parameter exist?) happen when the mapping is applied,
in `select.py`; checks against the served tools (a widget action's tool) when widgets are built.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jmespath
from jmespath import exceptions as jmespath_errors
from jmespath.functions import Functions
from jmespath.parser import ParsedResult

from gateway.errors import Diagnostic
from gateway.mapping.model import (
    DEFAULT_MAPPING_SOURCE,
    Defaults,
    ParameterSettings,
    ResponseSettings,
    Selection,
    SelectRule,
    ServerInfo,
    SummaryTemplate,
    ToolEntry,
    ToolMapping,
    ToolsetEntry,
    Toolsets,
    WidgetAction,
    WidgetSettings,
)
from gateway.yamlfile import FieldPath, Locator, config_error, did_you_mean, format_field, load_yaml, validate

_FUNCTIONS: Mapping[str, Any] = Functions().FUNCTION_TABLE
_QUOTES = "'\"`"


def load_mapping(path: str | Path) -> ToolMapping:
    """Load and check a mapping file; raises `ConfigError` listing every problem found."""
    data, locate = load_yaml(path)
    validate(data, locate, "mapping")
    problems: list[Diagnostic] = []
    mapping = _Reader(locate, problems).mapping(data)
    if problems:
        raise config_error(problems)
    return mapping


def default_mapping() -> ToolMapping:
    """The mapping used without a mapping file: every non-deprecated operation, default settings."""
    return ToolMapping(source=DEFAULT_MAPPING_SOURCE)


class _Reader:
    """Builds the model from schema-valid data, collecting the problems the schema cannot express."""

    def __init__(self, locate: Locator, problems: list[Diagnostic]) -> None:
        self.locate = locate
        self.problems = problems

    def mapping(self, data: Mapping[str, Any]) -> ToolMapping:
        select = data.get("select", {})
        tools = tuple(self.tool(key, entry) for key, entry in data.get("tools", {}).items())
        self.check_unique_names(tools)
        return ToolMapping(
            source=self.locate.file,
            version=data["version"],
            server=ServerInfo(**data.get("server", {})),  # keys are field names, checked by the schema
            defaults=Defaults(**data.get("defaults", {})),
            select=Selection(
                include=self.rules(select["include"], "include") if "include" in select else None,
                exclude=self.rules(select.get("exclude", []), "exclude"),
            ),
            tools=tools,
            toolsets=self.toolsets(data.get("toolsets", {})),
        )

    def toolsets(self, data: Mapping[str, Any]) -> Toolsets:
        entries = tuple(
            ToolsetEntry(
                key=key,
                where=self.locate(("toolsets", key)),
                include=self.rules(entry["include"], "include", ("toolsets", key)),
                exclude=self.rules(entry.get("exclude", []), "exclude", ("toolsets", key)),
                name=entry.get("name"),
                instructions=entry.get("instructions"),
                discovery=entry.get("discovery"),
            )
            for key, entry in data.items() if key != "from_tags"
        )
        if not data.get("from_tags", False):
            return Toolsets(entries)
        return Toolsets(entries, from_tags=True, where=self.locate(("toolsets", "from_tags")))

    def rules(self, rules: list[Mapping[str, str]], kind: str, within: FieldPath = ("select",)
              ) -> tuple[SelectRule, ...]:
        return tuple(
            SelectRule(
                where=self.locate((*within, kind, index)),
                operation_id=rule.get("operationId"),
                tag=rule.get("tag"),
                method=rule["method"].lower() if "method" in rule else None,
                path=rule.get("path"),
            )
            for index, rule in enumerate(rules)
        )

    def tool(self, key: str, entry: Mapping[str, Any]) -> ToolEntry:
        path: FieldPath = ("tools", key)
        return ToolEntry(
            key=key,
            where=self.locate(path),
            name=entry.get("name"),
            title=entry.get("title"),
            description=entry.get("description"),
            annotations=dict(entry.get("annotations", {})),
            timeout=entry.get("timeout"),
            max_response_bytes=entry.get("max_response_bytes"),
            scopes=tuple(entry["scopes"]) if "scopes" in entry else None,
            noauth=entry.get("noauth", False),
            parameters={
                name: self.parameter((*path, "parameters", name), settings)
                for name, settings in entry.get("parameters", {}).items()
            },
            response=self.response((*path, "response"), entry.get("response", {})),
            widget=self.widget((*path, "widget"), entry["widget"]) if "widget" in entry else None,
            invoking=entry.get("invoking"),
            invoked=entry.get("invoked"),
            visibility=tuple(entry["visibility"]) if "visibility" in entry else None,
            pinned=entry.get("pinned", False),
            keywords=tuple(entry.get("keywords", ())),
        )

    def parameter(self, path: FieldPath, settings: Mapping[str, Any]) -> ParameterSettings:
        if "fixed" in settings and "default" in settings:
            self.problem((*path, "default"), "give either `fixed` (always sent) or `default` (used when the model "
                         "gives no value), not both")
        if "fixed" in settings and settings.get("hidden") is False:
            self.problem((*path, "hidden"), "a fixed parameter is never shown to the model; remove `hidden: false`")
        return ParameterSettings(
            fixed=settings.get("fixed"),
            has_fixed="fixed" in settings,
            default=settings.get("default"),
            has_default="default" in settings,
            hidden=settings.get("hidden", False) or "fixed" in settings,
            description=settings.get("description"),
            allow_slash=settings.get("allow_slash", False),
            where=self.locate(path),
        )

    def response(self, path: FieldPath, settings: Mapping[str, Any]) -> ResponseSettings:
        select = summary = None
        if "select" in settings:
            try:
                select = compile_expression(settings["select"])
            except ValueError as exc:
                self.problem((*path, "select"), str(exc))
        if "summary" in settings:
            try:
                summary = compile_summary(settings["summary"])
            except ValueError as exc:
                self.problem((*path, "summary"), str(exc))
        return ResponseSettings(select=select, max_items=settings.get("max_items"), summary=summary)

    def widget(self, path: FieldPath, value: bool | str | Mapping[str, Any]) -> WidgetSettings:
        where = self.locate(path)
        if value is False:
            return WidgetSettings(where=where, enabled=False)
        if isinstance(value, str):
            return WidgetSettings(where=where, kind=value)  # type: ignore[arg-type]  # the schema allows table|card|list
        template = None
        if "template" in value:
            if "kind" in value:
                self.problem((*path, "kind"), "give `kind` (a built-in widget) or `template` (your own), not both")
            template = self.template((*path, "template"), value["template"])
        actions = tuple(self.action((*path, "actions", index), item)
                        for index, item in enumerate(value.get("actions", [])))
        return WidgetSettings(
            where=where,
            kind="custom" if template is not None else value.get("kind"),
            template=template,
            title=value.get("title"),
            columns=tuple(value["columns"]) if "columns" in value else None,
            page_size=value.get("page_size"),
            actions=actions,
            row_action=self.row_action((*path, "row_action"), value["row_action"], actions)
            if "row_action" in value else None,
            description=value.get("description"),
            prefers_border=value.get("prefers_border"),
            link_domains=tuple(value.get("link_domains", ())),
        )

    def template(self, path: FieldPath, value: str) -> Path:
        """The template's absolute path: relative paths are read from the mapping file's folder."""
        resolved = Path(os.path.normpath(Path(self.locate.file).absolute().parent / Path(value).expanduser()))
        if not resolved.is_file():
            self.problem(path, f"no such file: {resolved}")
        return resolved

    def action(self, path: FieldPath, item: Mapping[str, Any]) -> WidgetAction:
        if ("tool" in item) == ("prompt" in item):
            self.problem(path, "an action calls a `tool` or sends a `prompt`: give exactly one of them")
        if "arguments" in item and "tool" not in item:
            self.problem((*path, "arguments"), "`arguments` are for an action that calls a `tool`")
        return WidgetAction(label=item["label"], where=self.locate(path), tool=item.get("tool"),
                            prompt=item.get("prompt"), arguments=dict(item.get("arguments", {})))

    def row_action(self, path: FieldPath, value: int | str, actions: Sequence[WidgetAction]) -> int | None:
        """The index of the action a row triggers, given by index or by label."""
        labels = [action.label for action in actions]
        if isinstance(value, int):
            if value < len(actions):
                return value
            self.problem(path, f"there is no action {value}: the widget has {len(actions)} action"
                         f"{'' if len(actions) == 1 else 's'} (counted from 0)")
            return None
        if value in labels:
            return labels.index(value)
        self.problem(path, f"no action is labelled {value!r}{did_you_mean(value, labels)}; labels: "
                     f"{', '.join(map(repr, labels)) or 'none'}")
        return None

    def check_unique_names(self, tools: tuple[ToolEntry, ...]) -> None:
        first_use: dict[str, ToolEntry] = {}
        for entry in tools:
            if entry.name is None:
                continue
            earlier = first_use.setdefault(entry.name, entry)
            if earlier is not entry:
                self.problem(("tools", entry.key, "name"), f"tool name {entry.name!r} is already used by "
                             f"{format_field(('tools', earlier.key))} at {self.locate(('tools', earlier.key, 'name'))}")

    def problem(self, path: FieldPath, text: str) -> None:
        self.problems.append(self.locate.problem(path, text))


def compile_expression(text: str) -> ParsedResult:
    """Compile a JMESPath expression, rejecting unknown functions and wrong argument counts too.

    Raises ValueError with a plain-words message; jmespath itself only finds those at call time.
    """
    try:
        compiled = jmespath.compile(text)
    except jmespath_errors.JMESPathError as exc:
        raise ValueError(f"invalid JMESPath expression {text!r}: {_syntax_problem(exc)}") from None
    for name, arguments in _function_calls(compiled.parsed):
        problem = _call_problem(name, arguments)
        if problem:
            raise ValueError(f"invalid JMESPath expression {text!r}: {problem}")
    return compiled


def _syntax_problem(exc: jmespath_errors.JMESPathError) -> str:
    if isinstance(exc, jmespath_errors.IncompleteExpressionError):
        return "it ends too early"
    if isinstance(exc, jmespath_errors.LexerError):
        return f"{exc.message} at column {exc.lexer_position + 1}"
    if isinstance(exc, jmespath_errors.ParseError):
        return f"unexpected {exc.token_value!r} at column {exc.lex_position + 1}"
    if isinstance(exc, jmespath_errors.EmptyExpressionError):
        return "it is empty"
    return str(exc)


def _function_calls(node: Mapping[str, Any]) -> Iterator[tuple[str, int]]:
    if node.get("type") == "function_expression":
        yield node["value"], len(node["children"])
    for child in node.get("children", ()):
        if isinstance(child, Mapping):
            yield from _function_calls(child)


def _call_problem(name: str, arguments: int) -> str | None:
    if name not in _FUNCTIONS:
        return f"unknown function {name}(){did_you_mean(name, _FUNCTIONS)}"
    signature = _FUNCTIONS[name]["signature"]
    variadic = any(argument.get("variadic") for argument in signature)
    if arguments == len(signature) or (variadic and arguments >= len(signature)):
        return None
    expected = f"at least {len(signature)}" if variadic else str(len(signature))
    return f"{name}() takes {expected} argument{'s' if len(signature) != 1 else ''}, not {arguments}"


def compile_summary(text: str) -> SummaryTemplate:
    """Split a summary template into literal text and compiled expressions.

    `{expression}` is JMESPath over the shaped result; `{{` and `}}` are literal braces. Braces inside
    an expression (a multi-select hash) and inside its quoted strings are matched, so
    `{items[].{n: name}}` works; an expression that itself starts with `{` needs a space: `{ {a: b} }`.
    Raises ValueError naming the column of the problem.
    """
    parts: list[str | ParsedResult] = []
    literal = ""
    index = 0
    while index < len(text):
        if text.startswith(("{{", "}}"), index):
            literal += text[index]
            index += 2
        elif text[index] == "{":
            end = _closing_brace(text, index)
            expression = text[index + 1 : end]
            if not expression.strip():
                raise ValueError(f"empty {{}} at column {index + 1}; write {{{{ and }}}} for literal braces")
            if literal:
                parts.append(literal)
                literal = ""
            parts.append(compile_expression(expression.strip()))
            index = end + 1
        elif text[index] == "}":
            raise ValueError(f"unmatched '}}' at column {index + 1}; write '}}}}' for a literal brace")
        else:
            literal += text[index]
            index += 1
    if literal:
        parts.append(literal)
    return SummaryTemplate(source=text, parts=tuple(parts))


def _closing_brace(text: str, start: int) -> int:
    """Index of the `}` closing the `{` at `start`, skipping JMESPath string and literal quotes."""
    depth = 0
    index = start
    while index < len(text):
        char = text[index]
        if char in _QUOTES:
            index = _closing_quote(text, index)
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise ValueError(f"the '{{' at column {start + 1} is never closed; write '{{{{' for a literal brace")


def _closing_quote(text: str, start: int) -> int:
    quote = text[start]
    index = start + 1
    while index < len(text) and text[index] != quote:
        index += 2 if text[index] == "\\" else 1
    return index
