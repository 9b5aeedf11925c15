"""Spec fidelity end to end: tiny specs, a real recording upstream, the gateway under uvicorn, the SDK's Client.

Each test writes a small spec for one construct, serves a Starlette upstream on 127.0.0.1 that records every
request and answers what the test set for its path, and checks both what the model sees (tool schemas,
results) and what the upstream received (Accept, query, body bytes).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree

import jsonschema
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.config import config_from_args
from gateway.runtime import load_gateway
from tests.conftest import ServerThread
from tests.gateway_harness import connect, running_gateway, text_of

pytestmark = pytest.mark.anyio


@dataclass
class Seen:
    method: str
    path: str  # raw, still percent-encoded
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Upstream:
    """Records requests; answers `answers[path] = (status, content type, body)` (default: 200 `{}`)."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    answers: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)

    @property
    def last(self) -> Seen:
        return self.seen[-1]


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    state = Upstream()

    async def record(request: Request) -> Response:
        raw_path = request.scope.get("raw_path", b"").decode()
        state.seen.append(Seen(request.method, raw_path, request.url.query, dict(request.headers),
                               await request.body()))
        status, media, body = state.answers.get(request.url.path, (200, "application/json", b"{}"))
        return Response(body, status_code=status, media_type=media)

    app = Starlette(routes=[Route("/{rest:path}", record, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])])
    with ServerThread(app) as server:
        state.url = server.url
        yield state


def write_spec(folder: Path, spec: dict[str, Any]) -> str:
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return str(path)


