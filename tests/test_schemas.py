"""OpenAPI schema -> JSON Schema 2020-12 conversion (`gateway.tools.schemas`).

Every produced schema is checked with both validators the gateway and its clients use: the Python
`jsonschema` metaschema check (with its regex format check) and `jsonschema_rs` compilation.
"""

from __future__ import annotations

import datetime
import functools
import json
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.spec import load_spec
from gateway.spec.pointer import resolve
from gateway.tools.schemas import DEFS_PREFIX, SchemaConverter
from tests.conftest import SHARED_SPECS, manifest

# -- helpers -----------------------------------------------------------------------------------------


def check(schema: Mapping[str, Any]) -> None:
    """`schema` is valid 2020-12 for both validators."""
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema_rs.validator_for(schema)


def accepts(schema: Mapping[str, Any], instance: Any) -> bool:
    """Whether `instance` validates; both validators must agree."""
    check(schema)
    python = jsonschema.Draft202012Validator(schema).is_valid(instance)
    rust = jsonschema_rs.validator_for(schema).is_valid(instance)
    assert python == rust, (schema, instance)
    return rust


def components(**schemas: Any) -> dict[str, Any]:
    return {"openapi": "3.0.3", "components": {"schemas": schemas}}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def to_input(schema: Any, document: Mapping[str, Any] | None = None, dialect: str = "openapi-3.0") -> dict[str, Any]:
    """The input schema as a tool would carry it: `$defs` at its root."""
    defs: dict[str, Any] = {}
    converted = SchemaConverter(document or {}, dialect).input_schema(schema, defs)  # type: ignore[arg-type]
    if defs:
        converted["$defs"] = defs
    check(converted)
    return converted


def to_output(schema: Any, document: Mapping[str, Any] | None = None,
              dialect: str = "openapi-3.0") -> dict[str, Any] | None:
    converted = SchemaConverter(document or {}, dialect).output_schema(schema)  # type: ignore[arg-type]
    if converted is not None:
        check(converted)
        assert "$ref" not in json.dumps(converted)
    return converted


def nodes(schema: Any) -> int:
    if isinstance(schema, dict):
        return 1 + sum(nodes(v) for v in schema.values())
    if isinstance(schema, list):
        return sum(nodes(v) for v in schema)
    return 0


# -- input direction -----------------------------------------------------------------------------------


def test_nullable_30_becomes_a_type_array() -> None:
    schema = to_input({"type": "string", "nullable": True, "maxLength": 3})
    assert schema["type"] == ["string", "null"]
    assert "nullable" not in schema
    assert accepts(schema, None) and accepts(schema, "abc") and not accepts(schema, "abcd")


def test_nullable_enum_gains_null() -> None:
    schema = to_input({"type": "string", "enum": ["a", "b"], "nullable": True})
    assert accepts(schema, None) and accepts(schema, "a") and not accepts(schema, "c")


