"""Request building: OpenAPI parameter styles, injection safety, bodies."""

from __future__ import annotations

import email.parser
import email.policy
import json
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.calls.request import ArgumentError, UpstreamRequest, build_request
from gateway.spec.model import Encoding, MediaType, Parameter
from gateway.tools.model import ArgumentBinding, BodyPlan, RequestPlan

STRING = "blue"
ARRAY = ["blue", "black", "brown"]
OBJECT = {"R": 100, "G": 200, "B": 150}
BASE = "https://api.example.com:8443/v1"


def param(location: Any, style: str, explode: bool, name: str = "color", **extra: Any) -> ArgumentBinding:
    """A binding of argument `name` to a parameter of the same name; `extra`: more Parameter fields."""
    parameter = Parameter(name, location, extra.pop("schema", {}), style=style, explode=explode, **extra)
    return ArgumentBinding(argument=name, target=location, wire_name=name, parameter=parameter)


def build(template: str, *bindings: ArgumentBinding, body: BodyPlan | None = None, **arguments: Any) -> UpstreamRequest:
    return build_request(RequestPlan(method="get", path=template, bindings=bindings, body=body), arguments)


def header(request: UpstreamRequest, name: str) -> str | None:
    found = [value for key, value in request.headers if key.lower() == name.lower()]
    assert len(found) <= 1
    return found[0] if found else None


# -- the OpenAPI 3.1.1 "Style Examples" table -----------------------------------------------------------

PATH_ROWS = [
    ("simple", False, STRING, "blue"),
    ("simple", False, ARRAY, "blue,black,brown"),
    ("simple", False, OBJECT, "R,100,G,200,B,150"),
    ("simple", True, STRING, "blue"),
    ("simple", True, ARRAY, "blue,black,brown"),
    ("simple", True, OBJECT, "R=100,G=200,B=150"),
    ("label", False, STRING, ".blue"),
    ("label", False, ARRAY, ".blue,black,brown"),
    ("label", False, OBJECT, ".R,100,G,200,B,150"),
    ("label", True, STRING, ".blue"),
    ("label", True, ARRAY, ".blue.black.brown"),
    ("label", True, OBJECT, ".R=100.G=200.B=150"),
    ("matrix", False, "", ";color"),
    ("matrix", False, STRING, ";color=blue"),
    ("matrix", False, ARRAY, ";color=blue,black,brown"),
    ("matrix", False, OBJECT, ";color=R,100,G,200,B,150"),
    ("matrix", True, "", ";color"),
    ("matrix", True, STRING, ";color=blue"),
    ("matrix", True, ARRAY, ";color=blue;color=black;color=brown"),
    ("matrix", True, OBJECT, ";R=100;G=200;B=150"),
]


@pytest.mark.parametrize(("style", "explode", "value", "expected"), PATH_ROWS)
def test_path_styles(style: str, explode: bool, value: Any, expected: str) -> None:
    request = build("/colors/{color}/x", param("path", style, explode), color=value)
    assert request.path == f"/colors/{expected}/x"
    assert request.query == ""


QUERY_ROWS = [
    ("form", False, "", "color="),
    ("form", False, STRING, "color=blue"),
    ("form", False, ARRAY, "color=blue,black,brown"),
    ("form", False, OBJECT, "color=R,100,G,200,B,150"),
    ("form", True, "", "color="),
    ("form", True, STRING, "color=blue"),
    ("form", True, ARRAY, "color=blue&color=black&color=brown"),
    ("form", True, OBJECT, "R=100&G=200&B=150"),
    ("spaceDelimited", False, ARRAY, "color=blue%20black%20brown"),
    ("spaceDelimited", False, OBJECT, "color=R%20100%20G%20200%20B%20150"),
    ("pipeDelimited", False, ARRAY, "color=blue%7Cblack%7Cbrown"),
    ("pipeDelimited", False, OBJECT, "color=R%7C100%7CG%7C200%7CB%7C150"),
    ("deepObject", True, OBJECT, "color%5BR%5D=100&color%5BG%5D=200&color%5BB%5D=150"),
]


@pytest.mark.parametrize(("style", "explode", "value", "expected"), QUERY_ROWS)
def test_query_styles(style: str, explode: bool, value: Any, expected: str) -> None:
    request = build("/colors", param("query", style, explode, allow_empty_value=True), color=value)
    assert request.path == "/colors"
    assert request.query == expected
    if value == "":  # without allowEmptyValue, an empty value is never sent
        assert build("/colors", param("query", style, explode), color=value).query == ""


