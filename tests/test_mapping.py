"""The mapping format: loading with file:line errors, selection against a spec, the scaffold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gateway.errors import ConfigError, SpecError
from gateway.mapping import (
    ToolMapping,
    default_mapping,
    load_mapping,
    scaffold_mapping,
    select_operations,
)
from gateway.mapping.load import compile_summary
from gateway.spec.model import ApiModel, MediaType, Operation, Parameter, RequestBody
from gateway.spec.pointer import join
from tests.conftest import ROOT, line, manifest, write_text

# -- a small hand-built API ---------------------------------------------------------------------------------

NEW_PET = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string"}, "tag": {"type": "string"}},
}
DOCUMENT: dict[str, Any] = {
    "components": {
        "schemas": {
            "NewPet": NEW_PET,
            "Timestamps": {"type": "object", "properties": {"created": {"type": "string"}}},
            "Dated": {"allOf": [{"$ref": "#/components/schemas/NewPet"}, {"$ref": "#/components/schemas/Timestamps"}]},
        }
    }
}


def operation(method: str, path: str, operation_id: str | None = None, **fields: Any) -> Operation:
    return Operation(method=method, path=path, pointer=join("#/paths", path, method), operation_id=operation_id,
                     **fields)


def json_body(schema: dict[str, Any], required: bool = True) -> RequestBody:
    return RequestBody(required=required, content=(MediaType("application/json", schema),))


def make_api(*operations: Operation) -> ApiModel:
    return ApiModel(source="test.yaml", spec_version="3.0.3", dialect="openapi-3.0", title="Pets", version="1.0",
                    description="", servers=(), operations=operations, security_schemes={}, security=(),
                    document=DOCUMENT)


PETS = make_api(
    operation("get", "/pets", "listPets", tags=("pets",), parameters=(
        Parameter("limit", "query", {"type": "integer"}),
        Parameter("api-version", "query", {"type": "string"}, required=True),
        Parameter("X-Debug", "header", {"type": "boolean"}),
    )),
    operation("post", "/pets", "createPet", tags=("pets",),
              request_body=json_body({"$ref": "#/components/schemas/NewPet"})),
    operation("get", "/pets/{petId}", "getPet", tags=("pets",),
              parameters=(Parameter("petId", "path", {"type": "string"}, required=True),)),
    operation("delete", "/pets/{petId}", "deletePet", tags=("pets",),
              parameters=(Parameter("petId", "path", {"type": "string"}, required=True),)),
    operation("get", "/pets/{petId}/photos", "listPhotos", tags=("pets", "photos")),
    operation("get", "/search", "oldSearch", tags=("pets",), deprecated=True),
    operation("get", "/files/{path}", parameters=(Parameter("path", "path", {"type": "string"}, required=True),)),
    operation("get", "/store/inventory", "getInventory", tags=("store",)),
    operation("post", "/store/dated", "addDated", request_body=json_body({"$ref": "#/components/schemas/Dated"})),
    operation("post", "/store/any", "addAny", request_body=json_body({"oneOf": [{"type": "object"}, NEW_PET]})),
)


def write(tmp_path: Path, text: str, name: str = "mapping.yaml") -> Path:
    return write_text(tmp_path, text, name)


def load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_mapping(path)
    return str(info.value)


def select_error(api: ApiModel, path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        select_operations(api, load_mapping(path))
    return str(info.value)


def ids(selected: list[Any]) -> list[str]:
    return [s.operation.operation_id or f"{s.operation.method.upper()} {s.operation.path}" for s in selected]


FULL = """
version: 1
server: {name: petstore, instructions: "Use these tools to manage pets."}
defaults:
  timeout: 30
  max_response_bytes: 200000
  include_deprecated: false
select:
  include:
    - operationId: listPets
    - tag: store
    - method: get
      path: "/pets/*"
  exclude:
    - operationId: deletePet