def test_nullable_ref_and_composition() -> None:
    document = components(Pet={"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}})
    inlined = to_input({**ref("Pet"), "nullable": True}, document)
    assert inlined["type"] == ["object", "null"]
    composed = to_input({"allOf": [ref("Pet")], "nullable": True, "description": "d"}, document)
    assert composed["description"] == "d" and {"type": "null"} in composed["anyOf"]
    for schema in (inlined, composed):
        assert accepts(schema, None) and accepts(schema, {"name": "x"}) and not accepts(schema, {})


def test_nullable_shared_ref_uses_anyof() -> None:
    document = components(Node={"type": "object", "properties": {"next": {**ref("Node"), "nullable": True}}})
    schema = to_input(ref("Node"), document)
    assert schema["properties"]["next"] == {"anyOf": [{"$ref": DEFS_PREFIX + "Node"}, {"type": "null"}]}
    assert accepts(schema, {"next": {"next": None}}) and not accepts(schema, {"next": 1})


def test_swagger_x_nullable() -> None:
    schema = to_input({"type": "integer", "x-nullable": True})
    assert accepts(schema, None) and accepts(schema, 3) and not accepts(schema, "3")
    assert "x-nullable" not in schema


def test_31_type_arrays_and_const_pass_through() -> None:
    schema = to_input({"type": ["string", "null"], "const": "x", "examples": ["x"]}, dialect="openapi-3.1")
    assert schema == {"type": ["string", "null"], "const": "x", "examples": ["x"]}


def test_31_nullable_is_honoured_too() -> None:
    """Specs converted to 3.1 (OpenAI's among them) still say `nullable: true`."""
    assert accepts(to_input({"type": "integer", "nullable": True}, dialect="openapi-3.1"), None)


def test_ref_siblings_apply_in_31_only() -> None:
    document = components(Name={"type": "string"})
    sibling = {**ref("Name"), "maxLength": 2, "description": "short"}
    in_31 = to_input({"type": "object", "properties": {"n": sibling}}, document, "openapi-3.1")
    assert not accepts(in_31, {"n": "abc"}) and accepts(in_31, {"n": "ab"})
    in_30 = to_input({"type": "object", "properties": {"n": sibling}}, document)
    assert accepts(in_30, {"n": "abc"}) and not accepts(in_30, {"n": 1})
    assert in_30["properties"]["n"]["description"] == "short"


def test_read_only_properties_are_left_out_of_inputs() -> None:
    document = components(Id={"type": "integer", "readOnly": True})
    schema = to_input({
        "type": "object",
        "required": ["id", "created", "name"],
        "additionalProperties": False,
        "properties": {"id": ref("Id"), "created": {"type": "string", "readOnly": True}, "name": {"type": "string"}},
    }, document)
    assert set(schema["properties"]) == {"name"}
    assert schema["required"] == ["name"]
    assert accepts(schema, {"name": "x"})


def test_write_only_properties_are_left_out_of_outputs() -> None:
    document = components(Secret={"type": "string", "writeOnly": True})
    schema = {"type": "object", "properties": {"password": ref("Secret"),
                                               "token": {"type": "string", "writeOnly": True},
                                               "id": {"type": "integer", "readOnly": True}}}
    assert set(to_output(schema, document)["properties"]) == {"id"}  # type: ignore[index]
    assert set(to_input(schema, document)["properties"]) == {"password", "token"}


def test_recursive_schema_goes_to_defs_and_validates_recursive_instances() -> None:
    document = components(Node={
        "type": "object",
        "required": ["value"],
        "properties": {"value": {"type": "integer"}, "children": {"type": "array", "items": ref("Node")}},
    })
    schema = to_input(ref("Node"), document)
    assert schema["properties"]["value"] == {"type": "integer"}  # the root is inlined
    assert schema["properties"]["children"]["items"] == {"$ref": DEFS_PREFIX + "Node"}
    assert set(schema["$defs"]) == {"Node"}
    assert accepts(schema, {"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]})
    assert not accepts(schema, {"value": 1, "children": [{"value": 2, "children": [{"value": "x"}]}]})


def test_mutual_recursion_and_defs_shared_between_calls() -> None:
    document = components(
        A={"type": "object", "properties": {"b": ref("B")}},
        B={"type": "object", "properties": {"a": ref("A"), "n": {"type": "integer"}}},
    )
    converter = SchemaConverter(document, "openapi-3.0")
    defs: dict[str, Any] = {}
    tool = {"type": "object", "properties": {"x": converter.input_schema(ref("A"), defs),
                                             "y": converter.input_schema(ref("B"), defs)}, "$defs": defs}
    assert set(defs) == {"A", "B"}
    assert accepts(tool, {"x": {"b": {"a": {"b": {"n": 1}}}}, "y": {"a": {}}})
    assert not accepts(tool, {"x": {"b": {"a": {"b": {"n": "1"}}}}})


def test_vacuous_cycles_terminate_and_validate() -> None:
    """`A: {allOf: [A]}` constrains nothing; a validator following it would never stop."""
    document = components(A={"allOf": [ref("B")]}, B={"anyOf": [ref("A"), {"type": "string"}]}, C=ref("C"))
    for name in ("A", "B", "C"):
        assert accepts(to_input(ref(name), document), 1)
        assert to_output(ref(name), document) is None


def test_unresolvable_refs_accept_anything() -> None:
    for broken in ({"$ref": "#/components/schemas/Missing"}, {"$ref": "Pet"}, {"$ref": "other.yaml#/Pet"}):
        assert to_input({"type": "object", "properties": {"p": broken}})["properties"]["p"] == {}
        assert to_output(broken) is None


def test_large_components_are_shared_but_the_root_is_inlined() -> None:
    big = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(300)}}
    document = components(Big=big)
    schema = to_input({"type": "object", "properties": {"a": ref("Big"), "b": ref("Big")}}, document)
    assert schema["properties"]["a"] == schema["properties"]["b"] == {"$ref": DEFS_PREFIX + "Big"}
    assert len(schema["$defs"]["Big"]["properties"]) == 300
    assert len(to_input(ref("Big"), document)["properties"]) == 300


def test_deep_chains_of_components_stay_bounded() -> None:
    chain = {f"S{i}": {"type": "object", "properties": {"next": ref(f"S{i + 1}")}} for i in range(400)}
    document = components(**chain, S400={"type": "string"})
    schema = to_input(ref("S0"), document)
    instance: Any = "end"
    for _ in range(400):
        instance = {"next": instance}
    assert accepts(schema, instance)
    assert not accepts(schema, json.loads(json.dumps(instance).replace('"end"', "1")))


def test_defs_names_are_readable_sanitised_and_unique() -> None:
    document = {"components": {"schemas": {"Pet": {"type": "object", "properties": {"kids": {"items": ref("Pet")}}}}},
                "x-gateway-bundle": {"a.json": {"Pet": {"type": "object", "properties": {"p": {
                    "$ref": "#/x-gateway-bundle/a.json/Pet"}}}, "My Pet~1x": {"properties": {"m": {
                        "$ref": "#/x-gateway-bundle/a.json/My Pet~01x"}}}}}}
    converter = SchemaConverter(document, "openapi-3.0")
    defs: dict[str, Any] = {}
    for target in ("#/components/schemas/Pet", "#/x-gateway-bundle/a.json/Pet", "#/x-gateway-bundle/a.json/My Pet~01x"):
        converter.input_schema({"type": "array", "items": {"$ref": target}}, defs)
    assert sorted(defs) == ["My_Pet_1x", "Pet", "Pet_2"]
    check({"$defs": defs})


def test_exclusive_bounds_become_numeric() -> None:
    schema = to_input({"type": "number", "minimum": 1, "exclusiveMinimum": True,
                       "maximum": 5, "exclusiveMaximum": False})
    assert schema == {"type": "number", "exclusiveMinimum": 1, "maximum": 5}
    assert not accepts(schema, 1) and accepts(schema, 1.5) and accepts(schema, 5)
    assert to_input({"type": "number", "exclusiveMinimum": 3}, dialect="openapi-3.1")["exclusiveMinimum"] == 3
    assert "exclusiveMaximum" not in to_input({"type": "number", "exclusiveMaximum": True})


def test_example_becomes_examples_and_bad_samples_are_dropped() -> None:
    schema = to_input({"type": "object", "properties": {
        "n": {"type": "integer", "minimum": 1, "default": 0, "example": 3},
        "s": {"type": "string", "enum": ["a", "b"], "default": "a", "example": "zzz"},
        "d": {"type": "string", "format": "date", "default": datetime.date(2020, 1, 2)},
    }})
    props = schema["properties"]
    assert props["n"]["examples"] == [3] and "default" not in props["n"]
    assert props["s"]["default"] == "a" and "examples" not in props["s"]
    assert props["d"]["default"] == "2020-01-02"
    assert "example" not in json.dumps(schema).replace('"examples"', "")


def test_file_and_odd_types() -> None:
    assert to_input({"type": "file"}) == {"type": "string", "format": "binary"}
    assert to_input({"type": "String", "format": "Date-Time"}) == {"type": "string", "format": "date-time"}
    assert to_input({"type": "int"}) == {"type": "integer"}
    assert to_input({"type": "whatever", "description": "d"}) == {"description": "d"}
    assert to_input({"type": ["string", 5]}) == {}


def test_tuple_items_become_prefix_items() -> None:
    pair = to_input({"type": "array", "items": [{"type": "string"}, {"type": "integer"}], "additionalItems": False})
    assert pair == {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False}
    assert accepts(pair, ["a", 1]) and not accepts(pair, [1, "a"]) and not accepts(pair, ["a", 1, 2])
    assert to_input({"type": "array", "items": [{"type": "string"}]})["items"] == {"type": "string"}


def test_invalid_patterns_are_dropped() -> None:
    for bad in ("\\p{L}+", "[", "(?i)abc", "a\\Qb\\E"):
        schema = to_input({"type": "string", "pattern": bad, "patternProperties": {bad: {}}})
        assert "pattern" not in schema and "patternProperties" not in schema
    good = to_input({"type": "string", "pattern": "^[a-z]+$"})
    assert accepts(good, "abc") and not accepts(good, "ABC")


def test_required_oddities() -> None:
    schema = to_input({"type": "object", "required": ["a", "a", 3], "properties": {
        "a": {"type": "string", "required": True}, "b": {"type": "object", "required": []}}})
    assert schema["required"] == ["a"]
    assert "required" not in schema["properties"]["a"] and "required" not in schema["properties"]["b"]


def test_enum_const_and_numbers_are_repaired() -> None:
    assert "enum" not in to_input({"type": "string", "enum": []})
    assert to_input({"type": "string", "enum": [1, 2.5, True, "x"]})["enum"] == ["1", "2.5", "true", "x"]
    assert to_input({"type": "integer", "enum": ["1", "a", None]})["enum"] == [1]
    assert to_input({"type": "number", "const": "2"})["const"] == 2
    assert to_input({"type": "string", "minLength": "2", "maxLength": -1, "minimum": "1.5", "multipleOf": 0}) == {
        "type": "string", "minLength": 2, "minimum": 1.5}


def test_openapi_only_keywords_are_dropped() -> None:
    schema = to_input({"type": "object", "discriminator": {"propertyName": "kind"}, "xml": {"name": "pet"},
                       "externalDocs": {"url": "https://x"}, "x-extension": 1, "readOnly": False, "nullable": False,
                       "deprecated": True, "title": "Pet", "properties": {"kind": {"type": "string"}}})
    assert schema == {"type": "object", "deprecated": True, "title": "Pet", "properties": {"kind": {"type": "string"}}}


def test_one_of_becomes_any_of() -> None:
    """Overlapping branches (here: no discriminator left to tell them apart) must not refuse a value."""
    document = components(Cat={"type": "object", "properties": {"name": {"type": "string"}}},
                          Dog={"type": "object", "properties": {"name": {"type": "string"}}})
    one_of = {"oneOf": [ref("Cat"), ref("Dog")], "discriminator": {"propertyName": "kind"}}
    converted_in, converted_out = to_input(one_of, document), to_output(one_of, document)
    assert "oneOf" not in converted_in and "oneOf" not in converted_out  # type: ignore[operator]
    assert accepts(converted_in, {"name": "rex"}) and accepts(converted_out, {"name": "rex"})  # type: ignore[arg-type]
    both = to_input({"anyOf": [{"type": "string"}], "oneOf": [{"maxLength": 2}, {"minLength": 5}]})
    assert accepts(both, "ab") and not accepts(both, "abc") and not accepts(both, 1)


def test_returned_top_level_can_be_changed_by_the_caller() -> None:
    document = components(Pet={"type": "object", "properties": {"name": {"type": "string"}}})
    converter = SchemaConverter(document, "openapi-3.0")
    first = converter.input_schema(ref("Pet"), {})
    first["description"] = "changed"
    assert "description" not in converter.input_schema(ref("Pet"), {})


# -- output direction ----------------------------------------------------------------------------------


def test_outputs_keep_only_the_shape() -> None:
    document = components(Pet={
        "type": "object", "required": ["id", "tags"], "additionalProperties": False,
        "properties": {"id": {"type": "integer", "minimum": 1, "format": "int64", "description": "the id"},
                       "status": {"type": "string", "enum": ["a"], "pattern": "^a$"},
                       "tags": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "string"}}},
    })
    schema = to_output({"type": "array", "items": ref("Pet")}, document)
    assert schema == {"type": "array", "items": {"type": ["object", "null"], "properties": {
        "id": {"description": "the id"}, "status": {}, "tags": {"type": ["array", "null"]}}}}
    real_answer = [{"id": "7", "status": "weird", "tags": [], "extra": True}, {"tags": None}, None]
    assert accepts(schema, real_answer)  # type: ignore[arg-type]