@pytest.mark.parametrize(
    ("explode", "value", "expected"),
    [
        (False, STRING, "blue"),
        (False, ARRAY, "blue,black,brown"),
        (False, OBJECT, "R,100,G,200,B,150"),
        (True, STRING, "blue"),
        (True, ARRAY, "blue,black,brown"),
        (True, OBJECT, "R=100,G=200,B=150"),
    ],
)
def test_header_simple_style(explode: bool, value: Any, expected: str) -> None:
    request = build("/colors", param("header", "simple", explode, name="X-Color"), **{"X-Color": value})
    assert header(request, "X-Color") == expected


@pytest.mark.parametrize(
    ("explode", "value", "expected"),
    [
        (False, STRING, "color=blue"),
        (False, ARRAY, "color=blue,black,brown"),
        (False, OBJECT, "color=R,100,G,200,B,150"),
        (True, STRING, "color=blue"),
        (True, ARRAY, "color=blue; color=black; color=brown"),
        (True, OBJECT, "R=100; G=200; B=150"),
    ],
)
def test_cookie_form_style(explode: bool, value: Any, expected: str) -> None:
    request = build("/colors", param("cookie", "form", explode), color=value)
    assert header(request, "Cookie") == expected


def test_cookies_share_one_header_and_are_percent_encoded() -> None:
    request = build(
        "/x",
        param("cookie", "form", True, name="a"),
        param("cookie", "form", True, name="b"),
        a="1",
        b="x; admin=true",
    )
    assert header(request, "Cookie") == "a=1; b=x%3B%20admin%3Dtrue"


@pytest.mark.parametrize("value", ["x\r\nSet-Cookie: evil=1", "x\n", "\x00"])
def test_cookie_control_characters_refused(value: str) -> None:
    with pytest.raises(ArgumentError) as info:
        build("/x", param("cookie", "form", True, name="session"), session=value)
    assert info.value.pointer == "/session"


def test_deep_object_nesting_and_arrays() -> None:
    binding = param("query", "deepObject", True, name="filter")
    request = build("/x", binding, filter={"meta": {"k": "v"}, "tags": ["a", "b"], "skip": None})
    assert parse_qsl(request.query) == [("filter[meta][k]", "v"), ("filter[tags][]", "a"), ("filter[tags][]", "b")]


def test_nested_values_in_flat_styles_are_json() -> None:
    request = build("/x", param("query", "form", True, name="q"), q=[{"a": 1}, "b", None])
    assert parse_qsl(request.query) == [("q", '{"a":1}'), ("q", "b")]


def test_empty_collections_add_nothing_to_the_query() -> None:
    bindings = (param("query", "form", True, name="a"), param("query", "form", False, name="b"))
    assert build("/x", *bindings, a=[], b={}).query == ""


def test_scalars_booleans_and_numbers() -> None:
    bindings = (
        param("query", "form", True, name="flag"),
        param("query", "form", True, name="count", schema={"type": "integer"}),
        param("query", "form", True, name="ids", schema={"type": "array", "items": {"type": "integer"}}),
        param("query", "form", True, name="ratio", schema={"type": "number"}),
    )
    request = build("/x", *bindings, flag=False, count=3.0, ids=[1.0, 2], ratio=2.0)
    assert request.query == "flag=false&count=3&ids=1&ids=2&ratio=2.0"
    assert build("/x", *bindings, ratio=0.1).query == "ratio=0.1"


# -- path safety ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("../admin", "..%2Fadmin"),
        ("a/b", "a%2Fb"),
        ("x?y=1", "x%3Fy%3D1"),
        ("#frag", "%23frag"),
        ("%2e%2e", "%252e%252e"),
        ("%2F", "%252F"),
        ("http://evil.com", "http%3A%2F%2Fevil.com"),
        ("//evil.com", "%2F%2Fevil.com"),
        ("\\..\\", "%5C..%5C"),
        ("...", "..."),
        ("café/ü", "caf%C3%A9%2F%C3%BC"),
        ("a b+c", "a%20b%2Bc"),
        ("@evil.com:80", "%40evil.com%3A80"),
    ],
)
def test_path_injection_is_encoded(value: str, segment: str) -> None:
    request = build("/pets/{petId}/photos", param("path", "simple", False, name="petId"), petId=value)
    assert request.path == f"/pets/{segment}/photos"
    url = httpx2.URL(BASE + request.path)
    assert (url.scheme, url.host, url.port) == ("https", "api.example.com", 8443)
    segments = url.raw_path.decode("ascii").split("/")
    assert segments == ["", "v1", "pets", segment, "photos"]
    assert unquote(segments[3]) == value


