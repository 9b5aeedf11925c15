"""Spec loading (`gateway.spec.load_spec`): the shared corpus of real specs, then each rule on small specs."""

from __future__ import annotations

import functools
import http.server
import json
import textwrap
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import SpecError
from gateway.spec import ApiModel, Operation, load_spec, pointer

SPECS = Path(__file__).resolve().parents[2] / "shared" / "specs"
_DATA_KEYS = {"example", "examples", "default", "enum", "const"}


def _manifest() -> list[dict[str, str]]:
    if not (SPECS / "MANIFEST.tsv").exists():
        return []
    lines = (SPECS / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=False)) for line in lines[1:] if line.strip()]


MANIFEST = _manifest()


def _corpus(name: str) -> Path:
    path = SPECS / name
    if not path.exists():
        pytest.skip("the shared spec corpus (../shared/specs) is not available")
    return path


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _op(api: ApiModel, operation_id: str) -> Operation:
    return next(op for op in api.operations if op.operation_id == operation_id)


def _refs(node: Any) -> Iterator[str]:
    """Every `$ref` in a structure, not looking into data (examples, defaults, enums, extensions)."""
    if isinstance(node, Mapping):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for key, value in node.items():
            if key not in _DATA_KEYS and not key.startswith("x-"):
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _operation_schemas(op: Operation) -> Iterator[Any]:
    yield from (param.schema for param in op.parameters)
    bodies = op.request_body.content if op.request_body else ()
    for media in (*bodies, *(m for response in op.responses for m in response.content)):
        if media.schema is not None:
            yield media.schema


def _assert_refs_resolve(api: ApiModel) -> int:
    """Follow every `$ref` reachable from the operations' schemas; each must resolve in the bundled document."""
    checked: set[str] = set()
    pending = [ref for op in api.operations for schema in _operation_schemas(op) for ref in _refs(schema)]
    while pending:
        ref = pending.pop()
        if ref in checked:
            continue
        checked.add(ref)
        assert ref.startswith("#"), f"{api.source}: external $ref left in the bundled document: {ref}"
        target = pointer.resolve(api.document, ref)  # KeyError if bundling missed it
        pending.extend(_refs(target))
    return len(checked)


# --- the shared corpus -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("row", MANIFEST or [None], ids=lambda row: row["file"] if row else "no-corpus")
def test_corpus_spec_loads_with_every_operation_and_ref(row: dict[str, str] | None) -> None:
    if row is None:
        pytest.skip("the shared spec corpus (../shared/specs) is not available")
    api = load_spec(str(_corpus(row["file"])))
    # The manifest counts every method under `paths`, `x-ms-paths` and path-item refs, not webhooks or callbacks:
    # exactly what the loader turns into operations, so the counts are equal (no operation of the corpus is skipped).
    assert len(api.operations) == int(row["operations"])
    assert api.dialect == ("openapi-3.1" if api.spec_version.startswith("3.1") else "openapi-3.0")
    _assert_refs_resolve(api)
    json.dumps(api.document)  # finite and JSON-serialisable: no datetimes from YAML, no inlined recursion
    for op in api.operations:
        assert op.method in ("get", "put", "post", "delete", "options", "head", "patch", "trace")
        assert pointer.resolve(api.document, op.pointer) is not None
        assert all(isinstance(response.status, str) for response in op.responses)


def test_every_structural_ref_of_a_multi_file_spec_is_internal() -> None:
    api = load_spec(str(_corpus("azure--compute-rm-2019-03-01/compute.json")))
    refs = list(_refs(api.document))
    assert refs and all(ref.startswith("#") for ref in refs)
    for ref in refs:
        pointer.resolve(api.document, ref)


def test_petstore_separate_resolves_refs_into_other_files() -> None:
    api = load_spec(str(_corpus("oai--v2.0-petstore-separate/spec/swagger.json")))
    find = _op(api, "findPets")
    assert [(p.name, p.location, p.style, p.explode) for p in find.parameters] == [
        ("tags", "query", "form", False),  # parameters.json#/tagsParam: an array, collectionFormat csv
        ("limit", "query", "form", True),
    ]
    ok = next(r for r in find.responses if r.status == "200").content[0]
    pet = pointer.resolve(api.document, ok.schema["items"]["$ref"])
    assert set(pet["required"]) == {"id", "name"}  # Pet.json
    error = pointer.resolve(
        api.document, next(r for r in find.responses if r.status == "default").content[0].schema["$ref"]
    )
    assert set(error["properties"]) == {"code", "message"}  # ../common/Error.json
    new_pet = pointer.resolve(api.document, _op(api, "addPet").request_body.content[0].schema["$ref"])
    assert pointer.resolve(api.document, new_pet["allOf"][0]["$ref"]) is pet  # NewPet.json -> Pet.json, one copy
    assert not api.warnings