tools:
  listPets:
    name: list_pets
    title: List pets
    description: Every pet, newest first.
    annotations: {readOnlyHint: true, openWorldHint: false}
    timeout: 10
    parameters:
      limit: {default: 20, description: "How many pets"}
      api-version: {fixed: 2019-04-01}
      X-Debug: {hidden: true}
    response:
      select: "items[].{id: id, name: name}"
      max_items: 50
      summary: "Found {length(@)} pets; first: {[0].name} {{literal}}"
  "GET /files/{path}":
    parameters:
      path: {allow_slash: true}
"""


# -- loading ------------------------------------------------------------------------------------------------

def test_full_mapping_loads_into_frozen_records(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, FULL))
    assert isinstance(mapping, ToolMapping)
    assert mapping.server.name == "petstore"
    assert mapping.defaults.timeout == 30 and mapping.defaults.max_response_bytes == 200000
    include = mapping.select.include
    assert include is not None
    assert [(r.operation_id, r.tag, r.method, r.path) for r in include] == [
        ("listPets", None, None, None), (None, "store", None, None), (None, None, "get", "/pets/*")]
    assert include[2].where == line(tmp_path / "mapping.yaml", "- method: get")
    entry = mapping.tools[0]
    assert (entry.key, entry.name, entry.title, entry.timeout) == ("listPets", "list_pets", "List pets", 10)
    assert entry.where == line(tmp_path / "mapping.yaml", "listPets:")
    assert entry.annotations == {"readOnlyHint": True, "openWorldHint": False}
    fixed = entry.parameters["api-version"]
    assert (fixed.fixed, fixed.has_fixed, fixed.hidden, fixed.has_default) == ("2019-04-01", True, True, False)
    limit = entry.parameters["limit"]
    assert (limit.default, limit.has_default, limit.hidden, limit.description) == (20, True, False, "How many pets")
    assert entry.parameters["X-Debug"].hidden and not entry.parameters["X-Debug"].has_default
    assert entry.response.select is not None
    assert entry.response.select.expression == "items[].{id: id, name: name}"
    assert entry.response.select.search({"items": [{"id": 1, "name": "a", "x": 0}]}) == [{"id": 1, "name": "a"}]
    assert entry.response.max_items == 50
    assert entry.response.summary is not None
    assert entry.response.summary.render([{"name": "Rex"}, {"name": "Tom"}]) == "Found 2 pets; first: Rex {literal}"
    assert mapping.tools[1].parameters["path"].allow_slash
    with pytest.raises(AttributeError):
        entry.name = "other"  # type: ignore[misc]


def test_minimal_mapping_equals_the_default_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\n")
    minimal = load_mapping(path)
    assert minimal == ToolMapping(source=str(path))
    assert default_mapping() == ToolMapping(source="(default mapping)")
    mapping = default_mapping()
    assert mapping.select.include is None and mapping.select.exclude == ()
    assert mapping.defaults.timeout is None and mapping.defaults.max_response_bytes == 1_000_000
    assert not mapping.defaults.include_deprecated and mapping.tools == ()


def test_unknown_key_is_an_error_with_did_you_mean(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: 1
        tools:
          listPets:
            nmae: list_pets
    """)
    assert load_error(path) == f"{line(path, 'nmae')}: tools.listPets.nmae: unknown key 'nmae' (did you mean 'name'?)"


def test_unknown_key_without_close_match_lists_the_valid_keys(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: 1
        frobnicate: true
    """)
    message = load_error(path)
    assert message.startswith(f"{line(path, 'frobnicate')}: frobnicate: unknown key 'frobnicate' (expected one of: ")
    assert "version, server, defaults, select, tools" in message


def test_every_error_is_listed_in_line_order(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: 1
        defaults:
          timeout: soon
          max_response_bytes: 0
        select:
          include:
            - {methd: GET}
        tools:
          listPets:
            name: "list pets"
            parameters:
              limit: {default: 20, fixed: 10}
    """)
    message = load_error(path)
    assert message.splitlines() == [
        f"{line(path, 'timeout')}: defaults.timeout: expected a number, got a string \"soon\"",
        f"{line(path, 'max_response_bytes')}: defaults.max_response_bytes: must be at least 1 (got 0)",
        f"{line(path, 'methd')}: select.include[0].methd: unknown key 'methd' (did you mean 'method'?)",
        f"{line(path, 'list pets')}: tools.listPets.name: must be 1 to 64 characters, each a letter, a digit, "
        "'_' or '-' (got \"list pets\")",
    ]