@pytest.mark.parametrize("value", ["..", ".", ""])
def test_dot_and_empty_segments_refused(value: str) -> None:
    with pytest.raises(ArgumentError) as info:
        build("/pets/{petId}", param("path", "simple", False, name="petId"), petId=value)
    assert info.value.pointer == "/petId"


def test_label_style_cannot_form_a_dot_segment() -> None:
    with pytest.raises(ArgumentError):
        build("/pets/{petId}", param("path", "label", False, name="petId"), petId=".")


def test_dots_inside_a_segment_are_fine() -> None:
    binding = param("path", "simple", False, name="name")
    assert build("/files/{name}", binding, name="..hidden").path == "/files/..hidden"
    assert build("/files/{name}.json", binding, name="..").path == "/files/...json"


def test_allow_reserved_is_not_honoured_in_paths() -> None:
    binding = param("path", "simple", False, name="id", allow_reserved=True)
    assert build("/x/{id}", binding, id="a/b?c").path == "/x/a%2Fb%3Fc"


def test_missing_path_parameter() -> None:
    with pytest.raises(ArgumentError) as info:
        build("/pets/{petId}", param("path", "simple", False, name="petId"))
    assert info.value.pointer == "/petId"
    with pytest.raises(ArgumentError) as info:
        build("/pets/{petId}", param("path", "simple", False, name="petId"), petId=None)
    assert info.value.pointer == "/petId"


@given(st.text())
def test_path_values_never_escape_their_segment(value: str) -> None:
    try:
        request = build("/owners/{owner}/items", param("path", "simple", False, name="owner"), owner=value)
    except ArgumentError:
        return
    url = httpx2.URL(BASE + request.path)
    assert (url.scheme, url.host, url.port) == ("https", "api.example.com", 8443)
    segments = url.raw_path.decode("ascii").split("/")
    assert len(segments) == 5
    assert segments[:3] == ["", "v1", "owners"] and segments[4] == "items"
    assert unquote(segments[3], errors="strict") == value
    assert not url.query and not url.fragment


@given(st.text(alphabet=st.sampled_from("ab./?#\\%é\x00 ")))
def test_allow_slash_values_only_add_plain_segments(value: str) -> None:
    binding = ArgumentBinding("path", "path", "path", Parameter("path", "path", {}, style="simple"), allow_slash=True)
    try:
        request = build("/repos/{path}", binding, path=value)
    except ArgumentError:
        return
    url = httpx2.URL(BASE + request.path)
    assert url.host == "api.example.com" and not url.query and not url.fragment
    segments = url.raw_path.decode("ascii").split("/")[3:]
    assert all(segment not in ("", ".", "..") for segment in segments)
    assert "/".join(unquote(segment) for segment in segments) == value


def test_allow_slash() -> None:
    binding = ArgumentBinding("path", "path", "path", Parameter("path", "path", {}, style="simple"), allow_slash=True)
    assert build("/contents/{path}", binding, path="docs/README.md").path == "/contents/docs/README.md"
    assert build("/contents/{path}", binding, path="a b/c?d#e\\f").path == "/contents/a%20b/c%3Fd%23e%5Cf"
    for value in ["a/../b", "../x", "a/.", "./a", "a//b", "/a", "a/", ".."]:
        with pytest.raises(ArgumentError):
            build("/contents/{path}", binding, path=value)


def test_template_literals_and_placeholders_sharing_a_segment() -> None:
    bindings = (param("path", "simple", False, name="name"), param("path", "simple", False, name="ext"))
    assert build("/files/{name}.{ext}", *bindings, name="a b", ext="tar/gz").path == "/files/a%20b.tar%2Fgz"


# -- query safety and allowReserved ---------------------------------------------------------------------


def test_query_values_cannot_add_pairs() -> None:
    request = build("/x", param("query", "form", True, name="q"), q="a&admin=true#x+y")
    assert parse_qsl(request.query) == [("q", "a&admin=true#x+y")]


def test_allow_reserved_keeps_reserved_characters_but_not_pair_breakers() -> None:
    binding = param("query", "form", True, name="url", allow_reserved=True)
    request = build("/x", binding, url="http://h/p?x=1&y=2#f+g %41 100%")
    assert request.query == "url=http://h/p?x%3D1%26y%3D2%23f%2Bg%20%41%20100%25"
    assert len(parse_qsl(request.query)) == 1
    exploded = param("query", "form", True, name="f", allow_reserved=True)
    assert build("/x", exploded, f={"k/1": "v/1"}).query == "k%2F1=v/1"  # names are always fully encoded