def test_openapi31_ref_to_a_schema_id_and_anchor() -> None:
    api = load_spec(str(_corpus("swagger-petstore--v31-code-first.yaml")))
    pet = api.document["components"]["schemas"]["Pet"]["properties"]
    details = api.document["components"]["schemas"]["PetDetails"]
    assert pointer.resolve(api.document, pet["petDetails"]["$ref"]) is details  # `$ref: /api/v31/.../petdetails`
    assert pointer.resolve(api.document, pet["petDetailsId"]["$ref"]) is details["properties"]["id"]  # `#anchor`
    assert (
        pointer.resolve(api.document, details["properties"]["tag"]["$ref"])
        is api.document["components"]["schemas"]["Tag"]
    )
    assert "$id" not in details  # its refs are internal now; a $id would change their base for a validator
    assert api.dialect == "openapi-3.1"
    assert not api.warnings


def test_recursive_schemas_keep_their_refs(tmp_path: Path) -> None:
    spec = _write(
        tmp_path,
        "tree.yaml",
        """\
        openapi: 3.0.3
        info: {title: Tree, version: "1"}
        paths:
          /nodes:
            get:
              operationId: getTree
              responses:
                "200":
                  description: the tree
                  content:
                    application/json:
                      schema: {$ref: '#/components/schemas/Node'}
        components:
          schemas:
            Node:
              type: object
              properties:
                children: {type: array, items: {$ref: '#/components/schemas/Node'}}
        """,
    )
    api = load_spec(str(spec))
    schema = _op(api, "getTree").responses[0].content[0].schema
    assert schema == {"$ref": "#/components/schemas/Node"}
    node = pointer.resolve(api.document, schema["$ref"])
    assert node["properties"]["children"]["items"] == {"$ref": "#/components/schemas/Node"}
    json.dumps(api.document)


def test_recursive_schema_in_the_corpus_stays_finite() -> None:
    api = load_spec(str(_corpus("apisguru--amazonaws.com--dynamodb--2012-08-10.yaml")))
    start = "#/components/schemas/AttributeValue"
    reachable: set[str] = set()
    pending = list(_refs(pointer.resolve(api.document, start)))
    while pending:  # AttributeValue -> MapAttributeValue / ListAttributeValue -> AttributeValue
        ref = pending.pop()
        if ref not in reachable:
            reachable.add(ref)
            pending.extend(_refs(pointer.resolve(api.document, ref)))
    assert start in reachable
    json.dumps(api.document)  # a cycle through $ref, not through Python objects


def test_github_example_payloads_with_ref_keys_are_left_alone() -> None:
    api = load_spec(str(_corpus("github--api.github.com.json")))
    members = api.document["components"]["examples"]["scim-enterprise-group"]["value"]["members"]
    assert members[0]["$ref"].startswith("https://api.github.com/scim/v2/")
    assert not api.warnings


# --- Swagger 2.0 -------------------------------------------------------------------------------------------------