def test_output_root_type_is_plain() -> None:
    """MCP clients expect `type: object` at the root; an empty answer is not structured content anyway."""
    assert to_output({"type": "object", "nullable": True, "properties": {}}) == {"type": "object", "properties": {}}
    assert to_output({"type": ["object", "null"]}, dialect="openapi-3.1") == {"type": "object"}
    assert to_output({"type": "null"}, dialect="openapi-3.1") is None


def test_outputs_are_cut_below_a_few_levels() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(10):
        deep = {"type": "object", "properties": {"child": deep}}
    schema = to_output(deep)
    depth, node = 0, schema
    while isinstance(node, dict) and "properties" in node:
        depth, node = depth + 1, node["properties"]["child"]
    assert 1 <= depth <= 4


def test_outputs_stay_small_for_wide_schemas() -> None:
    wide = {"type": "object", "properties": {f"p{i}": {"type": "object", "properties": {
        f"q{j}": {"type": "object", "properties": {"r": {"type": "integer"}}} for j in range(30)}} for i in range(30)}}
    schema = to_output(wide)
    assert schema is not None and len(schema["properties"]) == 30
    assert nodes(schema) < 300


def test_output_cycles_terminate() -> None:
    document = components(Node={"type": "object", "properties": {"next": ref("Node"), "v": {"type": "integer"}}})
    schema = to_output(ref("Node"), document)
    instance: Any = {"v": 1}
    for _ in range(20):
        instance = {"next": instance, "v": "x"}
    assert accepts(schema, instance)  # type: ignore[arg-type]