def test_fixed_query_comes_first() -> None:
    plan = RequestPlan(
        method="get",
        path="/webhdfs/v1/{path}",
        bindings=(
            ArgumentBinding("path", "path", "path", allow_slash=True),
            param("query", "form", True, name="offset"),
        ),
        fixed_query=(("op", "OPEN"), ("odd key", "a&b")),
    )
    request = build_request(plan, {"path": "dir/file.txt", "offset": 10})
    assert request.path == "/webhdfs/v1/dir/file.txt"
    assert request.query == "op=OPEN&odd%20key=a%26b&offset=10"


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("query", "filter=%7B%22a%22%3A%5B1%2C2%5D%2C%22b%22%3A%22%C3%A9%22%7D"),
        ("path", "/items/%7B%22a%22%3A%5B1%2C2%5D%2C%22b%22%3A%22%C3%A9%22%7D"),
    ],
)
def test_content_parameters_are_json(location: str, expected: str) -> None:
    binding = ArgumentBinding(
        "filter", location, "filter", Parameter("filter", location, {}, media_type="application/json")
    )
    request = build("/items/{filter}" if location == "path" else "/items", binding, filter={"a": [1, 2], "b": "é"})
    if location == "query":
        assert request.query == expected
        assert json.loads(dict(parse_qsl(request.query))["filter"]) == {"a": [1, 2], "b": "é"}
    else:
        assert request.path == expected


def test_content_header_parameter_and_text_media_type() -> None:
    json_binding = ArgumentBinding(
        "meta", "header", "X-Meta", Parameter("X-Meta", "header", {}, media_type="application/json")
    )
    text_binding = ArgumentBinding("q", "query", "q", Parameter("q", "query", {}, media_type="text/plain"))
    request = build("/x", json_binding, text_binding, meta={"a": True}, q="plain text")
    assert header(request, "X-Meta") == '{"a":true}'
    assert request.query == "q=plain%20text"


# -- headers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nb", "a\rb", "a\x00b", "a\x7fb", ["ok", "b\r\n"]])
def test_header_control_characters_refused(value: Any) -> None:
    with pytest.raises(ArgumentError) as info:
        build("/x", param("header", "simple", False, name="X-Trace"), **{"X-Trace": value})
    assert info.value.pointer == "/X-Trace"
    assert "control characters" in info.value.message


def test_header_tab_allowed_and_non_ascii_refused() -> None:
    binding = param("header", "simple", False, name="X-Note")
    assert header(build("/x", binding, **{"X-Note": "a\tb"}), "X-Note") == "a\tb"
    with pytest.raises(ArgumentError, match="ASCII"):
        build("/x", binding, **{"X-Note": "café"})


@pytest.mark.parametrize(
    "name", ["Authorization", "content-type", "HOST", "Cookie", "Content-Length", "Transfer-Encoding", "Connection"]
)
def test_owned_headers_are_never_taken_from_arguments(name: str) -> None:
    plan = RequestPlan(
        method="get",
        path="/x",
        bindings=(param("header", "simple", False, name=name), param("header", "simple", False, name="X-Ok")),
    )
    request = build_request(plan, {name: "Bearer stolen", "X-Ok": "yes"})
    assert request.headers == (("Accept", "application/json"), ("X-Ok", "yes"))


def test_accept_comes_from_the_plan_unless_the_spec_declares_it() -> None:
    plan = RequestPlan(method="get", path="/x", bindings=(param("header", "simple", False, name="Accept"),))
    assert build_request(plan, {"Accept": "text/csv"}).headers == (("Accept", "text/csv"),)
    assert build_request(plan, {}).headers == (("Accept", "application/json"),)
    with pytest.raises(ArgumentError):
        build_request(plan, {"Accept": "text/csv\r\nX-Evil: 1"})
    plan = RequestPlan(method="get", path="/x", bindings=(), accept="application/xml")
    assert build_request(plan, {}).headers == (("Accept", "application/xml"),)
    plan = RequestPlan(method="get", path="/x", bindings=(), accept="")
    assert build_request(plan, {}).headers == ()


# -- constants, omission, determinism -------------------------------------------------------------------


def test_constants_override_arguments_and_none_is_omitted() -> None:
    plan = RequestPlan(
        method="delete",
        path="/tenants/{tenant}/items",
        bindings=(
            param("path", "simple", False, name="tenant"),
            param("query", "form", True, name="limit"),
            param("query", "form", True, name="cursor"),
        ),
        constants={"tenant": "acme", "limit": 50},
    )
    request = build_request(plan, {"tenant": "other", "limit": 5, "cursor": None})
    assert request.method == "DELETE"
    assert request.path == "/tenants/acme/items"
    assert request.query == "limit=50"