SWAGGER2 = """\
swagger: "2.0"
info: {title: Shop, version: "2.1"}
host: shop.example.com
basePath: /api/
schemes: [http, https]
consumes: [application/json]
produces: [application/json, application/xml]
securityDefinitions:
  basicAuth: {type: basic}
  key: {type: apiKey, name: X-Key, in: header}
  oauth: {type: oauth2, flow: accessCode, authorizationUrl: "https://a/auth", tokenUrl: "https://a/token",
          scopes: {read: Read things}}
  robot: {type: oauth2, flow: application, tokenUrl: "https://a/token", scopes: {}}
security: [{key: []}]
parameters:
  tagsParam: {name: tags, in: query, type: array, items: {type: string}, collectionFormat: multi}
paths:
  /items/{itemId}:
    parameters:
      - {name: itemId, in: path, type: integer, format: int64, description: Item id}
    get:
      operationId: getItem
      parameters:
        - $ref: '#/parameters/tagsParam'
        - {name: ids, in: query, type: array, items: {type: integer}}
        - {name: words, in: query, type: array, items: {type: string}, collectionFormat: ssv}
        - {name: bars, in: query, type: array, items: {type: string}, collectionFormat: pipes}
        - {name: tabs, in: query, type: array, items: {type: string}, collectionFormat: tsv}
        - {name: X-Ids, in: header, type: array, items: {type: string}}
        - {name: limit, in: query, type: integer, minimum: 1, maximum: 100, default: 10, x-nullable: true}
      responses:
        "200": {description: An item, schema: {$ref: '#/definitions/Item'}}
        "404": {description: Not found}
    put:
      operationId: putItem
      consumes: [application/json, text/plain]
      security: []
      parameters:
        - {name: item, in: body, required: true, description: The item, schema: {$ref: '#/definitions/Item'}}
      responses:
        default: {description: Done}
    post:
      operationId: formItem
      parameters:
        - {name: name, in: formData, type: string, required: true, description: The name}
        - {name: colors, in: formData, type: array, items: {type: string}}
      responses:
        "204": {description: Saved}
  /items/{itemId}/photo:
    post:
      operationId: uploadPhoto
      consumes: [application/x-www-form-urlencoded]
      parameters:
        - {name: itemId, in: path, required: true, type: integer}
        - {name: photo, in: formData, type: file, description: The photo}
        - {name: caption, in: formData, type: string}
      produces: [image/png]
      responses:
        "200": {description: The stored photo, schema: {type: file}}
definitions:
  Item: {type: object, properties: {id: {type: integer}}}
"""


def test_swagger2_parameters_become_openapi3_parameters(tmp_path: Path) -> None:
    api = load_spec(str(_write(tmp_path, "shop.yaml", SWAGGER2)))
    assert api.spec_version == "2.0" and api.dialect == "openapi-3.0"
    params = {p.name: p for p in _op(api, "getItem").parameters}
    assert list(params) == ["itemId", "tags", "ids", "words", "bars", "tabs", "X-Ids", "limit"]  # path level first
    assert params["itemId"].required and params["itemId"].style == "simple" and not params["itemId"].explode
    assert params["itemId"].schema == {"type": "integer", "format": "int64"}
    assert params["itemId"].description == "Item id"
    styles = {name: (p.style, p.explode) for name, p in params.items()}
    assert styles["tags"] == ("form", True)  # multi
    assert styles["ids"] == ("form", False)  # csv, the default
    assert styles["words"] == ("spaceDelimited", False)
    assert styles["bars"] == ("pipeDelimited", False)
    assert styles["tabs"] == ("tabDelimited", False)  # tsv: joined with tabs by the request builder
    assert styles["X-Ids"] == ("simple", False)
    assert params["limit"].schema == {
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "default": 10,
        "x-nullable": True,
    }
    assert params["tags"].schema == {"type": "array", "items": {"type": "string"}}
    assert not any("tsv" in w.message for w in api.warnings)  # tsv is supported now