def test_output_schema_is_none_when_nothing_is_promised() -> None:
    document = components(Download={"type": "string", "format": "binary"})
    for schema in (None, {}, {"description": "d"}, {"type": "string", "format": "binary"}, {"type": "file"},
                   ref("Download"), {"type": "integer"}, {"enum": [1]}, {"anyOf": [{"type": "string"}, {}]}):
        assert to_output(schema, document) is None, schema
    assert to_output({"anyOf": [{"type": "object"}, {"type": "array"}]}) is not None


# -- property test: random (and odd) OpenAPI schemas ---------------------------------------------------

_NAMES = ("A", "B", "C")
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(-3, 3, width=32),
                     st.text("ab1", max_size=3))
_TYPES = st.sampled_from(["string", "integer", "number", "boolean", "object", "array", "null", "file", "int", "Strng"])
_KEYWORDS = {
    "type": st.one_of(_TYPES, st.lists(_TYPES, max_size=3)),
    "format": st.sampled_from(["int32", "Date-Time", "binary", 5]),
    "nullable": st.booleans(), "x-nullable": st.booleans(), "readOnly": st.booleans(), "writeOnly": st.booleans(),
    "enum": st.lists(_SCALARS, max_size=3), "const": _SCALARS, "default": _SCALARS, "example": _SCALARS,
    "examples": st.one_of(_SCALARS, st.lists(_SCALARS, max_size=2)),
    "minimum": st.one_of(st.integers(-3, 3), st.sampled_from(["1", "x", True])),
    "maximum": st.one_of(st.integers(-3, 3), st.sampled_from(["2.5", None])),
    "exclusiveMinimum": st.one_of(st.booleans(), st.integers(-3, 3)), "exclusiveMaximum": st.booleans(),
    "multipleOf": st.sampled_from([0, -1, 0.5, 2, "3"]),
    "minLength": st.sampled_from([0, 1, -1, 1.5, "2"]), "maxItems": st.sampled_from([0, 2, "x"]),
    "pattern": st.sampled_from(["^a", "[", "\\p{L}", "\\Z", "(?<n>a)", 5]),
    "required": st.one_of(st.booleans(), st.lists(st.sampled_from(["a", "b", 1]), max_size=3)),
    "uniqueItems": st.sampled_from([True, "yes"]), "description": st.one_of(st.text(max_size=3), st.integers()),
    "discriminator": st.just({"propertyName": "a"}), "xml": st.just({"name": "x"}), "x-foo": _SCALARS,
    "$ref": st.sampled_from([*(f"#/components/schemas/{n}" for n in _NAMES), "#/components/schemas/Gone", "Pet"]),
}
_LEAVES = st.one_of(st.booleans(), st.fixed_dictionaries({}, optional=_KEYWORDS))  # type: ignore[arg-type]