def test_same_arguments_same_request() -> None:
    plan = RequestPlan(
        method="post",
        path="/x/{id}",
        bindings=(
            param("path", "matrix", True, name="id"),
            param("query", "deepObject", True, name="f"),
            ArgumentBinding("body", "body", "body"),
        ),
        body=BodyPlan(MediaType("application/json"), "json", required=True, flattened=False),
    )
    arguments = {"id": ["a", "b"], "f": {"x": 1, "y": [1, 2]}, "body": {"é": [1.5, None, True]}}
    assert build_request(plan, arguments) == build_request(plan, dict(arguments))


# -- bodies ---------------------------------------------------------------------------------------------


def json_plan(content_type: str = "application/json", *, flattened: bool, required: bool) -> RequestPlan:
    if flattened:
        bindings = (
            ArgumentBinding("name", "body-property", "name"),
            ArgumentBinding("tag_list", "body-property", "tags"),
        )
    else:
        bindings = (ArgumentBinding("body", "body", "body"),)
    body = BodyPlan(MediaType(content_type), "json", required=required, flattened=flattened)
    return RequestPlan(method="post", path="/pets", bindings=bindings, body=body)


def test_json_body_whole() -> None:
    request = build_request(json_plan(flattened=False, required=True), {"body": {"name": "Rex é", "n": [1, None]}})
    assert request.content == '{"name":"Rex é","n":[1,null]}'.encode()
    assert header(request, "Content-Type") == "application/json"
    scalar = build_request(json_plan("application/merge-patch+json", flattened=False, required=True), {"body": 3})
    assert scalar.content == b"3"
    assert header(scalar, "Content-Type") == "application/merge-patch+json"


def test_json_body_flattened() -> None:
    plan = json_plan(flattened=True, required=False)
    request = build_request(plan, {"name": "Rex", "tag_list": ["a"]})
    assert json.loads(request.content or b"") == {"name": "Rex", "tags": ["a"]}
    assert build_request(plan, {"name": "Rex", "tag_list": None}).content == b'{"name":"Rex"}'


def test_absent_bodies() -> None:
    optional = build_request(json_plan(flattened=True, required=False), {})
    assert optional.content is None and header(optional, "Content-Type") is None
    assert build_request(json_plan(flattened=False, required=False), {"body": None}).content is None
    assert build_request(json_plan(flattened=True, required=True), {}).content == b"{}"
    with pytest.raises(ArgumentError) as info:
        build_request(json_plan(flattened=False, required=True), {})
    assert info.value.pointer == "/body"


def test_json_body_refuses_non_finite_numbers() -> None:
    with pytest.raises(ArgumentError) as info:
        build_request(json_plan(flattened=True, required=True), {"name": float("nan")})
    assert info.value.pointer == "/"


def form_plan(encoding: dict[str, Encoding] | None = None) -> RequestPlan:
    media = MediaType("application/x-www-form-urlencoded", {"type": "object"}, encoding or {})
    return RequestPlan(
        method="post",
        path="/form",
        bindings=(ArgumentBinding("body", "body", "body"),),
        body=BodyPlan(media, "form", required=True, flattened=False),
    )


def test_form_body() -> None:
    body = {"name": "a b&c=d", "tags": ["x", "y"], "meta": {"k": [1]}, "ok": True, "skip": None, "n": 1.5}
    request = build_request(form_plan(), {"body": body})
    assert header(request, "Content-Type") == "application/x-www-form-urlencoded"
    assert parse_qsl((request.content or b"").decode("ascii"), keep_blank_values=True) == [
        ("name", "a b&c=d"),
        ("tags", "x"),
        ("tags", "y"),
        ("meta", '{"k":[1]}'),
        ("ok", "true"),
        ("n", "1.5"),
    ]


def test_form_body_encoding_styles() -> None:
    encoding = {
        "tags": Encoding(explode=False),
        "ids": Encoding(style="pipeDelimited"),
        "meta": Encoding(style="deepObject", explode=True),
        "raw": Encoding(content_type="application/json"),
    }
    body = {"tags": ["x", "y"], "ids": [1, 2], "meta": {"k": "v"}, "raw": "s"}
    request = build_request(form_plan(encoding), {"body": body})
    assert parse_qsl((request.content or b"").decode("ascii")) == [
        ("tags", "x,y"),
        ("ids", "1|2"),
        ("meta[k]", "v"),
        ("raw", '"s"'),
    ]


def test_form_body_must_be_an_object() -> None:
    with pytest.raises(ArgumentError) as info:
        build_request(form_plan(), {"body": "name=x"})
    assert info.value.pointer == "/body"