def test_fixed_and_default_together_is_an_error_at_its_field(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: 1
        tools:
          listPets:
            parameters:
              limit:
                fixed: 10
                default: 20
              other: {fixed: 1, hidden: false}
    """)
    assert load_error(path).splitlines() == [
        f"{line(path, 'default: 20')}: tools.listPets.parameters.limit.default: give either `fixed` (always sent) "
        "or `default` (used when the model gives no value), not both",
        f"{line(path, 'other:')}: tools.listPets.parameters.other.hidden: a fixed parameter is never shown to the "
        "model; remove `hidden: false`",
    ]


def test_version_is_required_and_must_be_1(tmp_path: Path) -> None:
    path = write(tmp_path, "tools: {}\n")
    assert load_error(path) == f"{path}:1: version: is required but missing"
    path = write(tmp_path, "version: 2\n")
    assert load_error(path) == f"{path}:1: version: must be 1, the only version of the mapping format (got 2)"


def test_bad_jmespath_reports_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: 1
        tools:
          listPets:
            response:
              select: "items[].{id: id"
          getPet:
            response:
              select: "a..b"
              summary: "{lenght(@)} pets"
          deletePet:
            response:
              summary: "{length(@, @)} and {unclosed"
    """)
    assert load_error(path).splitlines() == [
        f"{line(path, 'items[]')}: tools.listPets.response.select: invalid JMESPath expression "
        "'items[].{id: id': it ends too early",
        f"{line(path, 'a..b')}: tools.getPet.response.select: invalid JMESPath expression 'a..b': "
        "unexpected '.' at column 3",
        f"{line(path, 'lenght')}: tools.getPet.response.summary: invalid JMESPath expression 'lenght(@)': "
        "unknown function lenght() (did you mean 'length'?)",
        f"{line(path, 'unclosed')}: tools.deletePet.response.summary: invalid JMESPath expression "
        "'length(@, @)': length() takes 1 argument, not 2",
    ]


def test_summary_templates() -> None:
    template = compile_summary("{{x}} {items[].{n: name} | length(@)} items, first '{items[0].name}' {missing}")
    assert template.render({"items": [{"name": "a}"}, {"name": "b"}]}) == "{x} 2 items, first 'a}' "
    assert compile_summary("{ `{\"a\": \"}\"}`.a }").render(None) == "}"
    assert compile_summary("n={@}").render(3) == "n=3"
    assert compile_summary("{length(@)}").render(5) == ""  # fails at call time: rendered as nothing
    for bad, problem in [("{a", "never closed"), ("a}", "unmatched '}'"), ("{ }", "empty {}")]:
        with pytest.raises(ValueError, match=problem):
            compile_summary(bad)


def test_duplicate_tool_names_name_both_lines(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: 1
        tools:
          listPets:
            name: pets
          getPet:
            name: pets
    """)
    assert load_error(path) == (f"{line(path, 'name: pets', 2)}: tools.getPet.name: tool name 'pets' is already "
                                f"used by tools.listPets at {line(path, 'name: pets', 1)}")


def test_yaml_problems_point_at_their_line(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\ntools:\n  a: [1, 2\n")
    assert load_error(path).startswith(f"{path}:4: invalid YAML: ")
    path = write(tmp_path, "version: 1\nselect: {}\nversion: 1\n")
    assert load_error(path) == f"{path}:3: version: duplicate key (first on line 1)"
    path = write(tmp_path, "")
    assert load_error(path) == f"{path}:1: the file is empty"
    path = write(tmp_path, "version: 1\nserver:\n  name: !!binary aGVsbG8=\n")
    assert load_error(path) == (f"{path}:3: server.name: tag:yaml.org,2002:binary values are not supported; "
                                "quote it as a string")
    path = write(tmp_path, "- version\n")
    assert load_error(path) == f"{path}:1: (top level): expected a mapping (key: value), got a list"
    assert load_error(tmp_path / "missing.yaml").startswith(f"{tmp_path / 'missing.yaml'}: cannot read the file")


def test_yaml_keys_and_dates_stay_strings(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: 1
        tools:
          listPets:
            parameters:
              on: {fixed: 2019-04-01}
              "200": {default: yes}
    """)
    parameters = load_mapping(path).tools[0].parameters
    assert parameters["on"].fixed == "2019-04-01"
    assert parameters["200"].default is True


