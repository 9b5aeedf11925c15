"""The built-in widgets in a real browser (Debian's headless Chromium driven by Playwright), in both kinds of host.

Every test runs the served HTML (runtime inlined, config injected) inside `tests/widget_host.py`'s host page:
MCP Apps over postMessage, or ChatGPT's `window.openai`. Each test also fails when the page logged a console
error, raised, opened a dialog or sent a request anywhere but the host's own pages (checked by the `host`
fixture). Screenshots land in tests/artifacts/widgets/.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")

from playwright.sync_api import Browser, FrameLocator

from gateway.calls.shape import WIDGET_DATA_META
from tests.widget_host import MODES, WidgetHost, served_html, served_template

ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "widgets"


@pytest.fixture
def host(browser: Browser) -> Iterator[WidgetHost]:
    context = browser.new_context(viewport={"width": 760, "height": 640})
    widget_host = WidgetHost(context.new_page())
    yield widget_host
    problems = widget_host.problems()
    context.close()
    assert problems == [], problems


# ---- data ---------------------------------------------------------------------------------------------

NAMES = ["Rex", "Bella", "Max", "Luna", "Charlie", "Daisy", "Milo", "Coco", "Buddy", "Lola", "Zeus", "Apollo"]
IDS = [7, 3, 12, 1, 9, 4, 11, 2, 10, 5, 8, 6]  # not in order, and 10-12 sort wrongly as text
STATUSES = ["available", "pending", "sold"]


def pets() -> list[dict[str, Any]]:
    return [{"id": pet_id, "name": name, "status": STATUSES[index % 3],
             "category": {"id": 1 + index % 2, "name": ["Dogs", "Cats"][index % 2]},
             "tags": [{"id": 1, "name": "friendly"}, {"id": 2, "name": f"age-{index + 1}"}],
             "photoUrls": [f"https://img.example/{pet_id}.jpg"]}
            for index, (pet_id, name) in enumerate(zip(IDS, NAMES, strict=True))]


def pet_named(name: str) -> dict[str, Any]:
    return next(pet for pet in pets() if pet["name"] == name)


def result(data: Any, *, widget_data: bool = True) -> dict[str, Any]:
    """A CallToolResult as the gateway returns it: text for the model, structuredContent, the widget's data."""
    answer: dict[str, Any] = {"content": [{"type": "text", "text": json.dumps(data)}],
                              "structuredContent": data if isinstance(data, dict) else {"result": data}}
    if widget_data:
        answer["_meta"] = {WIDGET_DATA_META: data}
    return answer


def table_config(**settings: Any) -> dict[str, Any]:
    return {"tool": "list_pets", "title": "Pets", "kind": "table", "columns": None, "pageSize": 5, "actions": [],
            "rowAction": None, **settings}


PET_ACTIONS = [{"label": "Details", "tool": "get_pet",
                "arguments": {"petId": "{id}", "verbose": True, "note": "pet {name}"}},
               {"label": "Ask about {name}", "prompt": "Tell me more about the pet {name} (id {id})."}]


def pet_detail(name: str) -> dict[str, Any]:
    return {**pet_named(name), "owner": {"name": "Grace Hopper", "email": "grace@example.org"},
            "vaccinations": [{"date": "2024-03-01", "vaccine": "rabies"}]}


def column(view: FrameLocator, index: int) -> list[str]:
    return view.locator(f"tbody tr td:nth-child({index + 1})").all_inner_texts()


def shown(first: int, last: int, total: int) -> str:
    """The pager's status text: first, an en dash, last, " of ", total."""
    return f"{first}\u2013{last} of {total}"


def pager_text(view: FrameLocator) -> str:
    return view.locator(".gw-pager .gw-status").inner_text()


def active_text(host: WidgetHost) -> str:
    return host.frame.evaluate("document.activeElement.textContent")


def open_table(host: WidgetHost, mode: str, **settings: Any) -> FrameLocator:
    """12 pets; the model's structuredContent only has 5 of them, the widget data all 12 (which must win)."""
    answer = result(pets())
    answer["structuredContent"] = {"result": pets()[:5]}
    tool_results = {"get_pet": result(pet_detail("Max"))}
    view = host.open(mode, served_html("table", table_config(**settings)), answer, tool_results=tool_results)
    view.locator("tbody tr").first.wait_for()
    return view


# ---- table --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_table_shows_the_rows_and_sorts_and_pages_by_click(host, mode):
    view = open_table(host, mode)
    assert view.locator("h1").inner_text() == "Pets"
    assert view.locator("thead th").all_text_contents() == [f"{key}↕" for key in pets()[0]]
    assert column(view, 0) == [str(pet_id) for pet_id in IDS[:5]]
    assert column(view, 3) == ["{2 fields}"] * 5  # nested objects summarised
    assert column(view, 4) == ["[2 items]"] * 5  # array of objects summarised
    assert column(view, 5)[0] == "https://img.example/7.jpg"  # a short array of scalars is spelled out
    assert pager_text(view) == shown(1, 5, 12)  # the widget data, not the model's shorter structuredContent

    view.get_by_role("button", name="id").click()
    assert column(view, 0) == ["1", "2", "3", "4", "5"]  # numbers sort as numbers
    assert view.locator("th[aria-sort]").all_text_contents() == ["id▲"]
    assert view.locator("th[aria-sort]").get_attribute("aria-sort") == "ascending"
    view.get_by_role("button", name="id").click()
    assert column(view, 0) == ["12", "11", "10", "9", "8"]
    assert view.locator("th[aria-sort]").get_attribute("aria-sort") == "descending"

    view.get_by_role("button", name="name").click()
    ordered = sorted(NAMES)
    assert column(view, 1) == ordered[:5]
    assert view.locator("th[aria-sort]").all_text_contents() == ["name▲"]
    view.get_by_role("button", name="Next").click()
    assert (pager_text(view), column(view, 1)) == (shown(6, 10, 12), ordered[5:10])
    view.get_by_role("button", name="Next").click()
    assert (pager_text(view), column(view, 1)) == (shown(11, 12, 12), ordered[10:])
    assert view.get_by_role("button", name="Next").get_attribute("aria-disabled") == "true"
    view.get_by_role("button", name="Next").click(force=True)  # aria-disabled: a click changes nothing
    assert pager_text(view) == shown(11, 12, 12)
    view.get_by_role("button", name="Previous").click()
    assert (pager_text(view), column(view, 1)) == (shown(6, 10, 12), ordered[5:10])