def _extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    nested = {
        "properties": st.dictionaries(st.sampled_from(["a", "b", "c"]), children, max_size=3),
        "items": st.one_of(children, st.lists(children, max_size=3)),
        "additionalProperties": children, "additionalItems": children, "prefixItems": st.lists(children, max_size=2),
        "allOf": st.lists(children, max_size=2), "anyOf": st.lists(children, max_size=2),
        "oneOf": st.lists(children, max_size=2), "not": children,
        "patternProperties": st.dictionaries(st.sampled_from(["^x", "["]), children, max_size=2),
    }
    return st.builds(lambda base, more: {**base, **more} if isinstance(base, dict) else base,
                     _LEAVES, st.fixed_dictionaries({}, optional=nested))  # type: ignore[arg-type]


_SCHEMAS = st.recursive(_LEAVES, _extend, max_leaves=6)
_JSON = st.recursive(
    _SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from("abc"), c, max_size=3), max_leaves=6)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({n: _SCHEMAS for n in _NAMES}), _SCHEMAS,
       st.sampled_from(["openapi-3.0", "openapi-3.1"]), st.lists(_JSON, max_size=4))
def test_random_schemas_convert_to_valid_schemas(named: dict[str, Any], schema: Any, dialect: str,
                                                 instances: list[Any]) -> None:
    document = {"components": {"schemas": named}}
    converter = SchemaConverter(document, dialect)  # type: ignore[arg-type]
    read_only = '"readOnly": true' in json.dumps([named, schema])
    for root in (schema, ref("A")):
        defs: dict[str, Any] = {}
        converted = converter.input_schema(root if isinstance(root, dict) else {}, defs)
        tool = {**converted, "$defs": defs}
        check(tool)
        output = converter.output_schema(root if isinstance(root, dict) else None)
        if output is not None:
            check(output)
        for instance in instances:
            # Validation terminates, and whatever the input accepts, the relaxed output accepts too
            # (read-only properties aside: inputs leave them out, outputs keep them; and a null answer
            # is no structured content, so the output root does not accept it).
            valid_input = accepts(tool, instance)
            if output is not None and valid_input and not read_only and instance is not None:
                assert accepts(output, instance), (root, instance)