def parse_multipart(request: UpstreamRequest) -> list[Any]:
    content_type = header(request, "Content-Type") or ""
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + (request.content or b"")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    assert message.is_multipart() and not message.defects
    return list(message.iter_parts())


def multipart_plan(flattened: bool = True, required: bool = False) -> RequestPlan:
    schema = {
        "type": "object",
        "properties": {
            "file": {"type": "string", "format": "binary"},
            "photos": {"type": "array", "items": {"type": "string", "format": "base64"}},
            "note": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "meta": {"type": "object"},
            "count": {"type": "integer"},
            "avatar": {"type": "string"},
        },
    }
    encoding = {"avatar": Encoding(content_type="image/png, image/jpeg"), "file": Encoding(content_type="text/csv")}
    media = MediaType("multipart/form-data", schema, encoding)
    names = ("file", "photos", "note", "tags", "meta", "count", "avatar")
    return RequestPlan(
        method="post",
        path="/upload",
        bindings=tuple(ArgumentBinding(name, "body-property", name) for name in names),
        body=BodyPlan(media, "multipart", required=required, flattened=flattened),
    )


def test_multipart_body() -> None:
    arguments = {
        "file": "a,b\n1,2\n",
        "photos": ["aGk=", "eW8="],
        "note": 'hé "quoted"',
        "tags": ["x", "y"],
        "meta": {"k": [1, 2]},
        "count": 2.0,
        "avatar": "PNGDATA",
    }
    request = build_request(multipart_plan(), arguments)
    assert (header(request, "Content-Type") or "").startswith("multipart/form-data; boundary=")
    parts = parse_multipart(request)
    summary = [
        (
            part.get_param("name", header="content-disposition"),
            part.get_filename(),
            part.get_content_type() if "content-type" in part else None,
            part.get_payload(decode=True),
        )
        for part in parts
    ]
    assert summary == [
        ("file", "file", "text/csv", b"a,b\n1,2\n"),
        ("photos", "photos", "application/octet-stream", b"aGk="),
        ("photos", "photos", "application/octet-stream", b"eW8="),
        ("note", None, None, 'hé "quoted"'.encode()),
        ("tags", None, None, b"x"),
        ("tags", None, None, b"y"),
        ("meta", None, "application/json", b'{"k":[1,2]}'),
        ("count", None, None, b"2"),
        ("avatar", "avatar", "image/png", b"PNGDATA"),
    ]


def test_multipart_boundary_is_random_and_parts_are_stable() -> None:
    first = build_request(multipart_plan(), {"note": "x"})
    second = build_request(multipart_plan(), {"note": "x"})
    assert header(first, "Content-Type") != header(second, "Content-Type")
    assert [p.get_payload(decode=True) for p in parse_multipart(first)] == [b"x"]
    assert [p.get_payload(decode=True) for p in parse_multipart(second)] == [b"x"]


def test_multipart_absent_and_required_empty() -> None:
    assert build_request(multipart_plan(), {}).content is None
    request = build_request(multipart_plan(required=True), {})
    boundary = (header(request, "Content-Type") or "").split("boundary=")[1]
    assert request.content == f"--{boundary}--\r\n".encode()


def test_multipart_quotes_in_names_are_escaped() -> None:
    media = MediaType("multipart/form-data", {"type": "object"})
    plan = RequestPlan(
        method="post",
        path="/u",
        bindings=(ArgumentBinding("body", "body", "body"),),
        body=BodyPlan(media, "multipart", required=True, flattened=False),
    )
    request = build_request(plan, {"body": {'a"\r\nX-Evil: 1': "v"}})
    (part,) = parse_multipart(request)
    assert part.get_param("name", header="content-disposition") == "a%22%0D%0AX-Evil: 1"
    assert "x-evil" not in part


@pytest.mark.parametrize(
    ("kind", "content_type", "value", "content", "sent_type"),
    [
        ("text", "text/plain", "héllo\nworld", "héllo\nworld".encode(), "text/plain"),
        ("text", "application/xml", "<a>é</a>", "<a>é</a>".encode(), "application/xml"),
        ("text", "text/csv", {"not": "text"}, b'{"not":"text"}', "text/csv"),
        ("binary", "application/octet-stream", "raw bytes", b"raw bytes", "application/octet-stream"),
        ("binary", "*/*", "raw", b"raw", "application/octet-stream"),
        ("json", "text/json", [1, "a"], b'[1,"a"]', "text/json"),
    ],
)
def test_text_binary_and_json_bodies(kind: Any, content_type: str, value: Any, content: bytes, sent_type: str) -> None:
    plan = RequestPlan(
        method="put",
        path="/doc",
        bindings=(ArgumentBinding("body", "body", "body"),),
        body=BodyPlan(MediaType(content_type), kind, required=True, flattened=False),
    )
    request = build_request(plan, {"body": value})
    assert request.content == content
    assert header(request, "Content-Type") == sent_type