def test_table_columns_come_from_the_config_with_dotted_paths(host):
    config = table_config(columns=["name", "category.name", "missing"])
    view = host.open("mcp-apps", served_html("table", config), result(pets()))
    view.locator("tbody tr").first.wait_for()
    assert view.locator("thead th").all_text_contents() == ["name↕", "category.name↕", "missing↕"]
    assert view.locator("tbody tr").first.locator("td").all_inner_texts() == ["Rex", "Dogs", "—"]
    view.get_by_role("button", name="category.name").click()
    assert column(view, 1) == ["Cats"] * 5
    assert view.locator(".gw-note").count() == 0


def test_wide_rows_show_their_simple_fields_first(host):
    rows = [{"links": {"self": f"/items/{n}"}, **{f"field{k}": n * k for k in range(1, 11)}, "history": [1, 2]}
            for n in range(1, 4)]
    view = host.open("mcp-apps", served_html("table", table_config()), result(rows))
    view.locator("tbody tr").first.wait_for()
    assert view.locator("thead th").all_text_contents() == [f"field{k}↕" for k in range(1, 9)]
    assert view.locator(".gw-note").inner_text() == "4 more fields in each row's details."
    view.locator("tbody tr").first.click()
    assert view.locator(".gw-detail dl.gw-card").first.locator(":scope > dt").all_inner_texts() == list(rows[0])


@pytest.mark.parametrize("mode", MODES)
def test_table_sorts_pages_and_opens_rows_by_keyboard(host, mode):
    view = open_table(host, mode)
    keyboard = host.page.keyboard
    view.get_by_role("button", name="name").focus()
    keyboard.press("Enter")
    assert column(view, 1) == sorted(NAMES)[:5]
    keyboard.press("Space")
    assert column(view, 1) == sorted(NAMES, reverse=True)[:5]
    keyboard.press("Tab")
    assert active_text(host) == "status↕"
    keyboard.press("Enter")
    assert column(view, 2) == ["available"] * 4 + ["pending"]

    view.get_by_role("button", name="Next").focus()
    keyboard.press("Enter")
    assert pager_text(view) == shown(6, 10, 12)
    keyboard.press("Enter")
    keyboard.press("Enter")  # already on the last page: nothing happens and focus stays on Next
    assert pager_text(view) == shown(11, 12, 12)
    assert active_text(host) == "Next"
    keyboard.press("Shift+Tab")
    assert active_text(host) == "Previous"
    keyboard.press("Enter")
    assert pager_text(view) == shown(6, 10, 12)

    row = view.locator("tbody tr").first
    name = column(view, 1)[0]
    row.focus()
    keyboard.press("Enter")  # no row action configured: the row's own detail card
    panel = view.locator(".gw-detail")
    assert panel.locator("h2").inner_text() == name
    assert active_text(host) == name  # focus moved into the panel
    assert panel.locator("dl.gw-card").first.locator(":scope > dt").all_inner_texts() == list(pets()[0])
    assert "friendly" in panel.inner_text()  # nested values spelled out in the detail
    panel.get_by_role("button", name="Close").focus()
    keyboard.press("Enter")
    assert panel.is_hidden()
    assert host.frame.evaluate("document.activeElement.tagName") == "TR"  # focus back on the row


@pytest.mark.parametrize("mode", MODES)
def test_a_row_runs_its_tool_action_with_the_row_id_and_shows_the_answer(host, mode):
    view = open_table(host, mode, actions=PET_ACTIONS, rowAction=0)
    view.locator("tbody tr", has_text="Max").locator("td").first.click()
    calls = host.wait_until(host.tool_calls, "a tool call")
    assert calls == [("get_pet", {"petId": 12, "verbose": True, "note": "pet Max"})]
    assert type(calls[0][1]["petId"]) is int  # "{id}" kept the row value's JSON type
    panel = view.locator(".gw-detail")
    panel.get_by_text("grace@example.org").wait_for()
    assert panel.locator("h2").inner_text() == "Details · Max"
    assert "Grace Hopper" in panel.inner_text() and "rabies" in panel.inner_text()

    view.locator("tbody tr", has_text="Bella").focus()
    host.page.keyboard.press("Enter")
    host.wait_until(lambda: len(host.tool_calls()) == 2, "a second tool call")
    assert host.tool_calls()[1] == ("get_pet", {"petId": 3, "verbose": True, "note": "pet Bella"})
    view.locator("tbody tr", has_text="Max").get_by_role("button", name="Details (Max)").click()
    host.wait_until(lambda: len(host.tool_calls()) == 3, "a third tool call")
    assert host.tool_calls()[2][1]["petId"] == 12
    panel.get_by_text("rabies").wait_for()
    assert panel.locator("h2").inner_text() == "Details · Max"
    host.screenshot(ARTIFACTS / f"table-{mode}-row-action.png")