# -- the shared corpus of real specs -------------------------------------------------------------------

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_SPECS = [row["file"] for row in manifest(SHARED_SPECS)] if (SHARED_SPECS / "MANIFEST.tsv").exists() else []


@functools.cache
def _load(path: Path) -> dict[str, Any]:
    """A raw spec document (cached: several tests walk the same big files; they must not change it)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _deref(document: Mapping[str, Any], node: Any) -> Any:
    """Follows a chain of internal `$ref`s (parameters, responses, examples); None when it leaves the file."""
    for _ in range(10):
        if not (isinstance(node, Mapping) and isinstance(node.get("$ref"), str)):
            return node
        try:
            node = resolve(document, node["$ref"]) if node["$ref"].startswith("#") else None
        except KeyError:
            return None
    return None


def _operations(document: Mapping[str, Any]) -> Iterator[tuple[str, list[Any], list[tuple[Any, list[Any]]]]]:
    """(name, input schemas, [(2xx response schema, its examples)]) of every operation of a raw document."""
    swagger = "swagger" in document
    paths = {**(document.get("paths") or {}), **(document.get("x-ms-paths") or {})}
    for path, item in paths.items():
        item = _deref(document, item) or {}
        for method in _METHODS:
            operation = item.get(method)
            if not isinstance(operation, Mapping):
                continue
            inputs: list[Any] = []
            for parameter in [*(item.get("parameters") or ()), *(operation.get("parameters") or ())]:
                parameter = _deref(document, parameter)
                if isinstance(parameter, Mapping):
                    # A Swagger non-body parameter is its own schema (odd keys included: the converter copes).
                    inputs.append(parameter.get("schema", parameter if swagger else None))
                    inputs.extend(m.get("schema") for m in (parameter.get("content") or {}).values())
            body = _deref(document, operation.get("requestBody"))
            if isinstance(body, Mapping):
                inputs.extend(m.get("schema") for m in (body.get("content") or {}).values())
            outputs: list[tuple[Any, list[Any]]] = []
            for status, response in (operation.get("responses") or {}).items():
                response = _deref(document, response)
                if not str(status).startswith("2") or not isinstance(response, Mapping):
                    continue
                if swagger and "schema" in response:
                    outputs.append((response["schema"], []))
                for media in (response.get("content") or {}).values():
                    if isinstance(media, Mapping) and "schema" in media:
                        examples = [media["example"]] if "example" in media else []
                        for example in (media.get("examples") or {}).values():
                            example = _deref(document, example)
                            if isinstance(example, Mapping) and "value" in example:
                                examples.append(example["value"])
                        outputs.append((media["schema"], examples))
            yield f"{method.upper()} {path}", inputs, outputs


def _dialect(document: Mapping[str, Any]) -> str:
    return "openapi-3.1" if str(document.get("openapi", "")).startswith("3.1") else "openapi-3.0"


def _check_all(converter: SchemaConverter, operations: Iterable[tuple[str, list[Any], list[Any]]]) -> None:
    """Every operation's input schemas (as one tool inputSchema) and output schemas are valid."""
    checked_defs: set[str] = set()
    for name, inputs, outputs in operations:
        defs: dict[str, Any] = {}
        properties = {f"in{i}": converter.input_schema(s, defs) for i, s in enumerate(inputs)}
        try:
            # The metaschema check is compositional: each shared definition is checked once per spec.
            jsonschema.Draft202012Validator.check_schema({"properties": properties})
            for def_name in defs.keys() - checked_defs:
                jsonschema.Draft202012Validator.check_schema(defs[def_name])
                checked_defs.add(def_name)
            jsonschema_rs.validator_for({"type": "object", "properties": properties, "$defs": defs})
            for schema in outputs:
                output = converter.output_schema(schema)
                if output is not None:
                    check(output)
        except (jsonschema.SchemaError, ValueError) as error:
            pytest.fail(f"{name}: {error}")