def test_yaml_anchors_and_merge_keys(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: 1
        tools:
          listPets: &common
            timeout: 5
            title: Pets
          getPet:
            <<: *common
            title: One pet
    """)
    tools = load_mapping(path).tools
    assert [(t.key, t.timeout, t.title) for t in tools] == [("listPets", 5, "Pets"), ("getPet", 5, "One pet")]


def test_shipped_schema_copies_match_and_are_valid() -> None:
    for name in ("mapping", "gateway"):
        canonical = ROOT / "gateway" / "schemas" / f"{name}.schema.json"
        copy = ROOT / "config" / f"{name}.schema.json"
        assert copy.read_bytes() == canonical.read_bytes(), f"config/{name}.schema.json differs from the canonical copy"
        Draft202012Validator.check_schema(json.loads(canonical.read_text(encoding="utf-8")))


def test_bundled_petstore_mapping_loads() -> None:
    path = ROOT / "adapters" / "petstore" / "mapping.yaml"
    if not path.exists():
        pytest.skip("adapters/petstore/mapping.yaml not written yet")
    assert load_mapping(path).tools


# -- selection ----------------------------------------------------------------------------------------------

def test_default_mapping_selects_every_non_deprecated_operation_in_spec_order(tmp_path: Path) -> None:
    selected, warnings = select_operations(PETS, default_mapping())
    assert ids(selected) == [op.operation_id or f"{op.method.upper()} {op.path}"
                             for op in PETS.operations if not op.deprecated]
    assert warnings == []
    assert all(s.settings.timeout is None and s.settings.max_response_bytes == 1_000_000 for s in selected)
    with_deprecated, _ = select_operations(PETS, load_mapping(write(tmp_path, """
        version: 1
        defaults: {include_deprecated: true}
    """)))
    assert len(with_deprecated) == len(PETS.operations)


def test_select_rules_include_then_exclude(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    selected, warnings = select_operations(PETS, load_mapping(path))
    # listPets by id; getInventory by tag; getPet, listPhotos by GET + glob (deletePet is DELETE and excluded anyway)
    assert ids(selected) == ["listPets", "getPet", "listPhotos", "getInventory"]
    assert [str(w) for w in warnings] == [
        f"{line(path, 'GET /files')}: tools[\"GET /files/{{path}}\"]: configures GET /files/{{path}}, which is not "
        "selected: no select.include rule matches it",
    ]
    assert all(w.severity == "warning" for w in warnings)


def test_exclude_and_method_rules(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: 1
        select:
          include:
            - tag: pets
          exclude:
            - method: DELETE
            - {method: get, path: "/pets/*/photos"}
    """)
    selected, warnings = select_operations(PETS, load_mapping(path))
    assert ids(selected) == ["listPets", "createPet", "getPet"]
    assert warnings == []