@pytest.mark.parametrize("mode", MODES)
def test_a_prompt_action_sends_the_filled_follow_up(host, mode):
    view = open_table(host, mode, actions=PET_ACTIONS, rowAction=0)
    view.get_by_role("button", name="Ask about Luna").click()
    follow_ups = host.wait_until(host.follow_ups, "a follow-up")
    assert follow_ups == [f"Tell me more about the pet Luna (id {pet_named('Luna')['id']})."]
    view.get_by_text("Sent to the conversation: Tell me more about the pet Luna").wait_for()
    assert host.tool_calls() == []  # the button did not also trigger the row action
    if mode == "mcp-apps":
        message = next(m for m in host.messages() if m.get("method") == "ui/message")
        assert message["params"] == {"role": "user", "content": [{"type": "text", "text": follow_ups[0]}]}
        assert isinstance(message["id"], int)


@pytest.mark.parametrize("mode", MODES)
def test_tool_call_failures_are_shown_inline(host, mode):
    config = table_config(actions=[{"label": "Details", "tool": "get_pet", "arguments": {"petId": "{id}"}},
                                   {"label": "Owner", "tool": "get_owner", "arguments": {"petId": "{id}"}}])
    failing = {"get_pet": {"content": [{"type": "text", "text": "Pet 7 not found (HTTP 404)"}], "isError": True}}
    view = host.open(mode, served_html("table", config), result(pets()), tool_results=failing)
    rex = view.locator("tbody tr", has_text="Rex")
    rex.get_by_role("button", name="Details (Rex)").click()
    panel = view.locator(".gw-detail")
    assert panel.get_by_role("alert").locator("p").inner_text() == "Pet 7 not found (HTTP 404)"
    rex.get_by_role("button", name="Owner (Rex)").click()
    panel.get_by_text("Unknown tool: get_owner").wait_for()  # a JSON-RPC error / a rejected callTool
    assert host.tool_calls() == [("get_pet", {"petId": 7}), ("get_owner", {"petId": 7})]


# ---- card and list ------------------------------------------------------------------------------------

USER = {"id": 42, "username": "ada", "email": "ada@example.org", "active": True, "manager": None,
        "address": {"street": "12 St James's Square", "city": "London",
                    "geo": {"lat": 51.5074, "lng": -0.1344, "source": {"provider": "osm", "accuracy": 5}}},
        "roles": ["admin", "editor"], "orders": [{"id": 1, "total": 9.5}, {"id": 2, "total": 12}]}
USER_ACTIONS = [{"label": "Orders of {username}", "tool": "list_orders",
                 "arguments": {"userId": "{id}", "filter": {"city": "{address.city}"}, "missing": "{nope}"}},
                {"label": "Email {username}", "prompt": "Draft an email to {email} about {address.city}."}]
ORDERS = [{"id": 1, "total": 9.5, "status": "shipped"}, {"id": 2, "total": 12, "status": "open"}]


@pytest.mark.parametrize("mode", MODES)
def test_card_shows_nested_values_and_runs_its_actions(host, mode):
    config = {"tool": "get_user", "title": "User", "kind": "card", "actions": USER_ACTIONS, "rowAction": None}
    view = host.open(mode, served_html("card", config), result(USER), tool_results={"list_orders": result(ORDERS)})
    top = view.locator("dl.gw-card").first
    top.wait_for()
    assert top.locator(":scope > dt").all_inner_texts() == list(USER)
    values = top.locator(":scope > dd")
    assert values.nth(0).inner_text() == "42"
    assert values.nth(3).inner_text() == "true"
    assert values.nth(4).inner_text() == "—"
    address = values.nth(5)
    assert address.locator(":scope > dl > dt").all_inner_texts() == ["street", "city", "geo"]
    geo = address.locator(":scope > dl > dd").nth(2)
    assert geo.locator(":scope > dl > dt").all_inner_texts() == ["lat", "lng", "source"]
    assert geo.locator(":scope > dl > dd").nth(2).inner_text() == "{2 fields}"  # deeper levels are summarised
    assert values.nth(6).locator("li").all_inner_texts() == ["admin", "editor"]
    assert values.nth(7).locator(":scope > ul > li").count() == 2

    view.get_by_role("button", name="Orders of ada").click()
    calls = host.wait_until(host.tool_calls, "a tool call")
    assert calls == [("list_orders", {"userId": 42, "filter": {"city": "London"}})]  # "{nope}" left out
    panel = view.locator(".gw-detail")
    panel.locator("tbody tr").nth(1).wait_for()
    assert panel.locator("thead th").all_text_contents() == ["id↕", "total↕", "status↕"]
    assert panel.locator("tbody tr").first.locator("td").all_inner_texts() == ["1", "9.5", "shipped"]

    view.get_by_role("button", name="Email ada").click()
    assert host.wait_until(host.follow_ups, "a follow-up") == ["Draft an email to ada@example.org about London."]


CITIES = ["Amsterdam", "Athens", "Berlin", "Bern", "Bratislava", "Brussels", "Bucharest", "Budapest", "Copenhagen",
          "Dublin", "Helsinki", "Lisbon", "Ljubljana", "London", "Luxembourg", "Madrid", "Oslo", "Paris", "Prague",
          "Riga", "Rome", "Stockholm", "Vienna"]