@pytest.mark.parametrize("spec", _SPECS)
def test_every_corpus_schema_converts_to_a_valid_schema(spec: str) -> None:
    """Straight from the raw document: schemas exactly as written (only the root file's refs resolve)."""
    document = _load(SHARED_SPECS / spec)
    operations = ((name, inputs, [schema for schema, _ in outputs]) for name, inputs, outputs in _operations(document))
    _check_all(SchemaConverter(document, _dialect(document)), operations)  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", _SPECS)
def test_every_loaded_corpus_schema_converts_to_a_valid_schema(spec: str) -> None:
    """Through the loader: multi-file specs bundled, Swagger 2.0 parameters turned into schemas."""
    model = load_spec(str(SHARED_SPECS / spec))
    converter = SchemaConverter(model.document, model.dialect)
    _check_all(converter, (
        (f"{op.method.upper()} {op.path}",
         [p.schema for p in op.parameters] + [m.schema for m in (op.request_body.content if op.request_body else ())],
         [m.schema for r in op.responses for m in r.content])
        for op in model.operations))


def _schema_examples(document: Mapping[str, Any], schema: Any) -> Iterator[tuple[Any, Any]]:
    """(sub-schema, example) for every `example`/`examples` written in `schema` or the schemas it uses."""
    pending, seen = [schema], set()
    while pending:
        node = pending.pop()
        if not isinstance(node, Mapping) or id(node) in seen:
            continue
        seen.add(id(node))
        if "example" in node:
            yield node, node["example"]
        if isinstance(node.get("examples"), list):
            yield from ((node, example) for example in node["examples"])
        pending.append(_deref(document, node) if "$ref" in node else None)
        for key in ("properties", "patternProperties"):
            pending.extend((node.get(key) or {}).values() if isinstance(node.get(key), Mapping) else ())
        for key in ("allOf", "anyOf", "oneOf", "prefixItems"):
            pending.extend(node.get(key) or () if isinstance(node.get(key), list) else ())
        pending.extend(node.get(key) for key in ("items", "additionalProperties"))


