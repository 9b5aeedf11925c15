"""A test host for the widgets: one Playwright page that embeds a served widget the way real hosts do.

Two modes. "mcp-apps": the host page puts the widget HTML in a sandboxed iframe (`sandbox="allow-scripts"`,
`srcdoc`) and speaks the host side of MCP Apps over postMessage: it answers `ui/initialize`, then sends
`ui/notifications/tool-input` and `ui/notifications/tool-result`, answers `tools/call` with canned results and
`ui/message` with `{}`, sizes the iframe from `ui/notifications/size-changed`, and records every message the
view sends in `window.__events`. It offers the display modes a test gives (`ui/request-display-mode` switches
and reports the new mode in `ui/notifications/host-context-changed`), answers `ui/open-link` and
`ui/update-model-context` with `{}`, and names the tool call in `hostContext.toolInfo`. With `same_origin` the
widget is loaded from its own origin on the host's site (`allow-scripts allow-same-origin`, as hosts with a
sandbox proxy do), so it has storage that outlives a re-render. "openai": like ChatGPT, the widget is loaded
from its own origin into a sandboxed iframe and gets a `window.openai` shim (an init script) that records `callTool`,
`sendFollowUpMessage`, `setWidgetState`, `openExternal` and `requestDisplayMode` (present only when the test
offers full screen); the host page does not speak MCP Apps, it only records what it receives. `rerender()`
shows the widget again in a new document, the openai host giving back the last widget state.

Everything is served by `page.route` on fake origins, so no request can leave the browser; the host records
every request, console error, page error and dialog so a test can assert there were none.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from playwright.sync_api import ConsoleMessage, Dialog, Frame, FrameLocator, Page, Request, Route

from gateway.widgets import fill, script_json

HOST_URL = "http://widget-host.test/"
SANDBOX_URL = "http://widget-sandbox.test/widget.html"  # openai mode: the widget's own origin, as in ChatGPT
STORAGE_URL = "http://widgets.widget-host.test/widget.html"
"""MCP Apps mode with `same_origin`: the widget's own origin on the host's site. Chromium denies a cross-site
frame its storage (as more and more browsers do), so only a same-site widget origin has storage to test with."""
WIDGETS = Path(__file__).resolve().parent.parent / "widgets"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

Mode = Literal["mcp-apps", "openai"]
MODES: tuple[Mode, ...] = ("mcp-apps", "openai")


def served_html(kind: str, config: Mapping[str, Any]) -> str:
    """A built-in widget as the server serves it: `widgets/<kind>.html` filled by `gateway.widgets.fill`."""
    return served_template((WIDGETS / f"{kind}.html").read_text(encoding="utf-8"), config)


def served_template(template: str, config: Mapping[str, Any]) -> str:
    """Any template (a custom one too) with the runtime and `config` filled in."""
    return fill(template, (WIDGETS / "runtime.js").read_text(encoding="utf-8"), dict(config))


HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Widget test host</title>
<style>body { margin: 0; padding: 16px; background: #8a8f98; } iframe { display: block; width: 720px; height: 160px;
border: 0; border-radius: 12px; background: transparent; }</style></head>
<body><iframe id="widget" title="Widget" sandbox="allow-scripts"></iframe>
<script type="application/json" id="scenario">__SCENARIO__</script>
<script>
(() => {
  const scenario = JSON.parse(document.getElementById("scenario").textContent);
  const frame = document.getElementById("widget");
  const events = window.__events = [];
  const answers = new Map();
  let nextId = 1;
  const send = (message) => frame.contentWindow.postMessage({ jsonrpc: "2.0", ...message }, "*");
  const hostContext = { theme: scenario.theme, displayMode: "inline", availableDisplayModes: scenario.displayModes,
                        platform: "web", locale: "en-US",
                        containerDimensions: { width: 720, maxHeight: scenario.maxHeight },
                        safeAreaInsets: scenario.safeArea, toolInfo: { id: "call-1", tool: { name: "the-tool" } } };

  window.addEventListener("message", (event) => {
    if (event.source !== frame.contentWindow) return;
    const message = event.data;
    if (message && typeof message.openaiHeight === "number") {  // the openai shim's notifyIntrinsicHeight
      frame.style.height = message.openaiHeight + "px";
      return;
    }
    events.push(message);
    if (scenario.mode !== "mcp-apps" || !message || message.jsonrpc !== "2.0") return;
    const { id, method, params } = message;
    if (method === undefined) { answers.set(id, message); return; }
    switch (method) {
      case "ui/initialize":
        send({ id, result: { protocolVersion: "2026-01-26", hostInfo: { name: "widget-test-host", version: "1.0.0" },
                             hostCapabilities: { serverTools: {}, message: { text: {} }, ...scenario.capabilities },
                             hostContext } });
        break;
      case "ui/open-link":
      case "ui/update-model-context":
        send({ id, result: {} });
        break;
      case "ui/request-display-mode": {
        const granted = hostContext.availableDisplayModes.includes(params.mode) ? params.mode : hostContext.displayMode;
        const changed = granted !== hostContext.displayMode;
        hostContext.displayMode = granted;
        send({ id, result: { mode: granted } });
        if (changed) send({ method: "ui/notifications/host-context-changed", params: { displayMode: granted } });
        break;
      }
      case "ui/notifications/initialized":
        send({ method: "ui/notifications/tool-input", params: { arguments: scenario.input } });
        if (scenario.result !== null) send({ method: "ui/notifications/tool-result", params: scenario.result });
        break;
      case "ui/notifications/size-changed":
        frame.style.height = params.height + "px";
        break;
      case "tools/call": {
        const canned = scenario.toolResults[params.name];
        const unknown = { code: -32602, message: "Unknown tool: " + params.name };
        send(canned ? { id, result: canned } : { id, error: unknown });
        break;
      }
      case "ui/message":
        send({ id, result: {} });
        break;
      default:
        if (id !== undefined) send({ id, error: { code: -32601, message: "Method not found: " + method } });
    }
  });

  window.__host = {
    notify: (method, params) => send({ method, params }),
    request: (method, params) => { const id = "host-" + nextId++; send({ id, method, params }); return id; },
    answer: (id) => answers.get(id) ?? null,
  };
  if (scenario.mode === "mcp-apps" && !scenario.sameOrigin) frame.srcdoc = scenario.html;
  else {
    if (scenario.sameOrigin) frame.setAttribute("sandbox", "allow-scripts allow-same-origin");
    frame.src = scenario.src;
  }
})();
</script></body></html>
"""