def test_deprecated_operations_need_an_explicit_operation_id(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: 1
        select:
          include:
            - path: /search
            - operationId: oldSerch
    """)
    selected, warnings = select_operations(PETS, load_mapping(path))
    assert selected == []
    assert [str(w) for w in warnings] == [
        f"{line(path, '/search')}: select.include[0]: matches only deprecated operations (1), which are skipped; set "
        "defaults.include_deprecated: true or name them by operationId",
        f"{line(path, 'oldSerch')}: select.include[1]: matches no operation (did you mean 'oldSearch'?)",
        f"{path}: no operation is selected: this API would have no tools",
    ]
    path = write(tmp_path, "version: 1\nselect:\n  include:\n    - operationId: oldSearch\n")
    selected, warnings = select_operations(PETS, load_mapping(path))
    assert ids(selected) == ["oldSearch"] and warnings == []
    assert selected[0].settings.where == f"{path}:4"  # no tools entry: the rule that selected it


def test_entries_for_unselected_operations_say_why(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: 1
        select:
          exclude:
            - tag: store
        tools:
          getInventory: {title: Inventory}
          oldSearch: {title: Search}
    """)
    selected, warnings = select_operations(PETS, load_mapping(path))
    assert "getInventory" not in ids(selected) and "oldSearch" not in ids(selected)
    assert [str(w) for w in warnings] == [
        f"{line(path, 'getInventory:')}: tools.getInventory: configures getInventory (GET /store/inventory), which is "
        f"not selected: it is excluded by the rule at {line(path, '- tag: store')}",
        f"{line(path, 'oldSearch:')}: tools.oldSearch: configures oldSearch (GET /search), which is not selected: "
        "it is deprecated (name it in an operationId rule, or set defaults.include_deprecated: true)",
    ]


def test_tools_key_naming_no_operation_suggests_close_ids(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: 1
        tools:
          listPet:
            name: x
          "GET /pets/{id}":
            title: y
          frobnicate:
            title: z
    """)
    assert select_error(PETS, path).splitlines() == [
        f"{line(path, 'listPet:')}: tools.listPet: no operation has operationId 'listPet' (did you mean 'listPets'?)",
        f"{line(path, 'GET /pets')}: tools[\"GET /pets/{{id}}\"]: the spec has no operation 'GET /pets/{{id}}' "
        "(did you mean 'GET /pets/{petId}'?)",
        f"{line(path, 'frobnicate')}: tools.frobnicate: no operation has operationId 'frobnicate' (keys are "
        "operationIds, or \"METHOD /path\" as written in the spec)",
    ]


def test_tools_keys_by_route_and_conflicts(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: 1
        tools:
          "get /pets/{petId}":
            name: fetch_pet
          getPet:
            title: again
    """)
    assert select_error(PETS, path) == (
        f"{line(path, 'getPet:')}: tools.getPet: configures getPet (GET /pets/{{petId}}), which tools[\"get "
        f"/pets/{{petId}}\"] at {line(path, 'get /pets')} already configures")
    duplicated = make_api(operation("get", "/a", "same"), operation("get", "/b", "same"))
    path = write(tmp_path, "version: 1\ntools:\n  same: {title: x}\n")
    assert select_error(duplicated, path) == (
        f"{path}:3: tools.same: operationId 'same' is used by 2 operations (GET /a, GET /b); key the entry by "
        "method and path instead, e.g. 'GET /a'")
    path = write(tmp_path, "version: 1\ntools:\n  GET /b: {name: b_tool}\n")
    selected, _ = select_operations(duplicated, load_mapping(path))
    assert [s.settings.name for s in selected] == [None, "b_tool"]


def test_parameter_names_are_checked_against_the_operation(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: 1
        tools:
          listPets:
            parameters:
              limt: {default: 5}
          createPet:
            parameters:
              name: {description: "The pet's name"}
              tga: {hidden: true}
          addDated:
            parameters:
              created: {hidden: true}
          addAny:
            parameters:
              anything: {default: 1}
    """)
    assert select_error(PETS, path).splitlines() == [
        f"{line(path, 'limt')}: tools.listPets.parameters.limt: listPets (GET /pets) has no parameter 'limt' "
        "(did you mean 'limit'?); its parameters: limit, api-version, X-Debug",
        f"{line(path, 'tga')}: tools.createPet.parameters.tga: createPet (POST /pets) has no parameter 'tga' "
        "(did you mean 'tag'?); its parameters: name, tag",
    ]


def test_hidden_and_allow_slash_rules(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: 1
        tools:
          listPets:
            parameters:
              api-version: {hidden: true}
              limit: {allow_slash: true}
          createPet:
            parameters:
              name: {hidden: true}
          getPet:
            parameters:
              petId: {hidden: true, default: "1"}
          "GET /files/{path}":
            parameters:
              path: {allow_slash: true}
    """)
    assert select_error(PETS, path).splitlines() == [
        f"{line(path, 'api-version')}: tools.listPets.parameters.api-version.hidden: 'api-version' is required, so "
        "hiding it needs a `default` (or `fixed`) value to send",
        f"{line(path, 'limit')}: tools.listPets.parameters.limit.allow_slash: only path parameters take allow_slash; "
        "'limit' is a query parameter",
        f"{line(path, 'name: {hidden')}: tools.createPet.parameters.name.hidden: 'name' is required, so hiding it "
        "needs a `default` (or `fixed`) value to send",
    ]