def xml_request(value: Any, schema: dict[str, Any] | None = None) -> UpstreamRequest:
    plan = RequestPlan(
        method="put",
        path="/bucket",
        bindings=(ArgumentBinding("body", "body", "body"),),
        body=BodyPlan(MediaType("text/xml", schema), "text", required=True, flattened=False),
    )
    return build_request(plan, {"body": value})


def test_object_bodies_are_written_as_xml() -> None:
    import xml.etree.ElementTree as ET

    request = xml_request({"CORSConfiguration": {"CORSRules": [
        {"AllowedMethods": ["GET", "PUT"], "MaxAgeSeconds": 3000, "Note": "a < b & \"c\""},
        {"AllowedMethods": ["DELETE"], "Skipped": None},
    ]}})
    assert header(request, "Content-Type") == "text/xml"
    assert request.content.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = ET.fromstring(request.content)  # well-formed, whatever the text held
    assert root.tag == "CORSConfiguration"
    rules = root.findall("CORSRules")
    assert [[m.text for m in rule.findall("AllowedMethods")] for rule in rules] == [["GET", "PUT"], ["DELETE"]]
    assert rules[0].findtext("MaxAgeSeconds") == "3000" and rules[0].findtext("Note") == 'a < b & "c"'
    assert rules[1].find("Skipped") is None
    assert ET.fromstring(xml_request({"a": 1, "b": True}, {"xml": {"name": "Pet"}}).content).tag == "Pet"
    assert ET.fromstring(xml_request({"a": 1, "b": True}).content).findtext("b") == "true"
    assert xml_request("<raw>kept</raw>").content == b"<raw>kept</raw>"  # text is sent as it is


@pytest.mark.parametrize("value", [{"bad name": 1}, {"Root": {"a": "\x01"}}, [{"a": 1}, {"b": 2}]])
def test_xml_bodies_refuse_what_xml_cannot_carry(value: Any) -> None:
    with pytest.raises(ArgumentError) as info:
        xml_request(value)
    assert info.value.pointer.startswith("/body")


def test_lone_surrogates_are_refused() -> None:
    with pytest.raises(ArgumentError) as info:
        build("/x/{id}", param("path", "simple", False, name="id"), id="\ud800")
    assert info.value.pointer == "/id"
    with pytest.raises(ArgumentError):
        build_request(json_plan(flattened=False, required=True), {"body": "\udfff"})


# -- fidelity: deepObject arrays, tabs, base64, required arrays, XML shapes ------------------------------


def test_deep_object_arrays_of_objects_are_indexed() -> None:
    binding = param("query", "deepObject", True, name="f")
    value = {"rows": [{"a": 1, "b": [2, 3]}, {"a": 4}], "tags": ["x"], "m": [[1], [2]]}
    assert unquote(build("/x", binding, f=value).query).split("&") == [
        "f[rows][0][a]=1", "f[rows][0][b][]=2", "f[rows][0][b][]=3", "f[rows][1][a]=4", "f[tags][]=x",
        "f[m][0][]=1", "f[m][1][]=2"]


def test_empty_header_values_are_not_sent_but_empty_allowed_query_values_are() -> None:
    plan = RequestPlan(method="get", path="/x", bindings=(
        param("header", "simple", False, name="X-A"), param("query", "form", True, name="q"),
        param("query", "form", True, name="e", allow_empty_value=True)))
    request = build_request(plan, {"X-A": "", "q": "", "e": ""})
    assert request.query == "e=" and header(request, "X-A") is None


def test_tab_delimited_query_arrays() -> None:
    assert build("/x", param("query", "tabDelimited", False), color=["a", "b"]).query == "color=a%09b"


def binary_plan(lengths: tuple[int | None, int | None] = (None, None)) -> RequestPlan:
    body = BodyPlan(MediaType("image/png"), "binary", required=True, flattened=False, base64={"": lengths})
    return RequestPlan(method="put", path="/img", bindings=(ArgumentBinding("body", "body", "body"),), body=body)