@pytest.mark.parametrize("mode", MODES)
def test_list_pages_scalars_and_runs_the_item_action(host, mode):
    config = {"tool": "list_cities", "title": "Cities", "kind": "list", "pageSize": 10,
              "actions": [{"label": "Plan a trip", "prompt": "Plan a trip to {value}."}], "rowAction": 0}
    view = host.open(mode, served_html("list", config), result(CITIES, widget_data=False))  # {"result": [..]}
    items = view.locator("li.gw-item > span")
    items.first.wait_for()
    assert items.all_inner_texts() == CITIES[:10]
    assert pager_text(view) == shown(1, 10, 23)
    view.get_by_role("button", name="Next").click()
    assert items.all_inner_texts() == CITIES[10:20]
    view.get_by_role("button", name="Next").click()
    assert (pager_text(view), items.all_inner_texts()) == (shown(21, 23, 23), CITIES[20:])

    view.locator("li.gw-item", has_text="Stockholm").locator("span").click()
    host.wait_until(host.follow_ups, "a follow-up")
    view.locator("li.gw-item", has_text="Vienna").focus()
    host.page.keyboard.press("Enter")
    host.wait_until(lambda: len(host.follow_ups()) == 2, "a second follow-up")
    view.locator("li.gw-item", has_text="Rome").get_by_role("button", name="Plan a trip (Rome)").click()
    host.wait_until(lambda: len(host.follow_ups()) == 3, "a third follow-up")
    assert host.follow_ups() == ["Plan a trip to Stockholm.", "Plan a trip to Vienna.", "Plan a trip to Rome."]


# ---- safety -------------------------------------------------------------------------------------------

HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", '<img src=x onerror="window.__xss = 1">',
           '"quotes" & \'apostrophes\'', "</script><script>window.__xss = 1</script>", "<b>bold</b>"]


def hostile_data(kind: str) -> Any:
    if kind == "list":
        return HOSTILE
    rows = [{"id": index, "name": text, "<b>key</b>": text} for index, text in enumerate(HOSTILE)]
    return rows if kind == "table" else {**rows[0], "nested": {"deep": HOSTILE[1]}, "items": HOSTILE}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["table", "card", "list"])
def test_backend_markup_is_shown_as_text(host, mode, kind):
    key = "{value}" if kind == "list" else "{name}"  # a list's scalar items are `{value}`
    config = {"tool": "t", "title": "</script><script>window.__xss = 1</script>", "kind": kind, "pageSize": 10,
              "actions": [{"label": f"Ask about {key}", "prompt": f"About {key}"}], "rowAction": None}
    view = host.open(mode, served_html(kind, config), result(hostile_data(kind)))
    view.locator("#gateway-root h1").wait_for()
    assert view.locator("h1").inner_text() == config["title"]
    root_text = view.locator("#gateway-root").inner_text()
    for text in HOSTILE if kind != "card" else HOSTILE[:1]:
        assert text in root_text
    if kind != "list":
        assert "<b>key</b>" in root_text
    assert host.frame.evaluate("document.querySelectorAll('#gateway-root script, #gateway-root img, "
                               "#gateway-root b').length") == 0
    assert host.frame.evaluate("document.querySelectorAll('script').length") == 3  # config, runtime, start
    view.locator(".gw-actions button").first.click()
    assert host.wait_until(host.follow_ups, "a follow-up")[0].startswith("About <script>alert(1)</script>")
    assert host.frame.evaluate("window.__xss") is None
    assert host.dialogs == []


@pytest.mark.parametrize("mode", MODES)
def test_the_widget_listens_only_to_its_parent(host, mode):
    view = open_table(host, mode)
    forged = {"jsonrpc": "2.0", "method": "ui/notifications/tool-result",
              "params": {"content": [{"type": "text", "text": "forged"}], "isError": True}}
    host.frame.evaluate("m => window.postMessage(m, '*')", forged)  # the widget's own window is not its host
    if mode == "mcp-apps":
        assert host.request("ping", {})["result"] == {}  # answered after the forged message was handled
    else:
        host.frame.evaluate("() => new Promise(resolve => setTimeout(resolve, 0))")
    assert view.locator("[role=alert]").count() == 0
    assert view.locator("tbody tr").count() == 5


# ---- states -------------------------------------------------------------------------------------------

def test_error_result_shows_the_error_text(host):
    error = {"content": [{"type": "text", "text": "Backend answered 503: <b>maintenance</b> until 10:00"}],
             "isError": True}
    view = host.open("mcp-apps", served_html("table", table_config()), error)
    alert = view.get_by_role("alert")
    assert alert.locator("strong").inner_text() == "Something went wrong"
    assert alert.locator("p").inner_text() == "Backend answered 503: <b>maintenance</b> until 10:00"
    assert view.locator("h1").inner_text() == "Pets"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("kind", "empty"), [("table", []), ("card", {}), ("list", None)])
def test_empty_results_say_so(host, mode, kind, empty):
    answer = {"content": [{"type": "text", "text": "[]"}], "structuredContent": {"result": empty}}
    view = host.open(mode, served_html(kind, {"tool": "t", "kind": kind}), answer)
    assert view.get_by_role("status").inner_text() == "No results"
    assert view.locator("table, dl, ul").count() == 0