def oas3(paths: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": paths, **extra}


def ok(content: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"200": {"description": "ok", **({"content": content} if content else {})}}


# -- answers that are not plain JSON -------------------------------------------------------------------


NON_JSON = oas3({
    "/games": {"get": {"operationId": "games", "responses": {
        "200": {"description": "ok", "content": {"application/x-ndjson": {"schema": {
            "type": "object", "properties": {"id": {"type": "string"}}}}}},
        "default": {"description": "error", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    "/report": {"get": {"operationId": "report", "responses": ok({"text/csv": {"schema": {"type": "string"}}})}},
    "/pgn": {"get": {"operationId": "pgn", "parameters": [
        {"name": "Accept", "in": "header", "required": True,
         "schema": {"type": "string", "enum": ["application/x-chess-pgn", "application/json"]}}],
        "responses": ok({"application/x-chess-pgn": {"schema": {"type": "string"}},
                         "application/json": {"schema": {"type": "object"}}})}},
    "/seq": {"get": {"operationId": "seq", "responses": ok({"application/json-seq": {"schema": {"type": "object"}}})}},
    "/problem": {"get": {"operationId": "problem", "responses": ok(
        {"application/vnd.thing+json": {"schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}})}},
})


async def test_answers_declared_only_as_other_media_types_are_asked_for_as_declared(upstream, tmp_path):
    with running_gateway(write_spec(tmp_path, NON_JSON), upstream.url) as (_, url):
        async with connect(url) as client:
            upstream.answers["/report"] = (200, "text/csv", b"a,b\n1,2\n")
            report = await client.call_tool("report", {})
            assert upstream.last.headers["accept"] == "text/csv"  # never application/json, which it does not declare
            assert not report.is_error and text_of(report) == "a,b\n1,2\n"
            upstream.answers["/games"] = (200, "application/x-ndjson", b'{"id":"a"}\n{"id":"b"}\n')
            await client.call_tool("games", {})
            assert upstream.last.headers["accept"] == "application/x-ndjson"  # the success answer's, not default's


async def test_a_spec_declared_accept_parameter_is_an_argument_and_wins(upstream, tmp_path):
    with running_gateway(write_spec(tmp_path, NON_JSON), upstream.url) as (_, url):
        async with connect(url) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            accept = tools["pgn"].input_schema["properties"]["Accept"]
            assert accept["enum"] == ["application/x-chess-pgn", "application/json"]
            assert accept["default"] == "application/x-chess-pgn"  # required, no default: the first value
            assert "Accept" not in tools["pgn"].input_schema.get("required", [])
            upstream.answers["/pgn"] = (200, "application/x-chess-pgn", b'[Event "Casual"]\n\n1. e4 e5 *\n')
            result = await client.call_tool("pgn", {})
            assert upstream.last.headers["accept"] == "application/x-chess-pgn"
            assert not result.is_error and "1. e4 e5" in text_of(result)  # text, not an opaque blob
            upstream.answers["/pgn"] = (200, "application/json", b'{"a":1}')
            await client.call_tool("pgn", {"Accept": "application/json"})
            assert upstream.last.headers["accept"] == "application/json"
            refused = await client.call_tool("pgn", {"Accept": "text/html"})
            assert refused.is_error and "/Accept" in text_of(refused)


@pytest.mark.parametrize("legacy", [False, True], ids=["2026-07-28", "2025-11-25"])
async def test_line_delimited_json_becomes_a_list_of_records(upstream, tmp_path, legacy):
    with running_gateway(write_spec(tmp_path, NON_JSON), upstream.url) as (_, url):
        async with connect(url, legacy=legacy) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            schema = tools["games"].output_schema
            jsonschema.Draft202012Validator.check_schema(schema)
            upstream.answers["/games"] = (200, "application/x-ndjson", b'{"id":"a"}\n\n{"id":"b"}\n')
            result = await client.call_tool("games", {})  # the SDK client checks it against the output schema
            assert not result.is_error, text_of(result)
            records = result.structured_content["result"] if legacy else result.structured_content
            assert records == [{"id": "a"}, {"id": "b"}]
            upstream.answers["/seq"] = (200, "application/json-seq", b'\x1e{"n":1}\n\x1e{"n":2}\n')
            seq = await client.call_tool("seq", {})
            assert (seq.structured_content["result"] if legacy else seq.structured_content) == [{"n": 1}, {"n": 2}]
            upstream.answers["/games"] = (200, "application/x-ndjson", b'{"id":"a"}\nnot json\n')
            broken = await client.call_tool("games", {})
            assert broken.is_error and "line 2 is not JSON" in text_of(broken)


async def test_structured_suffix_json_is_parsed_and_a_mislabelled_answer_is_an_error(upstream, tmp_path):
    with running_gateway(write_spec(tmp_path, NON_JSON), upstream.url) as (_, url):
        async with connect(url) as client:
            upstream.answers["/problem"] = (200, "application/vnd.thing+json", b'{"a":1}')
            good = await client.call_tool("problem", {})
            assert not good.is_error and good.structured_content == {"a": 1}
            upstream.answers["/problem"] = (200, "application/vnd.thing+json", b"<html>oops</html>")
            bad = await client.call_tool("problem", {})
            assert bad.is_error and "invalid JSON" in text_of(bad)


XML_ANSWER = oas3({"/pets/{id}": {"get": {"operationId": "pet", "parameters": [
    {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
    "responses": ok({"application/xml": {"schema": {"$ref": "#/components/schemas/Pet"}}})}}},
    components={"schemas": {"Pet": {"type": "object", "xml": {"name": "pet"}, "properties": {
        "id": {"type": "integer", "xml": {"attribute": True}},
        "name": {"type": "string"},
        "vaccinated": {"type": "boolean"},
        "tags": {"type": "array", "xml": {"wrapped": True}, "items": {"type": "string", "xml": {"name": "tag"}}},
        "photo": {"type": "array", "items": {"type": "string"}}}}}})


async def test_xml_answers_with_an_object_schema_become_structured_content(upstream, tmp_path):
    with running_gateway(write_spec(tmp_path, XML_ANSWER), upstream.url) as (_, url):
        async with connect(url) as client:
            tool = (await client.list_tools()).tools[0]
            assert tool.output_schema is None  # promised nothing: XML that cannot be read faithfully stays text
            upstream.answers["/pets/7"] = (200, "application/xml", (
                b'<?xml version="1.0"?><p:pet xmlns:p="urn:x" id="7"><p:name>Rex &amp; co</p:name>'
                b"<vaccinated>true</vaccinated><tags><tag>a</tag><tag>b</tag></tags>"
                b"<photo>1.png</photo><photo>2.png</photo></p:pet>"))
            result = await client.call_tool("pet", {"id": 7})
            assert upstream.last.headers["accept"] == "application/xml"
            assert not result.is_error, text_of(result)
            assert result.structured_content == {"id": 7, "name": "Rex & co", "vaccinated": True,
                                                 "tags": ["a", "b"], "photo": ["1.png", "2.png"]}
            upstream.answers["/pets/7"] = (200, "application/xml", b"<pet><name>x</name><unknown>1</unknown></pet>")
            loose = await client.call_tool("pet", {"id": 7})  # not what the schema describes: the XML as text
            assert not loose.is_error and loose.structured_content is None and "<unknown>" in text_of(loose)
            bomb = (b'<?xml version="1.0"?><!DOCTYPE pet [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                    b"<pet><name>&b;</name></pet>")
            upstream.answers["/pets/7"] = (200, "application/xml", bomb)
            refused = await client.call_tool("pet", {"id": 7})
            assert refused.is_error and "DTD" in text_of(refused) and "aaaa" not in text_of(refused)
            upstream.answers["/pets/7"] = (200, "application/xml", b"<pet><name>x</name>")
            broken = await client.call_tool("pet", {"id": 7})
            assert broken.is_error and "not well-formed" in text_of(broken)


# -- requests: empty values, Accept, bodies --------------------------------------------------------------


EMPTY = oas3({"/search": {"get": {"operationId": "search", "parameters": [
    {"name": "q", "in": "query", "required": True, "schema": {"type": "string"}},
    {"name": "filter", "in": "query", "schema": {"type": "string"}},
    {"name": "flag", "in": "query", "allowEmptyValue": True, "schema": {"type": "string"}},
    {"name": "X-Trace", "in": "header", "schema": {"type": "string"}}], "responses": ok()}}})


async def test_empty_values_are_never_sent_without_allow_empty_value(upstream, tmp_path):
    with running_gateway(write_spec(tmp_path, EMPTY), upstream.url) as (_, url):
        async with connect(url) as client:
            schema = (await client.list_tools()).tools[0].input_schema["properties"]
            assert schema["q"]["minLength"] == 1 and "minLength" not in schema["flag"]
            refused = await client.call_tool("search", {"q": ""})
            assert refused.is_error and "/q" in text_of(refused)
            await client.call_tool("search", {"q": "x", "filter": "", "flag": "", "X-Trace": ""})
            assert upstream.last.query == "q=x&flag="
            assert "x-trace" not in upstream.last.headers


FORMS = oas3({
    "/form": {"post": {"operationId": "form", "requestBody": {"required": True, "content": {
        "application/x-www-form-urlencoded": {
            "schema": {"type": "object", "required": ["ids"], "properties": {
                "ids": {"type": "array", "items": {"type": "integer"}},
                "meta": {"type": "object", "properties": {"a": {"type": "string"}}}}},
            "encoding": {"meta": {"contentType": "application/xml"}}}}}, "responses": ok()}},
    "/choose": {"post": {"operationId": "choose", "requestBody": {"required": True, "content": {
        "application/x-www-form-urlencoded": {"schema": {"oneOf": [
            {"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}},
            {"type": "object", "required": ["b"], "properties": {"b": {"type": "array", "items": {
                "type": "string"}}}}]}}}}, "responses": ok()}},
    "/upload": {"post": {"operationId": "upload", "requestBody": {"required": True, "content": {
        "multipart/form-data": {
            "schema": {"type": "object", "required": ["file"], "properties": {
                "file": {"type": "string", "format": "binary", "maxLength": 4},
                "doc": {"type": "object", "properties": {"title": {"type": "string"}}},
                "tags": {"type": "array", "items": {"type": "string"}},
                "note": {"type": "string"}}},
            "encoding": {
                "file": {"contentType": "image/png", "headers": {
                    "X-Checksum-Algorithm": {"schema": {"type": "string", "enum": ["sha256"]}}}},
                "doc": {"contentType": "application/xml"},
                "tags": {"style": "pipeDelimited", "explode": False}}}}}, "responses": ok()}},
    "/raw": {"put": {"operationId": "raw", "requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}, "responses": ok()}},
    "/image": {"put": {"operationId": "image", "requestBody": {"content": {"image/png": {}}}, "responses": ok()}},
})


def multipart(seen: Seen) -> list[Any]:
    raw = f"Content-Type: {seen.headers['content-type']}\r\n\r\n".encode() + seen.body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    assert message.is_multipart() and not message.defects
    return list(message.iter_parts())


async def test_form_bodies_keep_required_arrays_branches_and_encodings(upstream, tmp_path):
    with running_gateway(write_spec(tmp_path, FORMS), upstream.url) as (_, url):
        async with connect(url) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert tools["form"].input_schema["properties"]["ids"]["minItems"] == 1
            refused = await client.call_tool("form", {"ids": []})
            assert refused.is_error and "/ids" in text_of(refused)
            await client.call_tool("form", {"ids": [1, 2], "meta": {"a": "x & y"}})
            pairs = parse_qsl(upstream.last.body.decode())
            assert pairs[:2] == [("ids", "1"), ("ids", "2")]
            assert ElementTree.fromstring(pairs[2][1]).findtext("a") == "x & y"  # the encoding's XML, not JSON
            branches = tools["choose"].input_schema["properties"]["body"]["anyOf"]
            assert branches[1]["properties"]["b"]["minItems"] == 1
            await client.call_tool("choose", {"body": {"b": ["x", "y"]}})
            assert upstream.last.body == b"b=x&b=y"


async def test_binary_content_is_taken_as_base64_and_sent_as_bytes(upstream, tmp_path):
    png = b"\x89PNG\r\n"
    with running_gateway(write_spec(tmp_path, FORMS), upstream.url) as (_, url):
        async with connect(url) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            raw = tools["raw"].input_schema["properties"]["body"]
            assert raw["contentEncoding"] == "base64" and raw["contentMediaType"] == "application/octet-stream"
            assert tools["image"].input_schema["properties"]["body"]["contentMediaType"] == "image/png"
            await client.call_tool("raw", {"body": base64.b64encode(png).decode()})
            assert upstream.last.body == png and upstream.last.headers["content-type"] == "application/octet-stream"
            await client.call_tool("image", {"body": base64.b64encode(png).decode()})
            assert upstream.last.body == png and upstream.last.headers["content-type"] == "image/png"
            count = len(upstream.seen)
            bad = await client.call_tool("raw", {"body": "not base64!"})
            assert bad.is_error and "/body" in text_of(bad) and len(upstream.seen) == count


async def test_multipart_parts_follow_their_encoding(upstream, tmp_path):
    with running_gateway(write_spec(tmp_path, FORMS), upstream.url) as (_, url):
        async with connect(url) as client:
            tool = next(t for t in (await client.list_tools()).tools if t.name == "upload")
            file_schema = tool.input_schema["properties"]["file"]
            assert file_schema["contentEncoding"] == "base64" and file_schema["contentMediaType"] == "image/png"
            assert "maxLength" not in file_schema  # a limit on bytes: checked on the decoded content
            result = await client.call_tool("upload", {
                "file": base64.b64encode(b"\x00\x01\xff").decode(), "doc": {"title": "T"},
                "tags": ["a", "b"], "note": "n"})
            assert not result.is_error, text_of(result)
            parts = {p.get_param("name", header="content-disposition"): p for p in multipart(upstream.last)}
            assert parts["file"].get_filename() == "file" and parts["file"].get_content_type() == "image/png"
            assert parts["file"].get_payload(decode=True) == b"\x00\x01\xff"
            assert parts["file"]["X-Checksum-Algorithm"] == "sha256"
            assert parts["doc"].get_content_type() == "application/xml"
            assert ElementTree.fromstring(parts["doc"].get_payload(decode=True)).findtext("title") == "T"
            assert parts["tags"].get_payload(decode=True) == b"a|b"  # style pipeDelimited, explode false
            too_big = await client.call_tool("upload", {"file": base64.b64encode(b"12345").decode()})
            assert too_big.is_error and "/file" in text_of(too_big) and "at most 4" in text_of(too_big)


XML_BODY = oas3({"/pets": {"post": {"operationId": "addPet", "requestBody": {"required": True, "content": {
    "application/xml": {"schema": {"$ref": "#/components/schemas/Pet"}}}}, "responses": ok()}}},
    components={"schemas": {"Pet": {"type": "object", "xml": {
        "name": "pet", "namespace": "http://example.com/schema", "prefix": "smp"}, "properties": {
        "id": {"type": "integer", "xml": {"attribute": True}},
        "name": {"type": "string", "xml": {"name": "fullName"}},
        "tags": {"type": "array", "xml": {"wrapped": True}, "items": {"type": "string", "xml": {"name": "tag"}}},
        "aliases": {"type": "array", "items": {"type": "string", "xml": {"name": "alias"}}}}}}})


async def test_xml_request_bodies_honour_the_xml_object(upstream, tmp_path):
    with running_gateway(write_spec(tmp_path, XML_BODY), upstream.url) as (_, url):
        async with connect(url) as client:
            result = await client.call_tool("addPet", {"body": {"id": 3, "name": "Rex", "tags": ["a", "b"],
                                                                "aliases": ["R", "X"]}})
            assert not result.is_error, text_of(result)
    root = ElementTree.fromstring(upstream.last.body)
    ns = "{http://example.com/schema}"
    assert root.tag == f"{ns}pet" and root.get("id") == "3"
    assert [child.tag for child in root] == ["fullName", "tags", "alias", "alias"]
    assert [tag.text for tag in root.find("tags")] == ["a", "b"] and root.find("tags")[0].tag == "tag"


QUERY_AND_PATHS = oas3({
    "/find": {"get": {"operationId": "find", "parameters": [
        {"name": "filter", "in": "query", "style": "deepObject", "explode": True, "schema": {
            "type": "object", "properties": {"owner": {"type": "object"}, "pets": {"type": "array", "items": {
                "type": "object"}}, "ids": {"type": "array", "items": {"type": "integer"}}}}},
        {"name": "next", "in": "query", "allowReserved": True, "schema": {"type": "string"}}], "responses": ok()}},
    "/files/{path+}": {"get": {"operationId": "proxy", "parameters": [
        {"name": "path+", "in": "path", "required": True, "schema": {"type": "string"}}], "responses": ok()}},
    "/v/{a.b}/{c-d}/{$e}": {"get": {"operationId": "odd", "parameters": [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in ("a.b", "c-d", "$e")],
        "responses": ok()}},
    "/jobs?action=start": {"post": {"responses": ok()}},
    "/jobs?action=stop": {"post": {"responses": ok()}},
    "/#Action=Describe": {"post": {"responses": ok()}},
})


async def test_query_objects_odd_path_names_and_path_qualifiers(upstream, tmp_path):
    with running_gateway(write_spec(tmp_path, QUERY_AND_PATHS), upstream.url) as (_, url):
        async with connect(url) as client:
            names = [t.name for t in (await client.list_tools()).tools]
            assert names == ["find", "proxy", "odd", "post_jobs_action_start", "post_jobs_action_stop",
                             "post_Action_Describe"]
            await client.call_tool("find", {"filter": {"owner": {"name": "a"}, "pets": [{"n": 1}, {"n": 2}],
                                                       "ids": [1, 2]}, "next": "a/b?c=1&d"})
            assert parse_qsl(upstream.last.query) == [
                ("filter[owner][name]", "a"), ("filter[pets][0][n]", "1"), ("filter[pets][1][n]", "2"),
                ("filter[ids][]", "1"), ("filter[ids][]", "2"), ("next", "a/b?c=1&d")]
            assert "next=a/b?c%3D1%26d" in upstream.last.query  # allowReserved keeps / and ? but never & or =
            await client.call_tool("proxy", {"path": "docs/a b.txt"})
            assert upstream.last.path == "/files/docs/a%20b.txt"  # a greedy {path+} keeps its slashes
            refused = await client.call_tool("proxy", {"path": "../../admin"})
            assert refused.is_error
            await client.call_tool("odd", {"a.b": "1", "c-d": "x/y", "e": "?"})
            assert upstream.last.path == "/v/1/x%2Fy/%3F"
            await client.call_tool("post_jobs_action_stop", {})
            assert (upstream.last.path, upstream.last.query) == ("/jobs", "action=stop")
            await client.call_tool("post_Action_Describe", {})
            assert (upstream.last.path, upstream.last.query) == ("/", "")


SWAGGER2 = {
    "swagger": "2.0", "info": {"title": "t", "version": "2019-04-01"}, "paths": {
        "/things/{scope}": {"post": {"operationId": "thing", "parameters": [
            {"name": "scope", "in": "path", "required": True, "type": "string", "x-ms-skip-url-encoding": True},
            {"name": "api-version", "in": "query", "required": True, "type": "string"},
            {"name": "kind", "in": "query", "type": "string", "enum": ["a", "b"], "x-ms-enum": {
                "name": "Kind", "modelAsString": True,
                "values": [{"value": "a", "description": "The first kind"}, {"value": "b", "name": "Bee"}]}},
            {"name": "tabs", "in": "query", "type": "array", "items": {"type": "string"}, "collectionFormat": "tsv"},
            {"name": "body", "in": "body", "required": True, "schema": {"$ref": "#/definitions/Thing"}}],
            "responses": {"200": {"description": "ok"}}}},
        "/photos": {"post": {"operationId": "photo", "parameters": [
            {"name": "file", "in": "formData", "type": "file", "required": True},
            {"name": "caption", "in": "formData", "type": "string"}], "responses": {"200": {"description": "ok"}}}},
        "/notes": {"post": {"operationId": "note", "parameters": [
            {"name": "text", "in": "formData", "type": "string", "required": True}],
            "responses": {"200": {"description": "ok"}}}}},
    "definitions": {"Thing": {"type": "object", "properties": {"name": {"type": "string", "x-nullable": True}}}},
}


async def test_swagger2_without_consumes_and_azure_extensions(upstream, tmp_path):
    with running_gateway(write_spec(tmp_path, SWAGGER2), upstream.url) as (_, url):
        async with connect(url) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            props = tools["thing"].input_schema["properties"]
            assert props["api-version"]["default"] == "2019-04-01"  # Azure: the version the spec describes
            assert "The first kind" in props["kind"]["description"] and "b: Bee" in props["kind"]["description"]
            assert props["name"]["type"] == ["string", "null"]
            assert tools["photo"].input_schema["properties"]["file"]["contentEncoding"] == "base64"
            await client.call_tool("thing", {"scope": "subscriptions/1/groups/g?x", "tabs": ["a", "b"],
                                             "name": "n"})
            seen = upstream.last
            assert seen.path == "/things/subscriptions/1/groups/g%3Fx"  # keeps / only: ? stays encoded
            assert parse_qsl(seen.query) == [("api-version", "2019-04-01"), ("tabs", "a\tb")]
            assert seen.headers["content-type"] == "application/json" and json.loads(seen.body) == {"name": "n"}
            await client.call_tool("photo", {"file": base64.b64encode(b"\xff\xd8").decode(), "caption": "c"})
            parts = multipart(upstream.last)  # no consumes, a file parameter: multipart
            assert parts[0].get_filename() == "file" and parts[0].get_payload(decode=True) == b"\xff\xd8"
            await client.call_tool("note", {"text": "a&b"})  # no consumes, no file: a form
            assert upstream.last.headers["content-type"] == "application/x-www-form-urlencoded"
            assert upstream.last.body == b"text=a%26b"


# -- schemas the model can act on ------------------------------------------------------------------------


REPAIRS = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {"/x": {"get": {
    "operationId": "x", "parameters": [
        {"name": "code", "in": "query", "schema": {"type": "string", "pattern": "\\A[[:alpha:]]+\\z"}},
        {"name": "fields", "in": "query", "schema": {"type": "array", "enum": ["id", "name"],
                                                       "items": {"type": "string"}}},
        {"name": "level", "in": "query", "schema": {"type": "integer", "enum": [1, 2],
                                                      "x-enumNames": ["Low", "High"]}},
        {"name": "mode", "in": "query", "schema": {"oneOf": [
            {"const": "fast", "title": "Fast, less exact"}, {"const": "slow", "title": "Slow, exact"}]}}],
    "responses": {"200": {"description": "ok"}}}}}}


async def test_enum_descriptions_and_repaired_constraints(upstream, tmp_path):
    spec = write_spec(tmp_path, REPAIRS)
    gateway = load_gateway(config_from_args(spec=spec, upstream=upstream.url))
    warnings = [w.message for w in gateway.warnings]
    assert any("pattern" in w and "rewritten as '^[a-zA-Z]+$'" in w for w in warnings), warnings
    assert any("`enum` on an array" in w for w in warnings), warnings
    with running_gateway(spec, upstream.url) as (_, url):
        async with connect(url) as client:
            props = (await client.list_tools()).tools[0].input_schema["properties"]
            assert props["level"]["description"] == "Values: 1: Low; 2: High"
            assert [b["title"] for b in props["mode"]["anyOf"]] == ["Fast, less exact", "Slow, exact"]
            ok_call = await client.call_tool("x", {"code": "abc", "fields": ["id", "name"], "level": 2})
            assert not ok_call.is_error, text_of(ok_call)  # valid values pass the repaired schema
            assert parse_qsl(upstream.last.query) == [("code", "abc"), ("fields", "id"), ("fields", "name"),
                                                      ("level", "2")]
            bad = await client.call_tool("x", {"code": "ab1"})
            assert bad.is_error and "/code" in text_of(bad)


AWS_QUERY = {"openapi": "3.0.0", "info": {"title": "sqs", "version": "2012-11-05", "x-aws-protocol": "query"},
             "paths": {"/#Action=SendMessageBatch": {"post": {"operationId": "SendMessageBatch", "requestBody": {
                 "required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
                     "type": "object", "required": ["QueueUrl", "Entries"], "properties": {
                         "QueueUrl": {"type": "string"},
                         "Entries": {"type": "array", "items": {"type": "object", "properties": {
                             "Id": {"type": "string"}, "Attributes": {"type": "array", "items": {
                                 "type": "object", "properties": {"Name": {"type": "string"}}}}}}}}}}}},
                 "responses": ok()}},
                 "/#Action=ListQueues": {"get": {"operationId": "ListQueues", "parameters": [
                     {"name": "Names", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}},
                     {"name": "Prefix", "in": "query", "schema": {"type": "string"}}], "responses": ok()}}}}


async def test_aws_query_protocol_flattens_lists_and_structures(upstream, tmp_path):
    with running_gateway(write_spec(tmp_path, AWS_QUERY), upstream.url) as (_, url):
        async with connect(url) as client:
            await client.call_tool("SendMessageBatch", {"QueueUrl": "https://q/1", "Entries": [
                {"Id": "a", "Attributes": [{"Name": "x"}]}, {"Id": "b"}]})
            assert parse_qsl(upstream.last.body.decode()) == [
                ("QueueUrl", "https://q/1"), ("Entries.member.1.Id", "a"),
                ("Entries.member.1.Attributes.member.1.Name", "x"), ("Entries.member.2.Id", "b")]
            await client.call_tool("ListQueues", {"Names": ["q1", "q2"], "Prefix": "p"})
            assert parse_qsl(upstream.last.query) == [("Names.member.1", "q1"), ("Names.member.2", "q2"),
                                                      ("Prefix", "p")]