def test_base64_bodies_are_decoded_and_checked() -> None:
    request = build_request(binary_plan(), {"body": "iVBORw=="})
    assert request.content == b"\x89PNG" and header(request, "Content-Type") == "image/png"
    for bad in ("iVBORw", "not base64", "iVBO\nRw=="):
        with pytest.raises(ArgumentError) as info:
            build_request(binary_plan(), {"body": bad})
        assert info.value.pointer == "/body" and "base64" in info.value.message
    with pytest.raises(ArgumentError, match="at most 3"):
        build_request(binary_plan((None, 3)), {"body": "iVBORw=="})
    with pytest.raises(ArgumentError, match="at least 5"):
        build_request(binary_plan((5, None)), {"body": "iVBORw=="})


def test_required_arrays_cannot_vanish_from_form_and_multipart_bodies() -> None:
    for kind, media in (("form", "application/x-www-form-urlencoded"), ("multipart", "multipart/form-data")):
        body = BodyPlan(MediaType(media, {"type": "object"}), kind, required=True, flattened=True,  # type: ignore[arg-type]
                        required_arrays=frozenset({"ids"}))
        plan = RequestPlan(method="post", path="/f", bindings=(ArgumentBinding("ids", "body-property", "ids"),),
                           body=body)
        with pytest.raises(ArgumentError) as info:
            build_request(plan, {"ids": [None]})
        assert info.value.pointer == "/ids" and "at least one item" in info.value.message
        assert build_request(plan, {"ids": [1]}).content


def test_multipart_part_headers_and_delimited_arrays_follow_the_encoding() -> None:
    encoding = {"file": Encoding(content_type="image/png", headers={
        "X-Rate": {"type": "integer", "default": 5}, "X-Free": {"type": "string"},
        "Content-Type": {"type": "string", "default": "text/plain"}}),
        "ids": Encoding(style="spaceDelimited", explode=False)}
    media = MediaType("multipart/form-data", {"type": "object", "properties": {"ids": {"type": "array"}}}, encoding)
    body = BodyPlan(media, "multipart", required=True, flattened=True, base64={"file": (None, None)})
    plan = RequestPlan(method="post", path="/u", bindings=(ArgumentBinding("file", "body-property", "file"),
                                                           ArgumentBinding("ids", "body-property", "ids")), body=body)
    file, ids = parse_multipart(build_request(plan, {"file": "AAE=", "ids": [1, 2]}))
    assert file.get_payload(decode=True) == b"\x00\x01" and file.get_content_type() == "image/png"
    assert file["X-Rate"] == "5" and "X-Free" not in file
    assert ids.get_payload(decode=True) == b"1 2"


def test_xml_bodies_write_attributes_namespaces_and_wrapped_arrays() -> None:
    import xml.etree.ElementTree as ET

    from gateway.tools.xml import xml_plan

    schema = {"type": "object", "xml": {"name": "order", "namespace": "urn:o", "prefix": "o"}, "properties": {
        "id": {"type": "integer", "xml": {"attribute": True, "name": "ID"}},
        "lines": {"type": "array", "xml": {"wrapped": True, "name": "Lines"}, "items": {
            "type": "object", "xml": {"name": "Line"}, "properties": {"sku": {"type": "string"}}}},
        "notes": {"type": "array", "items": {"type": "string"}}}}
    body = BodyPlan(MediaType("application/xml", schema), "text", required=True, flattened=False,
                    xml=xml_plan(schema, lambda s: s))
    plan = RequestPlan(method="post", path="/o", bindings=(ArgumentBinding("body", "body", "body"),), body=body)
    content = build_request(plan, {"body": {"id": 1, "lines": [{"sku": "a"}, {"sku": "b"}], "notes": ["x", "y"]}})
    root = ET.fromstring(content.content or b"")
    assert root.tag == "{urn:o}order" and root.get("ID") == "1"
    assert [line.findtext("sku") for line in root.find("Lines")] == ["a", "b"]
    assert [child.tag for child in root] == ["Lines", "notes", "notes"]
    with pytest.raises(ArgumentError):
        build_request(plan, {"body": {"id": {"nested": 1}}})  # an attribute holds one value


def test_aws_query_protocol_styles() -> None:
    value = [{"Name": "a", "Values": ["1", "2"]}, {"Name": "b"}]
    ec2 = unquote(build("/x", param("query", "x-aws-ec2", True, name="Filter"), Filter=value).query)
    assert ec2.split("&") == ["Filter.1.Name=a", "Filter.1.Values.1=1", "Filter.1.Values.2=2", "Filter.2.Name=b"]
    query = unquote(build("/x", param("query", "x-aws-query", True, name="Attribute"), Attribute=[{"Name": "a"}]).query)
    assert query == "Attribute.member.1.Name=a"