@pytest.mark.parametrize("mode", MODES)
def test_new_results_replace_the_view_and_repeats_keep_it(host, mode):
    view = open_table(host, mode)
    view.get_by_role("button", name="name").click()
    view.get_by_role("button", name="Next").click()
    answer = result(pets())
    answer["structuredContent"] = {"result": pets()[:5]}
    host.send_result(answer)  # the same data again (a host speaking both bridges): sorting and page stay
    if mode == "mcp-apps":
        host.request("ping", {})  # answered after the repeated result was handled
    else:
        host.frame.evaluate("() => new Promise(resolve => setTimeout(resolve, 0))")
    assert (pager_text(view), column(view, 1)) == (shown(6, 10, 12), sorted(NAMES)[5:10])

    host.send_result(result(pets()[:2]))
    view.get_by_text(shown(1, 2, 2)).wait_for(state="attached")
    assert view.locator("tbody tr").count() == 2
    assert view.locator(".gw-pager").is_hidden()  # one page: no pager


def test_without_any_host_the_widget_waits_quietly_in_the_system_theme(host):
    host.page.emulate_media(color_scheme="dark")
    page = host.open_alone(served_html("card", {"tool": "get_user", "title": "User", "kind": "card"}))
    assert page.get_by_role("status").inner_text() == "Waiting for data…"
    assert page.title() == "User"
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"  # prefers-color-scheme
    host.page.emulate_media(color_scheme="light")
    host.wait_until(lambda: page.evaluate("document.documentElement.dataset.theme") == "light", "the light theme")


def test_a_cancelled_tool_call_says_so(host):
    view = host.open("mcp-apps", served_html("table", table_config()), None)
    view.get_by_text("Waiting for data…").wait_for()
    host.page.evaluate("window.__host.notify('ui/notifications/tool-cancelled', { reason: 'stopped by the user' })")
    assert view.get_by_role("alert").locator("p").inner_text() == "The tool call was cancelled: stopped by the user"