@pytest.mark.parametrize("spec", _SPECS)
def test_corpus_response_examples_satisfy_the_output_schema(spec: str) -> None:
    """The relaxed output schemas accept the real data the spec shows: the examples of each response
    (media type examples) and of every schema it uses, each against the output schema of its own schema."""
    document = _load(SHARED_SPECS / spec)
    if "openapi" not in document:
        pytest.skip("Swagger 2.0 (examples are checked on the 3.x specs)")
    converter = SchemaConverter(document, _dialect(document))  # type: ignore[arg-type]
    checked = skipped = 0
    for name, _, outputs in _operations(document):
        for response_schema, media_examples in outputs:
            pairs = [*((response_schema, e) for e in media_examples), *_schema_examples(document, response_schema)]
            for schema, example in pairs:
                output = converter.output_schema(schema)
                if output is None:
                    continue
                example = json.loads(json.dumps(example, default=str))  # YAML dates are strings in JSON
                kind = {dict: "object", list: "array"}.get(type(example), "other")
                declared = output.get("type", kind)
                if kind not in (declared if isinstance(declared, list) else [declared]):
                    # not of the schema's type at all: e.g. an XML text shown for an object schema
                    skipped += 1
                    continue
                checked += 1
                validator = jsonschema_rs.validator_for(output)
                assert validator.is_valid(example), f"{name}: {next(validator.iter_errors(example))}"
    print(f"{spec}: {checked} response examples checked, {skipped} skipped (not of the schema's type)")


def test_github_converts_quickly() -> None:
    path = SHARED_SPECS / "github--api.github.com.json"
    if not path.exists():
        pytest.skip("the shared spec corpus (../shared/specs) is not available")
    document = _load(path)
    operations = list(_operations(document))
    start = time.perf_counter()
    converter = SchemaConverter(document, "openapi-3.0")
    for _, inputs, outputs in operations:
        defs: dict[str, Any] = {}
        for schema in inputs:
            converter.input_schema(schema, defs)
        for schema, _ in outputs:
            converter.output_schema(schema)
    elapsed = time.perf_counter() - start
    print(f"GitHub: {len(operations)} operations converted in {elapsed * 1000:.0f} ms")
    assert len(operations) == 771


def test_patterns_of_other_dialects_are_rewritten_and_reported() -> None:
    converter = SchemaConverter({}, "openapi-3.0")
    rows = [("\\A[[:alpha:]]+\\z", "^[a-zA-Z]+$"), ("^(?P<year>\\d{4})-\\d{2}$", "^(\\d{4})-\\d{2}$"),
            ("^a++b$", "^a+b$"), ("^[a-z]+$", "^[a-z]+$")]
    for written, usable in rows:
        schema = converter.input_schema({"type": "string", "pattern": written}, {})
        assert schema["pattern"] == usable
        repairs = converter.repairs()
        assert repairs == ([] if written == usable else [f"pattern {written!r} rewritten as {usable!r}"])
    assert "pattern" not in converter.input_schema({"type": "string", "pattern": "(?i)^abc$"}, {})
    assert "dropped" in converter.repairs()[0]
    fixed = converter.input_schema({"type": "array", "enum": ["a", "b"], "items": {"type": "string"}}, {})
    assert accepts(fixed, ["a", "b"]) and not accepts(fixed, ["c"])
    assert converter.repairs() == ["an `enum` on an array applies to each item (moved to `items`)"]


def test_enum_value_descriptions_reach_the_description() -> None:
    ms = to_input({"type": "string", "description": "The kind.", "enum": ["a", "b", "c"], "x-ms-enum": {
        "name": "Kind", "values": [{"value": "a", "description": "First"}, {"value": "b", "name": "Bee",
                                                                            "description": "Second"}]}})
    assert ms["description"] == "The kind.\n\nValues: a: First; b: Bee (Second)" and ms["enum"] == ["a", "b", "c"]
    listed = to_input({"type": "integer", "enum": [1, 2], "x-enum-descriptions": ["Low", "High"]})
    assert listed["description"] == "Values: 1: Low; 2: High"
    mapped = to_input({"type": "string", "enum": ["x"], "x-enumDescriptions": {"x": "Only"}})
    assert mapped["description"] == "Values: x: Only"
    assert "description" not in to_input({"type": "string", "enum": ["a"], "x-enumNames": ["a"]})  # says nothing
    consts = to_input({"oneOf": [{"const": 1, "title": "One"}, {"const": 2, "title": "Two"}]}, dialect="openapi-3.1")
    assert consts["anyOf"] == [{"title": "One", "const": 1}, {"title": "Two", "const": 2}]