def test_swagger2_bodies_responses_servers_and_security(tmp_path: Path) -> None:
    api = load_spec(str(_write(tmp_path, "shop.yaml", SWAGGER2)))
    get = _op(api, "getItem")
    ok = next(r for r in get.responses if r.status == "200")
    assert [m.content_type for m in ok.content] == ["application/json", "application/xml"]  # produces
    assert ok.content[0].schema == {"$ref": "#/definitions/Item"}
    assert next(r for r in get.responses if r.status == "404").content == ()
    assert get.request_body is None and get.security is None

    put = _op(api, "putItem")
    assert put.request_body is not None and put.request_body.required
    assert put.request_body.description == "The item"
    assert [m.content_type for m in put.request_body.content] == ["application/json", "text/plain"]
    assert put.security == ()
    assert [p.name for p in put.parameters] == ["itemId"]  # the body is not a parameter

    form = _op(api, "formItem").request_body
    assert form is not None and form.required
    assert [m.content_type for m in form.content] == ["application/x-www-form-urlencoded"]
    assert form.content[0].schema == {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "The name"},
            "colors": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name"],
    }
    assert form.content[0].encoding["colors"].style == "form" and form.content[0].encoding["colors"].explode is False

    upload = _op(api, "uploadPhoto")
    assert [m.content_type for m in upload.request_body.content] == ["multipart/form-data"]  # a file forces it
    photo = upload.request_body.content[0].schema["properties"]["photo"]
    assert photo == {"type": "string", "format": "binary", "description": "The photo"}
    assert not upload.request_body.required
    assert upload.responses[0].content[0].content_type == "image/png"
    assert upload.responses[0].content[0].schema == {"type": "string", "format": "binary"}

    assert [s.url for s in api.servers] == ["https://shop.example.com/api", "http://shop.example.com/api"]
    assert api.security == ({"key": ()},)
    assert api.security_schemes["basicAuth"] == {"type": "http", "scheme": "basic"}
    assert api.security_schemes["key"] == {"type": "apiKey", "name": "X-Key", "in": "header"}
    assert api.security_schemes["oauth"]["flows"] == {
        "authorizationCode": {
            "authorizationUrl": "https://a/auth",
            "tokenUrl": "https://a/token",
            "scopes": {"read": "Read things"},
        }
    }
    assert api.security_schemes["robot"]["flows"] == {
        "clientCredentials": {"tokenUrl": "https://a/token", "scopes": {}}
    }
    assert api.title == "Shop" and api.version == "2.1"


def test_swagger2_without_host_has_a_relative_server(tmp_path: Path) -> None:
    spec = _write(
        tmp_path,
        "nohost.json",
        json.dumps({"swagger": "2.0", "info": {"title": "t", "version": "1"}, "basePath": "/v2", "paths": {}}),
    )
    api = load_spec(str(spec))
    assert [s.url for s in api.servers] == ["/v2"]
    assert api.operations == () and any("no operations" in w.message for w in api.warnings)


def test_azure_x_ms_paths_and_parameterized_host() -> None:
    face = load_spec(str(_corpus("azure--cognitiveservices-face-v1.0/Face/stable/v1.0/Face.json")))
    assert [(s.url, list(s.variables)) for s in face.servers] == [("{Endpoint}/face/v1.0", ["Endpoint"])]
    verify = [op for op in face.operations if op.path.startswith("/verify")]
    assert {op.path for op in verify} == {"/verify", "/verify?overload=person"}
    qualified = next(op for op in verify if "?" in op.path)
    assert qualified.pointer.startswith("#/x-ms-paths/")
    assert all(p.name != "Endpoint" for op in face.operations for p in op.parameters)
    image_url = _op(face, "Face_DetectWithUrl")
    assert image_url.request_body is not None  # `../../../Common/Parameters.json#/parameters/ImageUrl`

    lake = load_spec(str(_corpus("azure--datalake-store-filesystem-2016-11-01/filesystem.json")))
    (server,) = lake.servers
    assert server.url == "https://{accountName}.{adlsFileSystemDnsSuffix}"  # useSchemePrefix defaults to true
    assert server.variables["adlsFileSystemDnsSuffix"].default == "azuredatalakestore.net"
    assert "/webhdfs/v1/{path}?op=LISTSTATUS" in {op.path for op in lake.operations}
    assert all(p.name not in server.variables for op in lake.operations for p in op.parameters)

    storage = load_spec(str(_corpus(MANIFEST_PATH_STORAGE)))
    names = {p.name for op in storage.operations for p in op.parameters}
    assert {"api-version", "subscriptionId"} <= names  # from common-types/resource-management/v1/types.json
    assert storage.security_schemes["azure_auth"]["flows"]["implicit"]["scopes"] == {
        "user_impersonation": "impersonate your user account"
    }


MANIFEST_PATH_STORAGE = (
    "azure--storage-rm-2019-04-01/storage/resource-manager/Microsoft.Storage/stable/2019-04-01/storage.json"
)


# --- OpenAPI 3 ---------------------------------------------------------------------------------------------------