OPENAI_SHIM = """
(() => {
  if (!location.href.startsWith(__SANDBOX_URL__)) return;
  const scenario = __SCENARIO__;
  const calls = window.__openai = [];
  const textOf = (result) => (result.content || []).filter((b) => b.type === "text").map((b) => b.text).join("\\n");
  window.openai = {
    theme: scenario.theme, locale: "en-US", displayMode: "inline", maxHeight: scenario.maxHeight,
    safeArea: { insets: scenario.safeArea }, widgetState: scenario.widgetState,
    toolInput: scenario.input,
    toolOutput: scenario.result ? scenario.result.structuredContent ?? null : null,
    toolResponseMetadata: scenario.result ? scenario.result._meta ?? null : null,
    async callTool(name, args) {
      calls.push({ kind: "callTool", name, arguments: args });
      const canned = scenario.toolResults[name];
      if (!canned) throw new Error("Unknown tool: " + name);
      return { ...canned, result: textOf(canned) };  // ChatGPT adds the text as `result`
    },
    async sendFollowUpMessage(payload) { calls.push({ kind: "sendFollowUpMessage", payload }); },
    notifyIntrinsicHeight(height) {
      calls.push({ kind: "notifyIntrinsicHeight", height });
      window.parent.postMessage({ openaiHeight: height }, "*");
    },
    async setWidgetState(state) {
      calls.push({ kind: "setWidgetState", state: JSON.parse(JSON.stringify(state)) });
      window.openai.widgetState = state;
    },
    async openExternal(payload) { calls.push({ kind: "openExternal", payload }); },
  };
  if (scenario.displayModes.includes("fullscreen")) {
    window.openai.requestDisplayMode = async ({ mode }) => {
      calls.push({ kind: "requestDisplayMode", mode });
      window.__setGlobals({ displayMode: mode });
      return { mode };
    };
  }
  window.__setGlobals = (globals) => {
    Object.assign(window.openai, globals);
    window.dispatchEvent(new CustomEvent("openai:set_globals", { detail: { globals } }));
  };
})();
"""