CUSTOM_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Custom</title></head>
<body><main id="gateway-root"></main><pre id="state"></pre>
<!--gateway:config-->
<!--gateway:runtime-->
<script>
GatewayWidget.start(function (state) {
  const out = document.getElementById("state");
  out.textContent = JSON.stringify({ input: state.input, host: state.host, theme: state.theme, tool: state.config.tool,
                                     count: state.data.length, root: state.root.id });
  state.root.append(GatewayWidget.h("button", { type: "button", text: "First pet", onClick: function () {
    GatewayWidget.callTool("get_pet", { petId: state.data[0].id }).then(function (answer) {
      out.textContent = GatewayWidget.fill("called: {name} owned by {owner.name}", GatewayWidget.dataOf(answer));
    });
  } }));
});
</script></body></html>
"""


@pytest.mark.parametrize("mode", MODES)
def test_custom_templates_get_the_state_and_the_bridge(host, mode):
    html = served_template(CUSTOM_TEMPLATE, {"tool": "list_pets", "title": "Mine", "kind": "custom"})
    view = host.open(mode, html, result(pets()), tool_input={"status": "available"}, theme="dark",
                     tool_results={"get_pet": result(pet_detail("Rex"))})
    view.get_by_role("button", name="First pet").wait_for()
    assert json.loads(view.locator("#state").inner_text()) == {
        "input": {"status": "available"}, "host": mode, "theme": "dark", "tool": "list_pets", "count": 12,
        "root": "gateway-root"}
    view.get_by_role("button", name="First pet").click()
    view.get_by_text("called: Rex owned by Grace Hopper").wait_for()
    assert host.tool_calls() == [("get_pet", {"petId": 7})]


# ---- the MCP Apps protocol ----------------------------------------------------------------------------

def test_mcp_apps_handshake_size_reports_and_host_requests(host):
    view = open_table(host, "mcp-apps", actions=PET_ACTIONS, rowAction=None)
    messages = host.messages()
    initialize = messages[0]
    assert initialize["method"] == "ui/initialize" and initialize["jsonrpc"] == "2.0"
    assert initialize["params"]["protocolVersion"] == "2026-01-26"
    assert set(initialize["params"]["appInfo"]) == {"name", "version"}
    assert initialize["params"]["appCapabilities"] == {"availableDisplayModes": ["inline"]}
    assert messages[1] == {"jsonrpc": "2.0", "method": "ui/notifications/initialized", "params": {}}

    def reported_height() -> int:
        sizes = [m["params"] for m in host.messages() if m.get("method") == "ui/notifications/size-changed"]
        return sizes[-1]["height"] if sizes else 0

    def content_height() -> int:
        return host.frame.evaluate("Math.ceil(document.documentElement.getBoundingClientRect().height)")

    host.wait_until(lambda: reported_height() == content_height(), "a size report matching the content")
    before = reported_height()
    assert 200 < before < 600
    view.locator("tbody tr").first.click()  # the row's detail opens under the table: the widget grows
    host.wait_until(lambda: reported_height() == content_height() > before, "a larger size report")
    assert host.page.evaluate("document.getElementById('widget').getBoundingClientRect().height") == reported_height()

    assert host.request("ping", {}) == {"jsonrpc": "2.0", "id": "host-1", "result": {}}
    unknown = host.request("ui/unknown", {})
    assert unknown["error"]["code"] == -32601
    assert host.request("ui/resource-teardown", {"reason": "test"})["result"] == {}


# ---- themes -------------------------------------------------------------------------------------------

def _luminance(css: str) -> float:
    red, green, blue = (int(part) / 255 for part in css[css.index("(") + 1:css.index(")")].split(",")[:3])

    def linear(channel: float) -> float:
        return channel / 12.92 if channel <= 0.03928 else ((channel + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def _contrast(first: str, second: str) -> float:
    high, low = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


THEME_DATA = {"table": (table_config(actions=PET_ACTIONS), pets()), "card": ({"kind": "card", "title": "User",
              "actions": USER_ACTIONS}, USER), "list": ({"kind": "list", "title": "Cities"}, CITIES)}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["table", "card", "list"])
def test_light_and_dark_themes_are_readable(host, mode, kind):
    config, data = THEME_DATA[kind]
    view = host.open(mode, served_html(kind, config), result(data), theme="light")
    view.locator("#gateway-root h1").wait_for()
    colors_js = """() => {
        const body = getComputedStyle(document.body), muted = document.querySelector('.gw-status, .gw-card dt');
        const button = document.querySelector('.gw-button:not(.gw-secondary)');
        return { theme: document.documentElement.dataset.theme, bg: body.backgroundColor, text: body.color,
                 muted: muted ? getComputedStyle(muted).color : body.color,
                 buttonBg: button ? getComputedStyle(button).backgroundColor : body.color,
                 buttonText: button ? getComputedStyle(button).color : body.backgroundColor };
    }"""
    light = host.frame.evaluate(colors_js)
    host.screenshot(ARTIFACTS / f"{kind}-{mode}-light.png")
    host.set_theme("dark")
    host.wait_until(lambda: host.frame.evaluate("document.documentElement.dataset.theme") == "dark", "the dark theme")
    dark = host.frame.evaluate(colors_js)
    host.screenshot(ARTIFACTS / f"{kind}-{mode}-dark.png")

    assert light["theme"] == "light"
    assert (light["bg"], light["text"]) != (dark["bg"], dark["text"])
    assert _luminance(dark["bg"]) < _luminance(light["bg"])
    for colors in (light, dark):  # WCAG AA: 4.5:1 for text
        assert _contrast(colors["text"], colors["bg"]) >= 4.5, colors
        assert _contrast(colors["muted"], colors["bg"]) >= 4.5, colors
        assert _contrast(colors["buttonText"], colors["buttonBg"]) >= 4.5, colors


# ---- state that survives a re-render ------------------------------------------------------------------

def big_table(host: WidgetHost, mode: str, **options: Any) -> FrameLocator:
    """12 pets in pages of 5, fullscreen allowed by the config; in MCP Apps mode loaded from its own origin."""
    options.setdefault("same_origin", mode == "mcp-apps")
    config = table_config(columns=["id", "name", "status"], displayModes=["inline", "fullscreen"])
    view = host.open(mode, served_html("table", config), result(pets()), **options)
    view.locator("tbody tr").first.wait_for()
    return view


def model_line(host: WidgetHost) -> str:
    """The one line the model was last given about the view (modelContent, or ui/update-model-context)."""
    if host.mode == "openai":
        states = host.wait_until(host.widget_states, "a widget state")
        return states[-1]["modelContent"]
    contexts = host.wait_until(host.model_contexts, "a model context update")
    (block,) = contexts[-1]["content"]
    assert block["type"] == "text" and contexts[-1]["structuredContent"]["view"]["sort"] is not None
    return block["text"]


@pytest.mark.parametrize("mode", MODES)
def test_sort_page_and_selected_row_survive_a_rerender(host, mode):
    view = big_table(host, mode)
    view.get_by_role("button", name="name").click()
    view.get_by_role("button", name="name").click()  # descending
    view.get_by_role("button", name="Next").click()
    descending = sorted(NAMES, reverse=True)
    assert column(view, 1) == descending[5:10]
    chosen = descending[6]
    view.locator("tbody tr", has_text=chosen).locator("td").nth(1).click()  # no row action: the row's details
    view.locator(".gw-detail h2", has_text=chosen).wait_for()
    line = host.wait_until(lambda: next((text for text in [model_line(host)] if chosen in text), None),
                           "the selection's line")
    assert line == f"Pets: rows 6\u201310 of 12 (page 2 of 3), sorted by name (descending), selected row: {chosen}."
    assert "\n" not in line
    if mode == "openai":
        state = host.widget_states()[-1]
        assert set(state) == {"modelContent", "privateContent"}
        saved = state["privateContent"]["io.semantic-adapter-gateway/view"]
        assert (saved["sort"], saved["descending"], saved["page"]) == ("name", True, 1)

    view = host.rerender()
    view.locator("tbody tr").first.wait_for()
    assert (host.widget_states() if mode == "openai" else host.model_contexts()) == []  # a fresh host: not saved
    assert column(view, 1) == descending[5:10]  # the order and the page are back
    assert pager_text(view) == shown(6, 10, 12)
    assert view.locator("th[aria-sort]").all_text_contents() == ["name▼"]
    assert view.locator("tr.gw-selected").count() == 1
    assert view.locator("tr[aria-current=true] td").nth(1).inner_text() == chosen
    assert view.locator(".gw-detail h2").inner_text() == chosen  # its details open again
    assert host.frame.evaluate("document.activeElement === document.body")  # without taking the focus

    view.get_by_role("button", name="Previous").click()  # and the widget goes on from there
    assert column(view, 1) == descending[:5]
    told(host, f"Pets: rows 1\u20135 of 12 (page 1 of 3), sorted by name (descending), selected row: {chosen}.")


def test_a_state_saved_for_other_data_is_not_applied(host):
    view = big_table(host, "openai")
    view.get_by_role("button", name="id").click()
    host.wait_until(host.widget_states, "a widget state")
    view = host.rerender()
    view.locator("th[aria-sort]").wait_for()
    assert column(view, 0) == ["1", "2", "3", "4", "5"]
    host.send_result(result(pets()[:7]))  # a new result in the same frame: a fresh view, not the saved one
    view.get_by_text(shown(1, 5, 7)).wait_for()
    assert view.locator("th[aria-sort]").count() == 0
    assert column(view, 0) == [str(pet_id) for pet_id in IDS[:5]]


def test_without_storage_an_mcp_apps_view_starts_fresh_and_still_tells_the_model(host):
    view = big_table(host, "mcp-apps", same_origin=False)  # srcdoc, opaque origin: no localStorage
    view.get_by_role("button", name="status").click()
    told(host, "Pets: rows 1\u20135 of 12 (page 1 of 3), sorted by status (ascending).")
    view = host.rerender()
    view.locator("tbody tr").first.wait_for()
    assert view.locator("th[aria-sort]").count() == 0
    assert column(view, 0) == [str(pet_id) for pet_id in IDS[:5]]


def test_hosts_that_take_no_model_context_get_none(host):
    view = big_table(host, "mcp-apps", capabilities={})
    view.get_by_role("button", name="id").click()
    assert host.request("ping", {})["result"] == {}  # handled after the click's messages
    assert host.model_contexts() == []
    assert view.locator("th[aria-sort]").all_text_contents() == ["id▲"]


@pytest.mark.parametrize("mode", MODES)
def test_a_list_keeps_its_page(host, mode):
    config = {"tool": "list_cities", "title": "Cities", "kind": "list", "pageSize": 10}
    view = host.open(mode, served_html("list", config), result(CITIES), same_origin=mode == "mcp-apps")
    view.get_by_role("button", name="Next").click()
    view.get_by_role("button", name="Next").click()
    told(host, "Cities: items 21\u201323 of 23 (page 3 of 3).", model_line_text)
    view = host.rerender()
    view.locator("li.gw-item").first.wait_for()
    assert view.locator("li.gw-item").all_inner_texts() == CITIES[20:]


def model_line_text(host: WidgetHost) -> str:
    """Like `model_line`, for views without a sort order."""
    if host.mode == "openai":
        return host.wait_until(host.widget_states, "a widget state")[-1]["modelContent"]
    return host.wait_until(host.model_contexts, "a model context update")[-1]["content"][0]["text"]


def told(host: WidgetHost, expected: str, line: Callable[[WidgetHost], str] = model_line) -> None:
    """Waits until the last line the model was given is `expected` (each click sends one, asynchronously)."""
    host.wait_until(lambda: line(host) == expected, f"the model to be told {expected!r}; last: {line(host)!r}")


# ---- display modes and layout -------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_full_screen_is_requested_when_the_host_offers_it(host, mode):
    view = big_table(host, mode, display_modes=("inline", "fullscreen"))
    if mode == "mcp-apps":
        assert host.messages()[0]["params"]["appCapabilities"] == {"availableDisplayModes": ["inline", "fullscreen"]}
    switch = view.get_by_role("button", name="Full screen")
    assert switch.get_attribute("aria-pressed") == "false"
    switch.click()
    view.get_by_role("button", name="Exit full screen").wait_for()
    assert host.display_requests() == ["fullscreen"]
    assert host.frame.evaluate("document.documentElement.dataset.displayMode") == "fullscreen"
    scroll = host.frame.evaluate("getComputedStyle(document.querySelector('.gw-scroll')).overflowY")
    assert scroll == "auto"  # full screen: the table scrolls inside the host's height, its header sticks
    assert host.frame.evaluate("getComputedStyle(document.querySelector('.gw-table th')).position") == "sticky"
    view.get_by_role("button", name="Exit full screen").click()
    view.get_by_role("button", name="Full screen").wait_for()
    assert host.display_requests() == ["fullscreen", "inline"]
    assert host.frame.evaluate("document.documentElement.dataset.displayMode") == "inline"


@pytest.mark.parametrize("mode", MODES)
def test_full_screen_is_not_offered_when_the_host_does_not_offer_it(host, mode):
    view = big_table(host, mode, display_modes=("inline",))
    assert view.locator(".gw-display").count() == 0
    refused = host.frame.evaluate("GatewayWidget.requestDisplayMode('fullscreen')"
                                  ".then(() => 'granted', e => e.message)")
    assert refused == "The display mode fullscreen is not offered here."
    if mode == "mcp-apps":
        assert host.request("ping", {})["result"] == {}
    assert host.display_requests() == []
    assert host.frame.evaluate("document.documentElement.dataset.displayMode") == "inline"


def test_full_screen_needs_a_big_table_and_the_config(host):
    small = table_config(displayModes=["inline", "fullscreen"])
    view = host.open("mcp-apps", served_html("table", small), result(pets()[:3]),
                     display_modes=("inline", "fullscreen"))
    view.locator("tbody tr").nth(2).wait_for()
    assert view.locator(".gw-display").count() == 0  # one page of three columns... fits inline
    view = host.open("mcp-apps", served_html("table", table_config()), result(pets()),
                     display_modes=("inline", "fullscreen"))
    view.locator("tbody tr").first.wait_for()
    assert view.locator(".gw-display").count() == 0  # the config does not ask for it
    assert host.messages()[0]["params"]["appCapabilities"] == {"availableDisplayModes": ["inline"]}


@pytest.mark.parametrize("mode", MODES)
def test_layout_follows_the_max_height_and_safe_area(host, mode):
    view = big_table(host, mode, max_height=300, safe_area={"top": 20, "right": 0, "bottom": 8, "left": 10})
    padding = "(() => { const s = getComputedStyle(document.getElementById('gateway-root')); " \
              "return [s.paddingTop, s.paddingRight, s.paddingBottom, s.paddingLeft, s.maxHeight]; })()"
    assert host.frame.evaluate(padding) == ["32px", "12px", "20px", "22px", "300px"]
    assert host.frame.evaluate("document.documentElement.getBoundingClientRect().height") <= 300
    insets = {"top": 0, "right": 4, "bottom": 0, "left": 0}
    if mode == "openai":
        host.frame.evaluate("i => window.__setGlobals({ safeArea: { insets: i }, maxHeight: 500 })", insets)
    else:
        host.page.evaluate("i => window.__host.notify('ui/notifications/host-context-changed', "
                           "{ safeAreaInsets: i, containerDimensions: { width: 720, maxHeight: 500 } })", insets)
    host.wait_until(lambda: host.frame.evaluate(padding) == ["12px", "16px", "12px", "12px", "500px"],
                    "the new insets")
    assert view.locator("tbody tr").count() == 5


# ---- links --------------------------------------------------------------------------------------------

LINKED = [{"id": 1, "name": "Rex", "homepage": "https://pets.example/rex?from=table", "docs": "javascript:alert(1)",
           "photo": "data:text/html,<script>alert(1)</script>", "ftp": "ftp://files.example/rex"},
          {"id": 2, "name": "Bella", "homepage": "http://pets.example/bella", "docs": "https://docs.example/bella",
           "photo": "not a url", "ftp": "  https://pets.example/spaced  "}]


@pytest.mark.parametrize("mode", MODES)
def test_a_link_opens_through_the_host_and_the_frame_stays(host, mode):
    config = table_config(linkFields=["docs", "photo"])
    view = host.open(mode, served_html("table", config), result(LINKED))
    view.locator("tbody tr").first.wait_for()
    before = host.frame.url
    links = view.locator("tbody a.gw-link")
    assert links.all_inner_texts() == ["https://pets.example/rex?from=table", "http://pets.example/bella",
                                       "https://docs.example/bella", "https://pets.example/spaced"]
    assert links.first.get_attribute("href") == "https://pets.example/rex?from=table"
    links.first.click()
    assert host.wait_until(host.links_opened, "a link request") == ["https://pets.example/rex?from=table"]
    assert host.frame.url == before  # no navigation
    assert view.locator(".gw-detail").is_hidden()  # the click opened the link, not the row
    links.nth(2).focus()
    host.page.keyboard.press("Enter")
    host.wait_until(lambda: len(host.links_opened()) == 2, "a second link request")
    assert host.links_opened()[1] == "https://docs.example/bella"
    if mode == "mcp-apps":
        opened = [m for m in host.messages() if m.get("method") == "ui/open-link"]
        assert opened[0]["params"] == {"url": "https://pets.example/rex?from=table"} and "id" in opened[0]
    assert host.frame.url == before
    assert host.frame.evaluate("window.__xss") is None


@pytest.mark.parametrize("mode", MODES)
def test_unsafe_urls_are_shown_as_text(host, mode):
    config = table_config(linkFields=["docs", "photo"])
    view = host.open(mode, served_html("table", config), result(LINKED))
    view.locator("tbody tr").first.wait_for()
    first = view.locator("tbody tr").first.locator("td")
    assert first.nth(3).inner_text() == "javascript:alert(1)"  # a uri field, but not http(s): text
    assert first.nth(3).locator("a").count() == 0 and first.nth(4).locator("a").count() == 0
    assert first.nth(5).locator("a").count() == 0  # ftp: text
    assert host.frame.evaluate("document.querySelectorAll('a:not([href^=\"http\"])').length") == 0
    first.nth(3).click()  # a plain cell: the row opens, nothing navigates
    view.locator(".gw-detail h2", has_text="Rex").wait_for()
    detail = view.locator(".gw-detail")
    assert detail.locator("a").all_inner_texts() == ["https://pets.example/rex?from=table"]
    refused = host.frame.evaluate("GatewayWidget.openLink('javascript:alert(1)').then(() => 'opened', e => e.message)")
    assert refused == "Only http and https links open."
    assert host.links_opened() == []
    assert host.dialogs == []


@pytest.mark.parametrize("mode", MODES)
def test_links_in_cards_and_lists(host, mode):
    data = {"name": "Rex", "site": "https://pets.example/rex", "owner": {"profile": "https://people.example/grace"},
            "photos": ["https://img.example/1.jpg", "javascript:void(0)"]}
    view = host.open(mode, served_html("card", {"tool": "get_pet", "kind": "card", "linkFields": ["photos"]}),
                     result(data))
    view.locator("dl.gw-card").first.wait_for()
    assert view.locator("a.gw-link").all_inner_texts() == ["https://pets.example/rex", "https://people.example/grace",
                                                           "https://img.example/1.jpg"]
    view.get_by_role("link", name="https://people.example/grace").click()
    assert host.wait_until(host.links_opened, "a link request") == ["https://people.example/grace"]

    view = host.open(mode, served_html("list", {"tool": "list_sites", "kind": "list"}),
                     result(["https://a.example/", "plain", "javascript:alert(1)"]))
    view.locator("li.gw-item").first.wait_for()
    assert view.locator("li a").all_inner_texts() == ["https://a.example/"]


def test_a_host_that_opens_no_links_shows_them_as_text(host):
    view = host.open("mcp-apps", served_html("table", table_config()), result(LINKED), capabilities={})
    view.locator("tbody tr").first.wait_for()
    assert view.locator("a").count() == 0
    assert view.locator("tbody tr").first.locator("td").nth(2).inner_text() == "https://pets.example/rex?from=table"
