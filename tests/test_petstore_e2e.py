"""End to end with real parts: the bundled petstore backend, the gateway under uvicorn, the SDK's Client."""

from __future__ import annotations

import base64

import jsonschema
import pytest
from mcp.shared.exceptions import MCPError

from adapters.petstore import MAPPING, SPEC
from tests.gateway_harness import connect, running_gateway, text_of

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def gateway_url(petstore_backend):
    with running_gateway(str(SPEC), f"{petstore_backend.url}/api", str(MAPPING)) as (_, url):
        yield url


@pytest.mark.parametrize("legacy", [False, True], ids=["2026-07-28", "2025-11-25"])
async def test_lists_mapped_tools_with_valid_schemas(gateway_url, legacy):
    async with connect(gateway_url, legacy=legacy) as client:
        assert client.protocol_version == ("2025-11-25" if legacy else "2026-07-28")
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert list(tools) == ["list_pets", "create_pet", "get_pet", "update_pet", "delete_pet", "upload_pet_photo",
                           "list_tags", "place_order", "get_inventory"]
    for tool in tools.values():
        jsonschema.Draft202012Validator.check_schema(tool.input_schema)
        assert tool.input_schema["type"] == "object"
        if tool.output_schema is not None:
            jsonschema.Draft202012Validator.check_schema(tool.output_schema)
            if legacy:
                assert tool.output_schema["type"] == "object"
    assert tools["list_pets"].annotations.read_only_hint is True
    assert tools["delete_pet"].annotations.destructive_hint is True
    assert tools["get_pet"].input_schema["required"] == ["petId"]
    assert "id" not in tools["create_pet"].input_schema["properties"]  # readOnly stays out of inputs
    assert tools["create_pet"].input_schema["required"] == ["name"]
    assert tools["get_inventory"].description.startswith("Count the pets")
    list_output = tools["list_pets"].output_schema
    assert list_output["type"] == ("object" if legacy else "array")


@pytest.mark.parametrize("legacy", [False, True], ids=["2026-07-28", "2025-11-25"])
async def test_list_and_get(gateway_url, legacy):
    async with connect(gateway_url, legacy=legacy) as client:
        listed = await client.call_tool("list_pets", {"status": "available"})
        assert not listed.is_error, text_of(listed)
        pets = listed.structured_content["result"] if legacy else listed.structured_content
        assert {p["name"] for p in pets} >= {"Rex", "Nemo"}
        assert all(p["status"] == "available" for p in pets)
        assert text_of(listed).startswith(f"{len(pets)} pets")  # the mapping's summary template
        one = await client.call_tool("get_pet", {"petId": pets[0]["id"]})
        assert one.structured_content["name"] == pets[0]["name"]


async def test_array_query_parameter_reaches_backend(gateway_url):
    async with connect(gateway_url) as client:
        result = await client.call_tool("list_pets", {"tags": ["dog"]})
    assert [p["tag"] for p in result.structured_content] == ["dog"]


async def test_create_update_delete_roundtrip(gateway_url):
    async with connect(gateway_url) as client:
        created = await client.call_tool("create_pet", {"name": "Bubbles", "tag": None, "status": "pending"})
        assert not created.is_error, text_of(created)
        pet_id = created.structured_content["id"]
        updated = await client.call_tool("update_pet", {"petId": pet_id, "name": "Bubbles II"})
        assert updated.structured_content["name"] == "Bubbles II"
        deleted = await client.call_tool("delete_pet", {"petId": pet_id})
        assert not deleted.is_error and "204" in text_of(deleted)
        gone = await client.call_tool("get_pet", {"petId": pet_id})
    assert gone.is_error
    assert "404" in text_of(gone) and f"pet {pet_id} not found" in text_of(gone)


async def test_multipart_and_form_bodies(gateway_url):
    async with connect(gateway_url) as client:
        image = base64.b64encode(b"not really a jpeg").decode()  # file parts take base64; the bytes are sent
        photo = await client.call_tool("upload_pet_photo", {"petId": 1, "file": image, "caption": "hi"})
        assert not photo.is_error, text_of(photo)
        assert photo.structured_content == {"petId": 1, "caption": "hi", "bytes": len("not really a jpeg")}
        order = await client.call_tool("place_order", {"petId": 1, "quantity": 2, "note": "gift & wrap"})
        assert not order.is_error, text_of(order)
        assert order.structured_content["note"] == "gift & wrap"
        assert order.structured_content["quantity"] == 2


async def test_object_result(gateway_url):
    async with connect(gateway_url) as client:
        inventory = await client.call_tool("get_inventory", {})
    assert set(inventory.structured_content) == {"available", "pending", "sold"}


async def test_invalid_arguments_listed_with_pointers(gateway_url):
    async with connect(gateway_url) as client:
        result = await client.call_tool("create_pet", {"status": "lost", "extra": 1})
    text = text_of(result)
    assert result.is_error
    assert "nothing was sent" in text
    assert '"name" is a required property' in text
    assert "/status" in text and "lost" in text
    assert "extra" in text


async def test_out_of_range_and_wrong_type(gateway_url):
    async with connect(gateway_url) as client:
        result = await client.call_tool("get_pet", {"petId": "1/../../admin"})
        assert result.is_error and "/petId" in text_of(result)
        result = await client.call_tool("list_pets", {"limit": 1000})
        assert result.is_error and "/limit" in text_of(result)


async def test_unknown_tool_is_invalid_params(gateway_url):
    async with connect(gateway_url) as client:
        with pytest.raises(MCPError) as caught:
            await client.call_tool("no_such_tool", {})
    assert caught.value.error.code == -32602


async def test_health_endpoints(gateway_url):
    import httpx2

    base = gateway_url.rsplit("/mcp", 1)[0]
    async with httpx2.AsyncClient() as http:
        assert (await http.get(f"{base}/healthz")).json() == {"status": "ok"}
        ready = await http.get(f"{base}/readyz")
    assert ready.status_code == 200 and ready.json()["tools"] == 9
