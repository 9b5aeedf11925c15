"""Tool search: the signals and their fusion over hand-made tools, and plain requests over GitHub's spec."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.discovery.documents import ToolDocument, words
from gateway.discovery.index import SearchHit, ToolIndex
from gateway.discovery.lexical import terms, tool_actions


def doc(name: str, method: str, path: str, description: str, title: str | None = None,
        parameters: tuple[tuple[str, str], ...] = (), tags: tuple[str, ...] = ()) -> ToolDocument:
    return ToolDocument(name=name, title=title, description=description, method=method, path=path, tags=tags,
                        parameters=parameters)


TOOLS = [
    doc("listPets", "GET", "/pets", "List all pets in the store.", parameters=(("limit", "How many to return"),)),
    doc("createPet", "POST", "/pets", "Add a new pet to the store.", parameters=(("name", "The pet's name"),)),
    doc("showPetById", "GET", "/pets/{petId}", "Info for a specific pet.", parameters=(("petId", "The pet's id"),)),
    doc("deletePet", "DELETE", "/pets/{petId}", "Removes a pet from the store."),
    doc("place_order", "POST", "/store/order", "Place an order for a pet.", title="Place an order"),
    doc("get_inventory", "GET", "/store/inventory", "Returns pet inventories by status."),
    doc("restart_server", "POST", "/servers/{id}/restart", "Restarts the virtual machine.", tags=("servers",)),
    doc("users.lookupByEmail", "GET", "/users.lookupByEmail", "Find a user with an email address."),
]


@pytest.fixture(scope="module")
def index() -> ToolIndex:
    return ToolIndex.build(TOOLS)


def names(hits: list[SearchHit]) -> list[str]:
    return [TOOLS[h.index].name for h in hits]


def test_names_are_split_into_words() -> None:
    assert words("listPetsByOwner") == ["list", "pets", "by", "owner"]
    assert words("HTTPServer repos_list-for-org chat.postMessage") == [
        "http", "server", "repos", "list", "for", "org", "chat", "post", "message"]
    assert words("see [the guide](https://example.com/guide/pets) or https://x.io/a") == ["see", "the", "guide", "or"]
    assert terms("lookupByEmail of the users") == ["lookup", "email", "user"]


@pytest.mark.parametrize(("query", "expected"), [
    ("add a new pet", "createPet"),
    ("list all the pets", "listPets"),
    ("remove a pet from the store", "deletePet"),
    ("place an order", "place_order"),
    ("find the user with this email address", "users.lookupByEmail"),
    ("how many pets are in stock by status", "get_inventory"),
])
def test_a_plainly_worded_request_finds_its_tool_first(index: ToolIndex, query: str, expected: str) -> None:
    assert names(index.search(query, 3))[0] == expected


def test_the_request_verb_picks_among_one_resource_s_operations(index: ToolIndex) -> None:
    assert names(index.search("delete pet 7", 1)) == ["deletePet"]
    assert names(index.search("create a pet", 1)) == ["createPet"]
    assert tool_actions(TOOLS[3]) == {"delete"}
    rpc = doc("reminders.delete", "POST", "/reminders.delete", "Deletes a reminder.")
    assert tool_actions(rpc) == {"delete"}  # the name's verb, not POST's "create"


def test_limit_allowed_and_order(index: ToolIndex) -> None:
    hits = index.search("pet", 3)
    assert len(hits) == 3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert index.search("pet", 3) == hits  # deterministic
    everything = index.search("pet", 100)
    assert sorted(h.index for h in everything) == list(range(len(TOOLS)))
    only_even = index.search("pet", 100, allowed=lambda i: i % 2 == 0)
    assert [h.index for h in only_even] == [h.index for h in everything if h.index % 2 == 0]
    assert index.search("pet", 0) == []
    assert index.search("   ", 5) == []
    assert len(index) == len(TOOLS)


def test_ties_are_broken_by_position() -> None:
    twins = [doc("a", "GET", "/a", "Same words."), doc("b", "GET", "/b", "Same words.")]
    index = ToolIndex.build(twins, signals=("lexical",))
    assert [h.index for h in index.search("words", 2)] == [0, 1]


def test_each_signal_works_alone() -> None:
    lexical = ToolIndex.build(TOOLS, signals=("lexical",))
    semantic = ToolIndex.build(TOOLS, signals=("semantic",))
    assert names(lexical.search("place an order", 1)) == ["place_order"]
    assert names(semantic.search("place an order", 1)) == ["place_order"]
    assert names(semantic.search("reboot the vm", 1)) == ["restart_server"]  # no word shared: meaning only
    with pytest.raises(ValueError, match="signals"):
        ToolIndex.build(TOOLS, signals=("fuzzy",))


def test_without_the_model_package_words_alone_are_used(monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    from gateway.discovery import semantic

    monkeypatch.setattr(semantic, "MODEL_PACKAGE", "no_such_embedding_package")
    semantic.load_model.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="gateway.discovery.index"):
            index = ToolIndex.build(TOOLS)
        assert names(index.search("add a new pet", 1)) == ["createPet"]
        assert [r.levelno for r in caplog.records] == [logging.WARNING]
        with pytest.raises(semantic.ModelUnavailable):
            ToolIndex.build(TOOLS, signals=("semantic",))
    finally:
        semantic.load_model.cache_clear()


def test_an_empty_index_finds_nothing() -> None:
    assert ToolIndex.build([]).search("anything", 5) == []


def test_documents_from_generated_tools(shared_specs: Path) -> None:
    from gateway.config import config_from_args
    from gateway.runtime import load_gateway

    gateway = load_gateway(config_from_args(spec=str(shared_specs / "twilio--api-v2010.yaml"),
                                            upstream="http://127.0.0.1:1"))
    document = ToolDocument.from_tool(gateway.tools["CreateUsageTrigger"])
    assert document.method == "POST"
    assert document.path == "/2010-04-01/Accounts/{AccountSid}/Usage/Triggers.json"
    arguments = dict(document.parameters)
    assert "AccountSid" in arguments
    assert "the trigger should fire" in arguments["body.TriggerValue"]  # an unflattened body's properties too


@pytest.fixture(scope="module")
def github(shared_specs: Path) -> tuple[ToolIndex, list[str]]:
    from gateway.config import config_from_args
    from gateway.runtime import load_gateway

    tools = load_gateway(config_from_args(spec=str(shared_specs / "github--api.github.com.json"),
                                          upstream="http://127.0.0.1:1")).tools.values()
    routes = [f"{t.operation.method.upper()} {t.operation.path}" for t in tools]
    return ToolIndex.build([ToolDocument.from_tool(t) for t in tools]), routes


@pytest.mark.parametrize(("query", "route"), [
    ("list the open issues of a repository", "GET /repos/{owner}/{repo}/issues"),
    ("create an issue", "POST /repos/{owner}/{repo}/issues"),
    ("merge a pull request", "PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge"),
    ("delete a repository", "DELETE /repos/{owner}/{repo}"),
    ("star a repository for the authenticated user", "PUT /user/starred/{owner}/{repo}"),
    ("list the branches of a repository", "GET /repos/{owner}/{repo}/branches"),
    ("create a gist", "POST /gists"),
])
def test_plain_requests_over_github_find_their_operation(github: tuple[ToolIndex, list[str]], query: str,
                                                         route: str) -> None:
    index, routes = github
    assert route in [routes[h.index] for h in index.search(query, 5)]