OPENAPI3 = """\
openapi: 3.0.3
info: {title: Things, version: "1.0", description: All the things}
servers: [{url: "https://{region}.things.example/v1", variables: {region: {default: eu, enum: [eu, us]}}}]
security: [{bearer: []}]
components:
  securitySchemes:
    bearer: {type: http, scheme: bearer}
  parameters:
    Limit: {name: limit, in: query, schema: {type: integer}}
paths:
  /things/{id}:
    servers: [{url: "https://path-level.example"}]
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}}
      - {name: verbose, in: query, schema: {type: boolean}, description: path level}
    patch:
      operationId: patchThing
      responses: {"200": {description: ok}}
    get:
      operationId: getThing
      deprecated: true
      x-rate-limit: 10
      servers: [{url: "https://op-level.example"}]
      parameters:
        - {name: verbose, in: query, schema: {type: integer}, description: operation level}
        - $ref: '#/components/parameters/Limit'
        - {name: filter, in: query, content: {application/json: {schema: {type: object}}}}
        - {name: ids, in: query, style: spaceDelimited, schema: {type: array, items: {type: string}}}
        - {name: X-Trace, in: header, schema: {type: string}}
        - {name: Authorization, in: header, schema: {type: string}}
        - {name: session, in: cookie, schema: {type: string}}
        - {name: deep, in: query, style: deepObject, explode: true, schema: {type: object}}
      callbacks:
        done:
          "{$request.body#/url}":
            post: {responses: {"200": {description: ok}}}
      responses:
        "200": {description: ok, content: {application/json: {schema: {type: object}}}}
        "4XX": {description: client error}
        default: {description: other}
    delete:
      operationId: deleteThing
      security: []
      responses: {"204": {description: deleted}}
webhooks:
  thingCreated:
    post: {responses: {"200": {description: ok}}}
"""


def test_openapi3_operations_parameters_and_servers(tmp_path: Path) -> None:
    api = load_spec(str(_write(tmp_path, "things.yaml", OPENAPI3.replace("openapi: 3.0.3", "openapi: 3.1.0"))))
    assert [op.operation_id for op in api.operations] == ["getThing", "deleteThing", "patchThing"]  # method order
    get = _op(api, "getThing")
    assert get.deprecated and get.extensions == {"x-rate-limit": 10} and get.security is None
    params = {p.name: p for p in get.parameters}
    assert list(params) == ["id", "verbose", "limit", "filter", "ids", "X-Trace", "session", "deep"]  # no Authorization
    assert params["verbose"].description == "operation level" and params["verbose"].schema == {"type": "integer"}
    assert params["id"].required and (params["id"].style, params["id"].explode) == ("simple", False)
    assert (params["limit"].style, params["limit"].explode) == ("form", True)
    assert (params["filter"].media_type, params["filter"].schema) == ("application/json", {"type": "object"})
    assert (params["ids"].style, params["ids"].explode) == ("spaceDelimited", False)
    assert (params["X-Trace"].style, params["X-Trace"].explode) == ("simple", False)
    assert (params["session"].style, params["session"].explode) == ("form", True)
    assert (params["deep"].style, params["deep"].explode) == ("deepObject", True)
    assert [r.status for r in get.responses] == ["200", "4XX", "default"]
    assert [s.url for s in get.servers] == ["https://op-level.example"]
    assert [s.url for s in _op(api, "patchThing").servers] == ["https://path-level.example"]
    assert _op(api, "deleteThing").security == ()
    assert api.security == ({"bearer": ()},) and api.security_schemes == {
        "bearer": {"type": "http", "scheme": "bearer"}
    }
    (server,) = api.servers
    assert server.resolved_url() == "https://eu.things.example/v1" and server.variables["region"].enum == ("eu", "us")
    assert (api.title, api.version, api.description) == ("Things", "1.0", "All the things")
    assert api.dialect == "openapi-3.1" and not api.warnings


def test_newer_openapi_3_loads_as_31_with_a_warning(tmp_path: Path) -> None:
    api = load_spec(str(_write(tmp_path, "things.yaml", OPENAPI3.replace("openapi: 3.0.3", "openapi: 3.2.0"))))
    assert api.dialect == "openapi-3.1" and api.spec_version == "3.2.0"
    assert any("3.2.0" in w.message and w.where.endswith("#/openapi") for w in api.warnings)
    assert len(api.operations) == 3


def test_webhooks_only_spec_loads_with_a_warning() -> None:
    api = load_spec(str(_corpus("oai--v3.1-webhook-example.yaml")))
    assert api.operations == ()
    assert any("webhooks" in w.message for w in api.warnings)