class WidgetHost:
    """One page hosting one widget, with everything the widget did and every problem it caused recorded."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.mode: Mode | None = None
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self._routes: dict[str, str] = {}
        page.set_default_timeout(5000)  # everything is local: a wait this long means the widget is broken
        page.on("request", self._on_request)
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("dialog", self._on_dialog)
        page.route("**/*", self._serve)

    def open(self, mode: Mode, html: str, result: Mapping[str, Any] | None, *,
             tool_input: Mapping[str, Any] | None = None, theme: str = "light",
             tool_results: Mapping[str, Mapping[str, Any]] | None = None,
             display_modes: tuple[str, ...] = ("inline",), same_origin: bool = False,
             capabilities: Mapping[str, Any] | None = None, max_height: int = 4000,
             safe_area: Mapping[str, int] | None = None) -> FrameLocator:
        """Show `html` in `mode` with `result` (a CallToolResult; None: the host never sends one).

        `display_modes`: what the host offers (MCP Apps `availableDisplayModes`; with "fullscreen", the openai
        shim has `requestDisplayMode`). `capabilities`: MCP Apps host capabilities besides serverTools and
        message (default: openLinks and updateModelContext). `same_origin`: MCP Apps mode loads the widget from
        its own origin, with storage."""
        self.mode = mode
        offered = {"openLinks": {}, "updateModelContext": {"text": {}}} if capabilities is None else capabilities
        src = STORAGE_URL if mode == "mcp-apps" else SANDBOX_URL
        scenario = {"mode": mode, "html": html, "src": src, "result": result, "input": dict(tool_input or {}),
                    "theme": theme, "toolResults": dict(tool_results or {}), "displayModes": list(display_modes),
                    "sameOrigin": same_origin, "capabilities": dict(offered), "maxHeight": max_height,
                    "safeArea": dict(safe_area or {"top": 0, "right": 0, "bottom": 0, "left": 0}),
                    "widgetState": None}
        self._routes = {HOST_URL: HOST_PAGE.replace("__SCENARIO__", script_json(scenario))}
        if mode == "openai" or same_origin:
            self._routes[src] = html
        if mode == "openai":
            self.page.add_init_script(OPENAI_SHIM.replace("__SANDBOX_URL__", json.dumps(SANDBOX_URL))
                                      .replace("__SCENARIO__", script_json(scenario)))
        self.page.goto(HOST_URL)
        return self.view

    def rerender(self) -> FrameLocator:
        """The widget shown again in a new document (the conversation scrolled back to it, say), with the same
        tool input and result. The openai host gives back the widget state it was last given; an MCP Apps host
        has none to give: the widget finds its state in its own storage (with `same_origin`)."""
        if self.mode == "openai":
            states = self.widget_states()
            state = states[-1] if states else None
            self.page.add_init_script(f"if (location.href.startsWith({json.dumps(SANDBOX_URL)})) "
                                      f"window.openai.widgetState = {script_json(state)};")
        self.page.goto(HOST_URL)
        return self.view

    def open_alone(self, html: str) -> Page:
        """The widget as a top-level page: no parent to talk to and no window.openai."""
        self._routes = {SANDBOX_URL: html}
        self.page.goto(SANDBOX_URL)
        return self.page

    @property
    def view(self) -> FrameLocator:
        """Locators inside the widget."""
        return self.page.frame_locator("#widget")

    @property
    def frame(self) -> Frame:
        """The widget's frame, for evaluating script in it."""
        element = self.page.wait_for_selector("#widget", state="attached")
        frame = element.content_frame() if element else None
        assert frame is not None, "the host page has no widget frame"
        return frame

    def messages(self) -> list[dict[str, Any]]:
        """JSON-RPC messages the widget sent to the host page, in order."""
        return self.page.evaluate("window.__events")

    def _openai_calls(self, kind: str) -> list[dict[str, Any]]:
        return [call for call in self.frame.evaluate("window.__openai") if call["kind"] == kind]

    def tool_calls(self) -> list[tuple[str, Any]]:
        """(name, arguments) of every tool call the widget made, through whichever bridge the mode has."""
        if self.mode == "openai":
            return [(call["name"], call["arguments"]) for call in self._openai_calls("callTool")]
        return [(m["params"]["name"], m["params"].get("arguments"))
                for m in self.messages() if m.get("method") == "tools/call"]

    def follow_ups(self) -> list[str]:
        """The text of every follow-up message the widget sent."""
        if self.mode == "openai":
            return [call["payload"]["prompt"] for call in self._openai_calls("sendFollowUpMessage")]
        return [block["text"] for m in self.messages() if m.get("method") == "ui/message"
                for block in m["params"]["content"]]

    def widget_states(self) -> list[dict[str, Any]]:
        """openai mode: every state the widget gave `setWidgetState`, in order."""
        return [call["state"] for call in self._openai_calls("setWidgetState")]

    def model_contexts(self) -> list[dict[str, Any]]:
        """MCP Apps mode: the params of every `ui/update-model-context` request."""
        return [m["params"] for m in self.messages() if m.get("method") == "ui/update-model-context"]

    def links_opened(self) -> list[str]:
        """Every URL the widget asked the host to open (openExternal, or ui/open-link)."""
        if self.mode == "openai":
            return [call["payload"]["href"] for call in self._openai_calls("openExternal")]
        return [m["params"]["url"] for m in self.messages() if m.get("method") == "ui/open-link"]

    def display_requests(self) -> list[str]:
        """Every display mode the widget asked the host for."""
        if self.mode == "openai":
            return [call["mode"] for call in self._openai_calls("requestDisplayMode")]
        return [m["params"]["mode"] for m in self.messages() if m.get("method") == "ui/request-display-mode"]

    def set_theme(self, theme: str) -> None:
        """The host switches theme (host-context-changed, or openai:set_globals)."""
        if self.mode == "openai":
            self.frame.evaluate("theme => window.__setGlobals({ theme })", theme)
        else:
            self.page.evaluate("t => window.__host.notify('ui/notifications/host-context-changed', { theme: t })",
                               theme)

    def send_result(self, result: Mapping[str, Any]) -> None:
        """A new tool result for the widget (tool-result notification, or new window.openai globals)."""
        if self.mode == "openai":
            self.frame.evaluate("r => window.__setGlobals({ toolOutput: r.structuredContent ?? null, "
                                "toolResponseMetadata: r._meta ?? null })", dict(result))
        else:
            self.page.evaluate("r => window.__host.notify('ui/notifications/tool-result', r)", dict(result))

    def request(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON-RPC request from the host to the widget (MCP Apps mode), and the widget's answer."""
        request_id = self.page.evaluate("([m, p]) => window.__host.request(m, p)", [method, dict(params)])
        return self.wait_until(lambda: self.page.evaluate("id => window.__host.answer(id)", request_id),
                               f"an answer to {method}")

    def wait_until(self, check: Callable[[], Any], what: str, timeout: float = 5.0) -> Any:
        """Polls `check` until it returns something truthy; fails with `what` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            self.page.wait_for_timeout(25)

    def problems(self) -> list[str]:
        """Console errors, page errors, dialogs and requests that went anywhere but the host's own pages."""
        allowed = set(self._routes)
        leaks = [f"request left the host: {url}" for url in self.requests
                 if url not in allowed and not url.startswith(("data:", "about:"))]
        return self.errors + [f"dialog: {text}" for text in self.dialogs] + leaks

    def settle(self) -> None:
        """Waits until the host has sized the iframe to the widget's content (both bridges report it)."""
        content = "Math.ceil(document.documentElement.getBoundingClientRect().height)"
        self.wait_until(lambda: self.frame.evaluate(content) == self.page.evaluate(
            "document.getElementById('widget').getBoundingClientRect().height"), "the iframe to fit the widget")

    def screenshot(self, path: Path) -> None:
        """The whole host page once the widget is sized to its content.

        The viewport grows to the page instead of `full_page=True`, which leaves the part of a cross-origin
        (out-of-process) iframe below the first viewport unpainted.
        """
        self.settle()
        viewport = self.page.viewport_size or {"width": 760, "height": 640}
        height = self.page.evaluate("document.documentElement.scrollHeight")
        self.page.set_viewport_size({"width": viewport["width"], "height": max(viewport["height"], height)})
        two_frames = "new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
        self.frame.evaluate(two_frames)  # the widget repaints for the larger viewport
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path))
        self.page.set_viewport_size(viewport)

    def _serve(self, route: Route) -> None:
        body = self._routes.get(route.request.url)
        if body is None:
            route.abort()
        else:
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=body)

    def _on_request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "assert"):
            self.errors.append(f"console {message.type}: {message.text}")

    def _on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()