def test_settings_merge_defaults_with_the_entry(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    selected, _ = select_operations(PETS, load_mapping(path))
    by_id = {s.operation.operation_id: s.settings for s in selected}
    assert (by_id["listPets"].timeout, by_id["listPets"].max_response_bytes) == (10, 200000)
    assert (by_id["getPet"].timeout, by_id["getPet"].max_response_bytes) == (30, 200000)
    assert by_id["listPets"].where == line(path, "listPets:")
    assert by_id["getPet"].where == line(path, "- method: get")
    assert by_id["getInventory"].where == line(path, "- tag: store")
    assert by_id["listPets"].name == "list_pets" and by_id["getPet"].name is None
    assert by_id["listPets"].response.render_summary is not None
    assert by_id["getPet"].response.render_summary is None


# -- scaffold -----------------------------------------------------------------------------------------------

def uncomment_tools(text: str) -> str:
    """The scaffold with its commented `tools:` example block turned into real YAML."""
    lines = text.splitlines()
    start = lines.index(next(t for t in lines if t.startswith("# tools:")))
    return "\n".join(lines[:start] + [t[2:] for t in lines[start:]]) + "\n"


def check_scaffold(api: ApiModel, tmp_path: Path) -> None:
    text = scaffold_mapping(api)
    path = tmp_path / "scaffold.yaml"
    path.write_text(text, encoding="utf-8")
    selected, _ = select_operations(api, load_mapping(path))
    expected = [op for op in api.operations if not op.deprecated]
    assert [(s.operation.method, s.operation.path) for s in selected] == [(o.method, o.path) for o in expected]
    if "# tools:" in text:
        path.write_text(uncomment_tools(text), encoding="utf-8")
        mapping = load_mapping(path)
        assert len(mapping.tools) == min(2, len(api.operations))
        select_operations(api, mapping)


def test_scaffold_round_trip(tmp_path: Path) -> None:
    tricky = make_api(
        *PETS.operations,
        operation("get", "/webhdfs/v1/{path}?op=OPEN", summary="Open a file\nsecond line"),
        operation("get", "/webhdfs/v1/{path}?op=LIST"),
        operation("get", "/odd/[x]/*"),
        operation("get", "/dup/a", "dup"),
        operation("get", "/dup/b", "dup"),
        operation("get", "/yes", "yes", summary="Devanagari: \u0927\u0930\u094d\u092e\x85 ok"),
    )
    text = scaffold_mapping(tricky)
    assert text.startswith("# Mapping for Pets 1.0, written by `gateway init` from test.yaml.")
    assert "docs/mapping.md" in text
    assert "    # - operationId: oldSearch" in text  # deprecated: commented out
    assert "GET /pets/{petId}/photos" in text
    assert '- {method: GET, path: "/files/{path}"}' in text
    check_scaffold(tricky, tmp_path)


def test_scaffold_for_empty_and_all_deprecated_apis(tmp_path: Path) -> None:
    check_scaffold(make_api(), tmp_path)
    check_scaffold(make_api(operation("get", "/old", "old", deprecated=True)), tmp_path)


def test_scaffold_loads_back_for_every_shared_spec(shared_specs: Path, tmp_path: Path) -> None:
    from gateway.spec import load_spec

    checked = 0
    for row in manifest(shared_specs):
        try:
            api = load_spec(str(shared_specs / row["file"]))
        except NotImplementedError:
            pytest.skip("gateway.spec.load_spec is not implemented yet")
        except SpecError:
            continue  # a spec the loader rejects (e.g. no operations) has nothing to scaffold
        check_scaffold(api, tmp_path)
        checked += 1
    assert checked > 0