def test_schema_violations_are_warnings_naming_the_pointer(tmp_path: Path) -> None:
    spec = _write(
        tmp_path,
        "lax.yaml",
        """\
        openapi: 3.0.0
        info: {title: Lax, version: "1"}
        paths:
          /a:
            get:
              operationId: lax
              parameters:
                - {name: q, in: query, schema: {type: strin}}
              responses: {"200": {content: {}}}
        """,
    )
    api = load_spec(str(spec))
    assert [op.operation_id for op in api.operations] == ["lax"]
    wheres = {w.where.split("#", 1)[1] for w in api.warnings}
    assert "/paths/~1a/get/parameters/0/schema/type" in wheres
    assert "/paths/~1a/get/responses/200/description" in wheres
    # Serving skips this advisory lint (it starts faster); the same operation loads, without those warnings.
    unlinted = load_spec(str(spec), lint=False)
    assert unlinted.operations == api.operations and not unlinted.warnings


# --- YAML quirks -------------------------------------------------------------------------------------------------


def test_yaml_is_read_as_yaml_1_2(tmp_path: Path) -> None:
    spec = _write(
        tmp_path,
        "quirks.yaml",
        """\
        openapi: 3.0.0
        info: {title: Quirks, version: 1.10}
        paths:
          /days:
            get:
              operationId: days
              parameters:
                - name: answer
                  in: query
                  schema: {type: string, enum: [yes, no, on, off, y, n], example: 2020-01-01}
                - name: when
                  in: query
                  schema: {type: string, format: date-time, default: 2001-12-14t21:59:43.10-05:00}
              responses:
                200:
                  description: ok
                  content:
                    application/json:
                      example: {day: 2020-01-01, zip: 010, big: 1e3}
        """,
    )
    api = load_spec(str(spec))
    days = _op(api, "days")
    answer, when = days.parameters
    assert answer.schema["enum"] == ["yes", "no", "on", "off", "y", "n"]
    assert answer.schema["example"] == "2020-01-01"
    assert when.schema["default"] == "2001-12-14t21:59:43.10-05:00"
    assert [r.status for r in days.responses] == ["200"]
    assert days.responses[0].content[0].example == {"day": "2020-01-01", "zip": 10, "big": 1000.0}
    assert api.version == "1.1"  # a float in YAML: written `1.10`, read as the number 1.1 (quote versions!)
    json.dumps(api.document)


# --- bad input ---------------------------------------------------------------------------------------------------


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(str(tmp_path / "nope.yaml"))
    assert "nope.yaml" in info.value.where and "not found" in info.value.message


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    spec = _write(tmp_path, "broken.yaml", "openapi: 3.0.0\ninfo:\n  title: [unclosed\npaths: {}\n")
    with pytest.raises(SpecError) as info:
        load_spec(str(spec))
    assert info.value.where.startswith(str(spec) + ":") and info.value.where.rsplit(":", 1)[1].isdigit()
    assert "invalid YAML" in info.value.message


def test_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    spec = _write(tmp_path, "broken.json", '{\n  "openapi": "3.0.0",\n  "paths": {]\n}\n')
    with pytest.raises(SpecError) as info:
        load_spec(str(spec))
    assert info.value.where == f"{spec}:3"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"name": "not an API"}', "no `openapi` or `swagger`"),
        ("- a\n- b\n", "not a mapping"),
        ("", "not a mapping"),
        ('{"openapi": "4.0.0", "paths": {}}', "unsupported OpenAPI version"),
        ('{"swagger": "1.2", "paths": {}}', "unsupported Swagger version"),
        ('{"swaggerVersion": "1.2", "apis": []}', "Swagger 1.2"),
        ('{"openapi": "3.0.0", "paths": []}', "`paths` must be a map"),
    ],
)
def test_unusable_documents_are_spec_errors(tmp_path: Path, text: str, fragment: str) -> None:
    spec = _write(tmp_path, "doc.yaml", text)
    with pytest.raises(SpecError) as info:
        load_spec(str(spec))
    assert fragment in info.value.message and str(spec) in info.value.where


def test_a_broken_operation_is_skipped_and_the_others_load(tmp_path: Path) -> None:
    spec = _write(
        tmp_path,
        "partly.yaml",
        """\
        openapi: 3.0.0
        info: {title: Partly, version: "1"}
        paths:
          /ok:
            get:
              operationId: fine
              responses:
                "200":
                  description: ok
                  content: {application/json: {schema: {$ref: 'missing.yaml#/Thing'}}}
          /bad:
            get:
              operationId: brokenRef
              parameters: [{$ref: '#/components/parameters/Nope'}]
              responses: {"200": {description: ok}}
            post:
              operationId: noIn
              parameters: [{name: q, schema: {type: string}}]
              responses: {"200": {description: ok}}
            put:
              operationId: remoteRef
              requestBody: {$ref: 'http://127.0.0.1:9/body.json'}
              responses: {"200": {description: ok}}
        components:
          parameters: {}
        """,
    )
    api = load_spec(str(spec))
    assert [op.operation_id for op in api.operations] == ["fine"]
    messages = [str(w) for w in api.warnings]
    assert any("#/paths/~1bad/get/parameters/0" in m and "skipped" in m and "Nope" in m for m in messages)
    assert any("#/paths/~1bad/post/parameters/0" in m and "no `in`" in m for m in messages)
    assert any("#/paths/~1bad/put" in m and "not fetched" in m for m in messages)  # never fetched from a file spec
    # A missing schema file: a permissive placeholder, a warning, and the operation still works.
    schema = _op(api, "fine").responses[0].content[0].schema
    placeholder = pointer.resolve(api.document, schema["$ref"])
    assert "missing.yaml" in placeholder["x-gateway-unresolved"] and "not found" in placeholder["x-gateway-unresolved"]
    assert any("missing.yaml#/Thing" in m and "/paths/~1ok/get/responses/200" in m for m in messages)


def test_external_refs_relative_to_the_file_that_holds_them(tmp_path: Path) -> None:
    _write(tmp_path, "common/types.yaml", "Id: {type: string, format: uuid}\nPair: {items: {$ref: '#/Id'}}\n")
    _write(
        tmp_path,
        "api/params.yaml",
        "Id: {name: id, in: path, required: true, schema: {$ref: '../common/types.yaml#/Id'}}\n",
    )
    spec = _write(
        tmp_path,
        "api/spec.yaml",
        """\
        openapi: 3.0.0
        info: {title: Files, version: "1"}
        paths:
          /a/{id}:
            $ref: 'paths.yaml#/A'
        components:
          schemas:
            Local: {type: object}
            Shape:
              oneOf: [{$ref: '#/components/schemas/Local'}, {$ref: '../common/types.yaml#/Pair'}]
              discriminator: {propertyName: kind, mapping: {local: Local, pair: '../common/types.yaml#/Pair'}}
        """,
    )
    _write(
        tmp_path,
        "api/paths.yaml",
        """\
        A:
          get:
            operationId: getA
            parameters: [{$ref: 'params.yaml#/Id'}]
            responses:
              "200": {description: ok, content: {application/json: {schema: {$ref: '../common/types.yaml#/Pair'}}}}
        """,
    )
    api = load_spec(str(spec))
    get = _op(api, "getA")
    assert get.path == "/a/{id}" and get.pointer.startswith("#/x-gateway-bundle/files/")
    id_schema = pointer.resolve(api.document, get.parameters[0].schema["$ref"])
    assert id_schema == {"type": "string", "format": "uuid"}
    pair = pointer.resolve(api.document, get.responses[0].content[0].schema["$ref"])
    assert pointer.resolve(api.document, pair["items"]["$ref"]) is id_schema
    assert _assert_refs_resolve(api) == 2 and not api.warnings  # types.yaml#/Id (twice), types.yaml#/Pair
    shape = api.document["components"]["schemas"]["Shape"]
    assert shape["discriminator"]["mapping"] == {"local": "Local", "pair": shape["oneOf"][1]["$ref"]}
    assert pointer.resolve(api.document, shape["oneOf"][1]["$ref"]) is pair


def test_warnings_name_the_file_the_problem_is_in(tmp_path: Path) -> None:
    _write(tmp_path, "params.yaml", "Q: {name: q, in: query, schema: {$ref: 'types.yaml#/Missing'}}\n")
    _write(tmp_path, "types.yaml", "Present: {type: string}\n")
    spec = _write(
        tmp_path,
        "spec.yaml",
        """\
        openapi: 3.0.0
        info: {title: Where, version: "1"}
        paths:
          /q:
            get:
              operationId: getQ
              parameters: [{$ref: 'params.yaml#/Q'}, {$ref: 'params.yaml#/Nope'}]
              responses: {"200": {description: ok}}
        """,
    )
    api = load_spec(str(spec))
    assert api.operations == ()  # its second parameter cannot be resolved
    wheres = {str(w) for w in api.warnings}
    assert any(w.startswith(f"{tmp_path / 'params.yaml'}#/Q/schema: cannot resolve $ref") for w in wheres)
    assert any(
        w.startswith(f"{spec}#/paths/~1q/get/parameters/1: cannot resolve $ref 'params.yaml#/Nope'") for w in wheres
    )
    assert any(w.startswith(f"{spec}#/paths/~1q/get/parameters/1: operation GET /q skipped") for w in wheres)


# --- loading from a URL ------------------------------------------------------------------------------------------


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on 127.0.0.1 serving the files of a temporary folder."""
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_load_from_url_with_a_relative_external_ref(http_root: tuple[str, Path]) -> None:
    url, folder = http_root
    _write(folder, "v1/schemas/pet.yaml", "Pet: {type: object, properties: {name: {type: string}}}\n")
    _write(folder, "secret.yaml", "Secret: {type: string}\n")
    _write(
        folder,
        "v1/openapi.yaml",
        f"""\
        openapi: 3.0.0
        info: {{title: Remote, version: "1"}}
        servers: [{{url: /api}}]
        paths:
          /pets:
            get:
              operationId: listPets
              responses:
                "200":
                  description: ok
                  content: {{application/json: {{schema: {{$ref: 'schemas/pet.yaml#/Pet'}}}}}}
            post:
              operationId: addPet
              requestBody:
                content: {{application/json: {{schema: {{$ref: 'file://{folder}/secret.yaml#/Secret'}}}}}}
              responses: {{"200": {{description: ok}}}}
        """,
    )
    api = load_spec(f"{url}/v1/openapi.yaml")
    assert api.source == f"{url}/v1/openapi.yaml"
    pet = pointer.resolve(api.document, _op(api, "listPets").responses[0].content[0].schema["$ref"])
    assert pet["properties"] == {"name": {"type": "string"}}
    assert [s.url for s in api.servers] == [f"{url}/api"]  # relative to where the document is served
    assert any("local file reference not read" in w.message for w in api.warnings)  # a URL spec reads no files
    _assert_refs_resolve(api)


def test_url_that_is_not_there_is_a_spec_error(http_root: tuple[str, Path]) -> None:
    url, _ = http_root
    with pytest.raises(SpecError) as info:
        load_spec(f"{url}/missing.json")
    assert info.value.where == f"{url}/missing.json" and "404" in info.value.message


# --- start-up cost -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["github--api.github.com.json", "openai--openapi.yaml"])
def test_large_spec_load_time(name: str) -> None:
    path = _corpus(name)
    started = time.perf_counter()
    api = load_spec(str(path))
    print(f"load_spec({name}): {time.perf_counter() - started:.3f} s, {len(api.operations)} operations")
    assert api.operations


def test_accept_headers_and_azure_parameter_extensions_are_kept(tmp_path: Path) -> None:
    api = load_spec(str(_write(tmp_path, "a.yaml", """
        openapi: 3.0.3
        info: {title: t, version: '1'}
        paths:
          /r/{id}:
            get:
              operationId: r
              parameters:
                - {name: id, in: path, required: true, schema: {type: string}, x-ms-skip-url-encoding: true}
                - {name: Accept, in: header, schema: {type: string, enum: [text/csv]}}
                - {name: Content-Type, in: header, schema: {type: string}}
                - {name: Authorization, in: header, schema: {type: string}}
              responses: {'200': {description: ok}}
        """)))
    params = {p.name: p for p in _op(api, "r").parameters}
    assert list(params) == ["id", "Accept"]  # Content-Type and Authorization stay ignored, as OpenAPI says
    assert params["id"].skip_url_encoding and not params["Accept"].skip_url_encoding
