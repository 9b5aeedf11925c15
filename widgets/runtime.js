/*
 * Semantic Adapter Gateway: the widget runtime, shared by the built-in widgets and custom templates.
 *
 * The server inlines this script into every widget it serves. It connects to whichever host bridge exists
 * (MCP Apps: JSON-RPC over postMessage with window.parent; ChatGPT: window.openai), turns a tool result into
 * the data to show, renders it with DOM APIs only (never innerHTML: every value comes from a REST backend
 * and is untrusted), runs the actions configured in the mapping and tells the host how big the content is.
 * Plain ES2020 without modules or network access, because hosts run widgets under a CSP that forbids loads.
 *
 * API (window.GatewayWidget), for the built-in templates and custom ones alike:
 *   start(render)        connect and call render(state) each time new data arrives, with state =
 *                        {data, result, input, config, theme, host ("mcp-apps" | "openai"), root (#gateway-root)}.
 *                        Error, empty and text-only results never reach render: the runtime shows those itself.
 *                        A theme change does not re-render: the CSS variables switch with <html data-theme>.
 *   views.table/card/list/auto   the built-in renderers, usable as `render`
 *   callTool(name, args) -> Promise<CallToolResult>, sendFollowUp(text) -> Promise   through the host's bridge
 *   openLink(url) -> Promise   an http(s) URL opened by the host (openExternal / ui/open-link), never in the frame
 *   requestDisplayMode(mode) -> Promise<mode>   only modes the config lists and the host offers
 *
 * The views keep what the user did (sort order, page, selected row) as the host's widget state
 * (window.openai.setWidgetState, with a one-line `modelContent`) or, in MCP Apps hosts, in the frame's storage
 * plus `ui/update-model-context` for the model; it is restored when the widget is shown again. Links in the data
 * (http(s) only) open through the host. Tables offer full screen when the host offers it, and the layout follows
 * the display mode, the maximum height and the safe-area insets either bridge reports.
 *   dataOf(result), fill(template, scope), fillArguments(template, scope), h(tag, props, children)   helpers
 */
(function () {
  "use strict";

  const DATA_META_KEY = "io.semantic-adapter-gateway/widgetData";
  const PROTOCOL_VERSION = "2026-01-26"; // MCP Apps (SEP-1865) revision spoken over postMessage
  const APP_INFO = { name: "semantic-adapter-gateway-widget", version: "1.0.0" };
  const DEFAULT_PAGE_SIZE = 10;
  const MAX_DERIVED_COLUMNS = 8; // more columns than this make an unreadable table: the rest is in the detail
  const NESTED_DEPTH = 3; // how deep a card spells out nested values before summarising them
  const NESTED_ITEMS = 10; // items of a nested array a card spells out
  const HOST_ANSWER_MS = 10000; // how long an action waits for a host that never finished the handshake
  const VIEW_STATE_KEY = "io.semantic-adapter-gateway/view"; // our part of the widget state (privateContent)
  const STORAGE_PREFIX = "io.semantic-adapter-gateway/view/"; // MCP Apps: localStorage keys, per tool call
  const BIG_TABLE_COLUMNS = 6; // a table wider than this (or longer than a page) offers full screen
  const URL_TEXT = /^https?:\/\/[^\s]+$/i;

  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

  // ---- values -----------------------------------------------------------------------------------------

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function isScalar(value) {
    return value === null || typeof value !== "object";
  }

  function isEmpty(value) {
    if (value === null || value === undefined) return true;
    if (Array.isArray(value)) return value.length === 0;
    return isObject(value) && Object.keys(value).length === 0;
  }

  function plural(count, one, many) {
    return count + " " + (count === 1 ? one : many);
  }

  /** One line for any value: scalars as text, containers by size ("{3 fields}", "[5 items]"). */
  function summarise(value) {
    if (value === null || value === undefined) return "—";
    if (Array.isArray(value)) {
      const joined = value.every(isScalar) ? value.map(String).join(", ") : null;
      if (joined !== null && value.length > 0 && value.length <= 3 && joined.length <= 40) return joined;
      return "[" + plural(value.length, "item", "items") + "]";
    }
    if (typeof value === "object") return "{" + plural(Object.keys(value).length, "field", "fields") + "}";
    return String(value);
  }

  function own(object, key) {
    return object !== null && typeof object === "object" && Object.prototype.hasOwnProperty.call(object, key);
  }

  /** `path` ("name", "owner.login", "tags.0") in `scope`, or undefined. A key containing dots wins. */
  function lookup(scope, path) {
    if (own(scope, path)) return scope[path];
    let value = scope;
    for (const part of path.split(".")) {
      if (!own(value, part)) return undefined;
      value = value[part];
    }
    return value;
  }

  const PLACEHOLDER = /\{([^{}\s][^{}]*)\}/g;
  const EXACT_PLACEHOLDER = /^\{([^{}\s][^{}]*)\}$/;

  /** Text with `{key}` / `{a.b}` filled from `scope`; unknown keys stay as written (literal braces survive). */
  function fillText(template, scope) {
    return String(template).replace(PLACEHOLDER, function (match, path) {
      const value = lookup(scope, path.trim());
      if (value === undefined) return match;
      return isScalar(value) ? String(value) : JSON.stringify(value);
    });
  }

  /**
   * Tool arguments from a template: a string that is exactly "{key}" takes the value itself, keeping its
   * JSON type (an id stays an integer), and is left out when the scope has no such key, so an optional
   * parameter is not sent as literal text; other strings are filled as text.
   */
  function fillArguments(template, scope) {
    if (typeof template === "string") {
      const exact = EXACT_PLACEHOLDER.exec(template);
      return exact ? lookup(scope, exact[1].trim()) : fillText(template, scope);
    }
    if (Array.isArray(template)) {
      return template.map(function (item) { return fillArguments(item, scope); })
        .filter(function (item) { return item !== undefined; });
    }
    if (isObject(template)) {
      const filled = {};
      for (const [key, item] of Object.entries(template)) {
        const value = fillArguments(item, scope);
        if (value !== undefined) filled[key] = value;
      }
      return filled;
    }
    return template;
  }

  /** An http(s) URL as the host should open it, or null: anything else (javascript:, data:, ...) stays text. */
  function safeUrl(value) {
    if (typeof value !== "string") return null;
    const text = value.trim();
    if (!/^https?:\/\//i.test(text)) return null;
    try {
      const url = new URL(text);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (notUrl) {
      return null;
    }
  }

  /** Whether a value at `path` is meant as a link: a `format: uri` field of the output schema, or a bare URL. */
  function linkTarget(value, path, ctx) {
    if (typeof value !== "string") return null;
    const fields = ctx && Array.isArray(ctx.linkFields) ? ctx.linkFields : [];
    const meant = (path !== null && path !== undefined && fields.indexOf(path) >= 0) || URL_TEXT.test(value.trim());
    return meant ? safeUrl(value) : null;
  }

  /** Small non-cryptographic digest (FNV-1a, 32 bits) of a text: tells one result's data from another's. */
  function digest(text) {
    let hash = 0x811c9dc5;
    for (let index = 0; index < text.length; index++) {
      hash ^= text.charCodeAt(index);
      hash = Math.imul(hash, 0x01000193) >>> 0;
    }
    return hash.toString(16).padStart(8, "0");
  }

  /** The scope templates are filled from: the row itself, or {value} for a scalar list item. */
  function scopeOf(item) {
    return isObject(item) ? item : { value: item };
  }

  // ---- results ----------------------------------------------------------------------------------------

  function unwrap(value) {
    return isObject(value) && Object.keys(value).length === 1 && own(value, "result") ? value.result : value;
  }

  /** The data a result shows: the gateway's widget data, else structuredContent ({"result": X} unwrapped). */
  function dataOf(result) {
    if (!isObject(result)) return undefined;
    if (own(result._meta, DATA_META_KEY)) return result._meta[DATA_META_KEY];
    if (result.structuredContent !== undefined && result.structuredContent !== null) {
      return unwrap(result.structuredContent);
    }
    return undefined;
  }

  function textOf(result) {
    const blocks = isObject(result) && Array.isArray(result.content) ? result.content : [];
    return blocks.filter(function (block) { return isObject(block) && block.type === "text"; })
      .map(function (block) { return String(block.text); }).join("\n").trim();
  }

  /** window.openai.callTool answers differ between ChatGPT versions: make each a CallToolResult. */
  function asCallToolResult(response) {
    if (!isObject(response)) return { content: [], structuredContent: response };
    const resultKeys = ["structuredContent", "content", "isError", "_meta", "meta"];
    if (resultKeys.some(function (key) { return own(response, key); })) {
      return Object.assign({}, response, { _meta: response._meta || response.meta });
    }
    if (typeof response.result === "string") {
      try {
        return { content: [{ type: "text", text: response.result }], structuredContent: JSON.parse(response.result) };
      } catch (notJson) {
        return { content: [{ type: "text", text: response.result }] };
      }
    }
    return { content: [], structuredContent: response };
  }

  function messageOf(error) {
    if (error instanceof Error) return error.message;
    if (isObject(error) && typeof error.message === "string") return error.message;
    return String(error);
  }

  // ---- DOM --------------------------------------------------------------------------------------------

  /**
   * An element. `props`: text (textContent), className, onEvent handlers, anything else an attribute (true:
   * present, false/null/undefined: absent). Children are nodes or strings; strings become text nodes.
   */
  function h(tag, props, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "className") node.className = value;
      else if (/^on[A-Z]/.test(key)) node.addEventListener(key.slice(2).toLowerCase(), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children || []) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function button(label, onClick, extra) {
    return h("button", Object.assign({ type: "button", className: "gw-button", text: label, onClick: onClick }, extra));
  }

  /** Enter or Space on `node` itself (not on a button inside it) runs `activate`. */
  function onActivateKey(node, activate) {
    node.addEventListener("keydown", function (event) {
      if (event.target === node && (event.key === "Enter" || event.key === " ")) {
        event.preventDefault();
        activate();
      }
    });
  }

  const STYLE = `
:root {
  color-scheme: light;
  --gw-bg: var(--color-background-primary, #ffffff);
  --gw-bg-alt: var(--color-background-secondary, #f2f4f7);
  --gw-text: var(--color-text-primary, #1b1f24);
  --gw-muted: var(--color-text-secondary, #4a5361);
  --gw-border: var(--color-border-primary, #c5cbd3);
  --gw-ring: var(--color-ring-primary, #0b57d0);
  --gw-accent: #0b57d0;
  --gw-accent-text: #ffffff;
  --gw-danger-bg: var(--color-background-danger, #fdecea);
  --gw-danger: var(--color-text-danger, #9f1c1c);
  --gw-font: var(--font-sans, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif);
  --gw-radius: var(--border-radius-md, 8px);
}
:root[data-theme="dark"] {
  color-scheme: dark;
  --gw-bg: var(--color-background-primary, #16181c);
  --gw-bg-alt: var(--color-background-secondary, #23262c);
  --gw-text: var(--color-text-primary, #eceef1);
  --gw-muted: var(--color-text-secondary, #b3b9c3);
  --gw-border: var(--color-border-primary, #444a54);
  --gw-ring: var(--color-ring-primary, #8ab4f8);
  --gw-accent: #8ab4f8;
  --gw-accent-text: #0b1d3a;
  --gw-danger-bg: var(--color-background-danger, #3a1b1d);
  --gw-danger: var(--color-text-danger, #ffb4ab);
}
[hidden] { display: none !important; }
html, body { margin: 0; background: var(--gw-bg); color: var(--gw-text); }
body { font: 14px/1.45 var(--gw-font); }
.gw-root { padding: calc(12px + var(--gw-safe-top, 0px)) calc(12px + var(--gw-safe-right, 0px))
  calc(12px + var(--gw-safe-bottom, 0px)) calc(12px + var(--gw-safe-left, 0px)); box-sizing: border-box; }
:root[data-max-height] .gw-root { max-height: var(--gw-max-height); overflow: auto; }
.gw-link { color: var(--gw-accent); text-decoration: underline; cursor: pointer; }
.gw-toolbar { display: flex; justify-content: flex-end; gap: 8px; margin-bottom: 8px; }
.gw-row.gw-selected, .gw-item.gw-selected { background: var(--gw-bg-alt); box-shadow: inset 3px 0 0 var(--gw-accent); }
:root[data-display-mode="fullscreen"] .gw-scroll { max-height: calc(var(--gw-max-height, 100vh) - 9rem);
  overflow: auto; }
:root[data-display-mode="fullscreen"] .gw-cell { max-width: 48ch; }
:root[data-display-mode="fullscreen"] .gw-table th { position: sticky; top: 0; z-index: 1; }
.gw-title { font-size: 1rem; font-weight: 600; margin: 0 0 8px; }
.gw-sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.gw-status, .gw-empty, .gw-note { color: var(--gw-muted); margin: 4px 0; }
.gw-error { background: var(--gw-danger-bg); color: var(--gw-danger); border-radius: var(--gw-radius);
  padding: 8px 12px; }
.gw-error p { margin: 4px 0 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.gw-text { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }
.gw-button { font: inherit; cursor: pointer; border-radius: var(--gw-radius); padding: 4px 10px;
  border: 1px solid var(--gw-accent); background: var(--gw-accent); color: var(--gw-accent-text); }
.gw-button.gw-secondary { background: transparent; color: var(--gw-text); border-color: var(--gw-border); }
.gw-button[aria-disabled="true"] { opacity: 0.55; cursor: default; }
:focus-visible { outline: 3px solid var(--gw-ring); outline-offset: 2px; }
.gw-scroll { overflow-x: auto; border: 1px solid var(--gw-border); border-radius: var(--gw-radius); }
.gw-table { border-collapse: collapse; width: 100%; }
.gw-table th, .gw-table td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--gw-border);
  vertical-align: top; }
.gw-table tbody tr:last-child td { border-bottom: 0; }
.gw-table th { background: var(--gw-bg-alt); font-weight: 600; white-space: nowrap; }
.gw-cell { display: block; max-width: 20ch; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.gw-table .gw-actions-cell { position: sticky; right: 0; background: var(--gw-bg);
  box-shadow: -1px 0 0 var(--gw-border); }
.gw-table th.gw-actions-cell { background: var(--gw-bg-alt); }
.gw-row:hover .gw-actions-cell { background: var(--gw-bg-alt); }
.gw-sort { font: inherit; font-weight: 600; color: inherit; background: none; border: 0; padding: 0; cursor: pointer;
  display: inline-flex; gap: 4px; align-items: center; }
.gw-sort-mark { color: var(--gw-muted); font-size: 0.75em; }
.gw-row[tabindex], .gw-item[tabindex] { cursor: pointer; }
.gw-row:hover, .gw-item[tabindex]:hover { background: var(--gw-bg-alt); }
.gw-row:focus-visible, .gw-item:focus-visible { outline-offset: -3px; }
.gw-pager { display: flex; gap: 8px; align-items: center; margin-top: 8px; }
.gw-actions { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 8px; }
.gw-actions-cell .gw-actions { margin: 0; }
.gw-actions-cell .gw-button { white-space: nowrap; }
.gw-card { margin: 0; display: grid; grid-template-columns: minmax(6em, max-content) 1fr; gap: 4px 16px; }
.gw-card dt { color: var(--gw-muted); font-weight: 600; overflow-wrap: anywhere; }
.gw-card dd { margin: 0; overflow-wrap: anywhere; min-width: 0; }
.gw-card .gw-card { padding-left: 10px; border-left: 2px solid var(--gw-border); }
.gw-nested { margin: 0; padding-left: 1.2em; }
.gw-nested > li + li { margin-top: 4px; }
.gw-list { list-style: none; margin: 0; padding: 0; border: 1px solid var(--gw-border);
  border-radius: var(--gw-radius); }
.gw-item { padding: 6px 10px; border-bottom: 1px solid var(--gw-border); display: flex; gap: 8px; align-items: center;
  justify-content: space-between; overflow-wrap: anywhere; }
.gw-item:last-child { border-bottom: 0; }
.gw-item .gw-actions { margin: 0; }
.gw-detail { margin-top: 12px; border: 1px solid var(--gw-border); border-radius: var(--gw-radius);
  padding: 10px 12px; }
.gw-detail-head { display: flex; justify-content: space-between; align-items: center; gap: 8px; margin-bottom: 8px; }
.gw-detail-title { font-size: 0.95rem; margin: 0; }
`;

  // ---- views ------------------------------------------------------------------------------------------

  /** Page controls: hidden for a single page; disabled buttons keep focus (aria-disabled, not disabled). */
  function pager(total, pageSize, onChange, initial) {
    const pages = Math.max(1, Math.ceil(total / pageSize));
    let page = Number.isInteger(initial) && initial > 0 && initial < pages ? initial : 0;
    const status = h("span", { className: "gw-status", "aria-live": "polite" });
    const previous = button("Previous", function () { go(page - 1); }, { className: "gw-button gw-secondary" });
    const next = button("Next", function () { go(page + 1); }, { className: "gw-button gw-secondary" });
    const element = h("nav", { className: "gw-pager", "aria-label": "Pages", hidden: pages === 1 },
      [previous, status, next]);

    function update() {
      const first = page * pageSize;
      status.textContent = (first + 1) + "–" + Math.min(first + pageSize, total) + " of " + total;
      previous.setAttribute("aria-disabled", String(page === 0));
      next.setAttribute("aria-disabled", String(page === pages - 1));
    }
    function go(target) {
      if (target < 0 || target >= pages || target === page) return;
      page = target;
      update();
      onChange();
    }
    update();
    return {
      element: element,
      slice: function (items) { return items.slice(page * pageSize, (page + 1) * pageSize); },
      reset: function () { page = 0; update(); },
      page: function () { return page; },
      pages: pages,
      /** "rows 6–10 of 12 (page 2 of 3)": where the user is, for the model. */
      describe: function (what) {
        const first = page * pageSize;
        const range = what + " " + (first + 1) + "–" + Math.min(first + pageSize, total) + " of " + total;
        return pages > 1 ? range + " (page " + (page + 1) + " of " + pages + ")" : "all " + plural(total, what.replace(/s$/, ""), what);
      },
    };
  }

  function pageSizeOf(config) {
    const size = Number(config.pageSize);
    return Number.isInteger(size) && size > 0 ? size : DEFAULT_PAGE_SIZE;
  }

  /** The keys of the first rows, in order of appearance, each with whether its values are scalars (null: unknown). */
  function keysOf(rows) {
    const scalar = new Map();
    for (const row of rows.slice(0, 20)) {
      if (!isObject(row)) continue;
      for (const [key, value] of Object.entries(row)) {
        if (!scalar.has(key) || scalar.get(key) === null) scalar.set(key, value === null ? null : isScalar(value));
      }
    }
    return scalar;
  }

  /** Columns of a derived table: the keys in order; when there are too many, scalar ones first. */
  function deriveColumns(keys) {
    const all = Array.from(keys.keys());
    if (all.length <= MAX_DERIVED_COLUMNS) return all;
    const simple = all.filter(function (key) { return keys.get(key) !== false; });
    const nested = all.filter(function (key) { return keys.get(key) === false; });
    return simple.concat(nested).slice(0, MAX_DERIVED_COLUMNS);
  }

  function rank(value) {
    if (value === null || value === undefined) return 3;
    if (typeof value === "number" || typeof value === "boolean") return 0;
    return typeof value === "string" ? 1 : 2;
  }

  /** Numbers numerically, text naturally ("item 2" < "item 10"), containers by size; empty values last. */
  function compareValues(a, b) {
    const ra = rank(a);
    const rb = rank(b);
    if (ra !== rb) return ra - rb;
    if (ra === 0) return Number(a) - Number(b);
    if (ra === 1) return collator.compare(a, b);
    if (ra === 2) return sizeOf(a) - sizeOf(b);
    return 0;
  }

  function sizeOf(container) {
    return Array.isArray(container) ? container.length : Object.keys(container).length;
  }

  /** A short name for a row, so that repeated buttons ("Details") say which row they belong to. */
  function nameOf(item, index) {
    if (!isObject(item)) return summarise(item);
    for (const key of ["name", "title", "label", "login", "id", "key"]) {
      if (own(item, key) && isScalar(item[key]) && item[key] !== null) return String(item[key]);
    }
    return "item " + (index + 1);
  }

  function actionButtons(actions, item, index, ctx) {
    if (!actions.length) return null;
    const scope = scopeOf(item);
    const name = nameOf(item, index);
    return h("div", { className: "gw-actions" }, actions.map(function (action) {
      const label = fillText(action.label || action.tool || "Action", scope);
      const control = button(label, function (event) {
        event.stopPropagation();
        ctx.run(action, scope, name, control);
      }, { "aria-label": label.includes(name) ? null : label + " (" + name + ")" });
      return control;
    }));
  }

  /** What activating a row or list item does: the configured row action, else its detail card. */
  function activation(item, index, ctx) {
    const action = ctx.rowAction;
    if (action) return function (trigger) { ctx.run(action, scopeOf(item), nameOf(item, index), trigger); };
    if (isObject(item) && ctx.panel) {
      return function (trigger, quiet) {
        ctx.panel.show(nameOf(item, index), card(item, linksOnly(ctx), 0, ""), trigger, quiet);
      };
    }
    return null;
  }

  function makeActivatable(node, activate, hint) {
    if (!activate) return;
    node.setAttribute("tabindex", "0");
    node.setAttribute("aria-description", hint);
    node.addEventListener("click", function (event) {
      if (!event.target.closest("button, a")) activate(node);
    });
    onActivateKey(node, function () { activate(node); });
  }

  function activationHint(ctx) {
    if (!ctx.rowAction) return "Press Enter for details";
    return "Press Enter: " + (ctx.rowAction.label || ctx.rowAction.tool || "run the action");
  }

  /** The part of a view's context that nested values need: how links render and open. */
  function linksOnly(ctx) {
    return { links: ctx.links, linkFields: ctx.linkFields, openLink: ctx.openLink };
  }

  /** A link the host opens (never the frame itself: the click is always prevented). */
  function linkNode(href, text, ctx, className, title) {
    return h("a", {
      className: className, href: href, title: title, text: text, rel: "noopener noreferrer",
      onClick: function (event) {
        event.preventDefault();
        event.stopPropagation();
        ctx.openLink(href);
      },
    });
  }

  /** A scalar as text, or as a link when it is an http(s) URL meant as one and the host can open links. */
  function valueNode(value, path, ctx, className, title) {
    const text = summarise(value);
    const href = ctx && ctx.links ? linkTarget(value, path, ctx) : null;
    if (href) return linkNode(href, text, ctx, className ? className + " gw-link" : "gw-link", title);
    return h("span", { className: className, title: title, text: text });
  }

  /** One line without line breaks or runs of spaces, for the model. */
  function oneLine(text) {
    return String(text).replace(/\s+/g, " ").trim();
  }

  /** The saved view of this result (sort, page, selected row), or {} when there is none or it does not fit. */
  function savedView(ctx) {
    const saved = ctx.view && isObject(ctx.view.initial) ? ctx.view.initial : {};
    return saved;
  }

  /**
   * The full-screen switch of a big table: shown only when the config lists "fullscreen" and the host offers
   * it; the label follows the display mode the host reports.
   */
  function displaySwitch(ctx) {
    const display = ctx.display;
    if (!display || !display.offers("fullscreen")) return null;
    const control = button("", function () {
      const target = display.mode() === "fullscreen" ? "inline" : "fullscreen";
      display.request(target).catch(function (error) {
        ctx.notice.replaceChildren(errorView("The host did not change the display mode: " + messageOf(error)));
        ctx.resized();
      });
    }, { className: "gw-button gw-secondary gw-display" });
    function label(mode) {
      control.textContent = mode === "fullscreen" ? "Exit full screen" : "Full screen";
      control.setAttribute("aria-pressed", String(mode === "fullscreen"));
    }
    label(display.mode());
    display.onChange(label);
    return h("div", { className: "gw-toolbar" }, [control]);
  }

  /** A table of objects: sortable by any column, paged, each row opening its detail or running the row action. */
  function table(rows, ctx) {
    const keys = keysOf(rows);
    const columns = ctx.columns || deriveColumns(keys);
    const actions = ctx.actions;
    const entries = rows.map(function (row, index) { return { row: row, index: index }; });
    const saved = savedView(ctx);
    let sortKey = null;
    let descending = false;
    let ordered = entries;
    let selected = Number.isInteger(saved.selected) && saved.selected >= 0 && saved.selected < rows.length
      ? saved.selected : null;

    const body = h("tbody");
    const headers = columns.map(function (column) {
      const mark = h("span", { className: "gw-sort-mark", "aria-hidden": "true", text: "↕" });
      const sort = button("", function () { sortBy(column); }, { className: "gw-sort" });
      sort.append(column, mark);
      return { column: column, cell: h("th", { scope: "col" }, [sort]), mark: mark };
    });
    const head = h("tr", null, headers.map(function (header) { return header.cell; }));
    if (actions.length) {
      const label = h("span", { className: "gw-sr", text: "Actions" });
      head.append(h("th", { scope: "col", className: "gw-actions-cell" }, [label]));
    }
    if (typeof saved.sort === "string" && columns.indexOf(saved.sort) >= 0) order(saved.sort, saved.descending === true);
    const pages = pager(rows.length, ctx.pageSize, changed, saved.page);
    const hidden = ctx.columns ? 0 : keys.size - columns.length;
    const note = hidden > 0 ? plural(hidden, "more field", "more fields") + " in each row's details." : null;
    const caption = (ctx.title || "Results") + ", " + plural(rows.length, "row", "rows") + ". Column headers sort.";
    const big = rows.length > ctx.pageSize || columns.length > BIG_TABLE_COLUMNS;

    function order(column, down) {
      descending = down;
      sortKey = column;
      ordered = entries.slice().sort(function (x, y) {
        const a = isObject(x.row) ? lookup(x.row, column) : undefined;
        const b = isObject(y.row) ? lookup(y.row, column) : undefined;
        const empty = rank(a) === 3 || rank(b) === 3; // empty values stay last in both directions
        const result = empty || !descending ? compareValues(a, b) : compareValues(b, a);
        return result || x.index - y.index;
      });
      for (const header of headers) {
        const active = header.column === sortKey;
        if (active) header.cell.setAttribute("aria-sort", descending ? "descending" : "ascending");
        else header.cell.removeAttribute("aria-sort");
        header.mark.textContent = active ? (descending ? "▼" : "▲") : "↕";
      }
    }

    function sortBy(column) {
      order(column, sortKey === column ? !descending : false);
      pages.reset();
      changed();
    }

    /** What the user is looking at, in one line for the model. */
    function describe() {
      const parts = [pages.describe("rows")];
      if (sortKey !== null) parts.push("sorted by " + sortKey + " (" + (descending ? "descending" : "ascending") + ")");
      if (selected !== null) parts.push("selected row: " + nameOf(rows[selected], selected));
      return oneLine((ctx.title || "Table") + ": " + parts.join(", ") + ".");
    }

    function save() {
      if (ctx.view) {
        ctx.view.save({ sort: sortKey, descending: descending, page: pages.page(), selected: selected }, describe());
      }
    }

    function changed() {
      fill();
      save();
    }

    /** Marks the activated row (the rows stay in place, so focus and the detail's way back do too). */
    function choose(index) {
      selected = index;
      for (const tr of body.children) {
        const chosen = Number(tr.dataset.index) === index;
        tr.classList.toggle("gw-selected", chosen);
        if (chosen) tr.setAttribute("aria-current", "true");
        else tr.removeAttribute("aria-current");
      }
      save();
    }

    function fill() {
      body.replaceChildren.apply(body, pages.slice(ordered).map(function (entry) {
        const row = entry.row;
        const index = entry.index;
        const cells = columns.map(function (column) {
          const value = isObject(row) ? lookup(row, column) : undefined;
          const text = summarise(value);
          return h("td", null, [valueNode(value, column, ctx, "gw-cell", text.length > 20 ? text : null)]);
        });
        const isSelected = index === selected;
        const tr = h("tr", { className: isSelected ? "gw-row gw-selected" : "gw-row", "data-index": index,
                             "aria-current": isSelected ? "true" : null }, cells);
        if (actions.length) {
          tr.append(h("td", { className: "gw-actions-cell" }, [actionButtons(actions, row, index, ctx)]));
        }
        const activate = activation(row, index, ctx);
        makeActivatable(tr, activate && function (trigger) { choose(index); activate(trigger); }, activationHint(ctx));
        return tr;
      }));
      ctx.resized();
    }

    fill();
    if (selected !== null && !ctx.rowAction && isObject(rows[selected]) && ctx.panel) {
      const restore = activation(rows[selected], selected, ctx); // the detail again, without moving focus
      if (restore) restore(null, true);
    }
    return h("div", null, [
      big ? displaySwitch(ctx) : null,
      h("div", { className: "gw-scroll" }, [
        h("table", { className: "gw-table" }, [
          h("caption", { className: "gw-sr", text: caption }), h("thead", null, [head]), body,
        ]),
      ]),
      pages.element,
      note ? h("p", { className: "gw-note", text: note }) : null,
    ]);
  }

  /** A nested value inside a card: spelled out up to NESTED_DEPTH levels, summarised below that. */
  function nested(value, depth, path, ctx) {
    if (isScalar(value)) return valueNode(value, path, ctx);
    if (depth >= NESTED_DEPTH || isEmpty(value)) return h("span", { text: summarise(value) });
    if (isObject(value)) return card(value, linksOnly(ctx), depth, path);
    const shown = value.slice(0, NESTED_ITEMS).map(function (item) {
      return h("li", null, [nested(item, depth + 1, path, ctx)]);
    });
    const more = value.length - NESTED_ITEMS;
    if (more > 0) shown.push(h("li", { className: "gw-note", text: "… " + plural(more, "more item", "more items") }));
    return h("ul", { className: "gw-nested" }, shown);
  }

  /** An object as a key/value list, nested values spelled out a few levels deep, with its action buttons. */
  function card(object, ctx, depth, path) {
    const list = h("dl", { className: "gw-card" });
    for (const [key, value] of Object.entries(object)) {
      const inner = path ? path + "." + key : key;
      list.append(h("dt", { text: key }), h("dd", null, [nested(value, depth + 1, inner, ctx)]));
    }
    if (!ctx.actions || !ctx.actions.length) return list;
    return h("div", null, [list, actionButtons(ctx.actions, object, 0, ctx)]);
  }

  /** A list of items (scalars as text, objects by name), paged, with the row action and buttons per item. */
  function list(items, ctx) {
    const body = h("ul", { className: "gw-list", "aria-label": ctx.title || "Results" });
    const entries = items.map(function (item, index) { return { item: item, index: index }; });
    const saved = savedView(ctx);
    let selected = Number.isInteger(saved.selected) && saved.selected >= 0 && saved.selected < items.length
      ? saved.selected : null;
    const pages = pager(items.length, ctx.pageSize, changed, saved.page);

    function describe() {
      const parts = [pages.describe("items")];
      if (selected !== null) parts.push("selected: " + nameOf(items[selected], selected));
      return oneLine((ctx.title || "List") + ": " + parts.join(", ") + ".");
    }
    function save() {
      if (ctx.view) ctx.view.save({ page: pages.page(), selected: selected }, describe());
    }
    function changed() {
      fill();
      save();
    }
    function fill() {
      body.replaceChildren.apply(body, pages.slice(entries).map(function (entry) {
        const item = entry.item;
        const index = entry.index;
        const label = isObject(item) ? h("span", { text: nameOf(item, index) }) : valueNode(item, "", ctx);
        const node = h("li", { className: index === selected ? "gw-item gw-selected" : "gw-item", "data-index": index,
                               "aria-current": index === selected ? "true" : null }, [label]);
        const buttons = actionButtons(ctx.actions, item, index, ctx);
        if (buttons) node.append(buttons);
        const activate = activation(item, index, ctx);
        makeActivatable(node, activate && function (trigger) {
          selected = index;
          for (const other of body.children) {
            other.classList.toggle("gw-selected", other === node);
            if (other === node) other.setAttribute("aria-current", "true");
            else other.removeAttribute("aria-current");
          }
          save();
          activate(trigger);
        }, activationHint(ctx));
        return node;
      }));
      ctx.resized();
    }
    fill();
    return h("div", null, [body, pages.element]);
  }

  function errorView(text) {
    return h("div", { className: "gw-error", role: "alert" }, [
      h("strong", { text: "Something went wrong" }),
      h("p", { text: text || "The tool reported an error without details." }),
    ]);
  }

  function emptyView() {
    return h("p", { className: "gw-empty", role: "status", text: "No results" });
  }

  /** A result inside the detail panel: error, text, empty or its data by shape (no actions: they are the list's). */
  function resultView(result, ctx) {
    if (isObject(result) && result.isError) return errorView(textOf(result));
    const data = dataOf(result);
    if (data === undefined && textOf(result)) return h("p", { className: "gw-text", text: textOf(result) });
    if (isEmpty(data)) return emptyView();
    const inner = { actions: [], rowAction: null, columns: null, linkFields: [], view: null, display: null };
    return shaped(data, Object.assign({}, ctx, inner), null);
  }

  /** The detail panel under a view: tool-call results and row details, with focus moved in and back. */
  function detailPanel(resized) {
    const heading = h("h2", { className: "gw-detail-title", tabindex: "-1" });
    const body = h("div", { "aria-live": "polite" });
    let trigger = null;
    const close = button("Close", hide, { className: "gw-button gw-secondary" });
    const element = h("section", { className: "gw-detail", hidden: true, "aria-label": "Details" }, [
      h("div", { className: "gw-detail-head" }, [heading, close]), body,
    ]);
    function show(title, content, from, quiet) {
      heading.textContent = title;
      body.replaceChildren(content);
      element.hidden = false;
      trigger = from || null;
      if (!quiet) heading.focus();
      resized();
    }
    function update(content) {
      body.replaceChildren(content);
      resized();
    }
    function hide() {
      element.hidden = true;
      body.replaceChildren();
      if (trigger && trigger.isConnected) trigger.focus();
      resized();
    }
    return { element: element, show: show, update: update, hide: hide };
  }

  function shaped(data, ctx, kind) {
    if (Array.isArray(data)) {
      return kind === "list" || !data.some(isObject) ? list(data, ctx) : table(data, ctx);
    }
    if (isObject(data)) return card(data, ctx, 0, "");
    return h("p", { className: "gw-text", text: summarise(data) });
  }

  // ---- the host ---------------------------------------------------------------------------------------

  /**
   * MCP Apps over postMessage: `ui/initialize` -> host answer -> `ui/notifications/initialized`; host
   * notifications are handed to `handlers`. Only messages from window.parent are read.
   */
  function mcpAppsBridge(handlers, displayModes) {
    const parent = window.parent;
    const pending = new Map();
    let nextId = 1;
    let capabilities = null; // the host's, once the handshake is done

    function post(message) {
      parent.postMessage(Object.assign({ jsonrpc: "2.0" }, message), "*");
    }
    function request(method, params) {
      const id = nextId++;
      return new Promise(function (resolve, reject) {
        pending.set(id, { resolve: resolve, reject: reject });
        post({ id: id, method: method, params: params });
      });
    }
    function notify(method, params) {
      post({ method: method, params: params });
    }
    function answer(message, result) {
      if (message.id !== undefined && message.id !== null) post({ id: message.id, result: result });
    }

    window.addEventListener("message", function (event) {
      if (event.source !== parent) return;
      const message = event.data;
      if (!isObject(message) || message.jsonrpc !== "2.0") return;
      if (typeof message.method !== "string") {
        const waiting = pending.get(message.id);
        if (!waiting) return;
        pending.delete(message.id);
        if (message.error) waiting.reject(new Error(messageOf(message.error) || "The host refused the request."));
        else waiting.resolve(message.result);
        return;
      }
      const params = isObject(message.params) ? message.params : {};
      switch (message.method) {
        case "ui/notifications/tool-input": handlers.input(isObject(params.arguments) ? params.arguments : {}); break;
        case "ui/notifications/tool-result": handlers.result(params); break;
        case "ui/notifications/tool-cancelled": handlers.cancelled(params.reason); break;
        case "ui/notifications/host-context-changed": handlers.context(params); break;
        case "ui/resource-teardown": handlers.teardown(); answer(message, {}); break;
        case "ping": answer(message, {}); break;
        default:
          if (message.id !== undefined && message.id !== null) {
            post({ id: message.id, error: { code: -32601, message: "Method not found: " + message.method } });
          }
      }
    });

    const ready = request("ui/initialize", {
      appInfo: APP_INFO,
      appCapabilities: { availableDisplayModes: displayModes },
      protocolVersion: PROTOCOL_VERSION,
    }).then(function (result) {
      capabilities = isObject(result) && isObject(result.hostCapabilities) ? result.hostCapabilities : {};
      handlers.context(isObject(result) && isObject(result.hostContext) ? result.hostContext : {});
      notify("ui/notifications/initialized", {});
      return result;
    });
    ready.catch(function () { /* a host without MCP Apps: the other bridge or the waiting state remains */ });

    /** Resolves once the handshake is done, or fails when the host never answers. */
    function connected() {
      return Promise.race([ready, new Promise(function (resolve, reject) {
        setTimeout(function () { reject(new Error("The host did not answer the widget.")); }, HOST_ANSWER_MS);
      })]);
    }
    return {
      request: request, notify: notify, ready: ready, connected: connected,
      /** Whether the host said it offers `name` (openLinks, updateModelContext, ...) in its capabilities. */
      offers: function (name) { return capabilities !== null && own(capabilities, name); },
    };
  }

  function openai() {
    return isObject(window.openai) || typeof window.openai === "function" ? window.openai : null;
  }

  /**
   * Tool calls, follow-ups, links, display modes and model context through whichever bridge offers them
   * (window.openai first, it is synchronous). `layout` holds the MCP Apps host context (available modes).
   */
  function hostActions(mcp, layout, config) {
    const wanted = displayModesOf(config);
    function viaMcp(method, params) {
      if (!mcp) {
        const what = method === "tools/call" ? "call tools." : "send messages.";
        return Promise.reject(new Error("This host does not let widgets " + what));
      }
      return mcp.connected().then(function () { return mcp.request(method, params); });
    }
    const actions = {
      callTool: function (name, args) {
        const bridge = openai();
        if (bridge && typeof bridge.callTool === "function") {
          return Promise.resolve().then(function () { return bridge.callTool(name, args); }).then(asCallToolResult);
        }
        return viaMcp("tools/call", { name: name, arguments: args });
      },
      sendFollowUp: function (text) {
        const bridge = openai();
        if (bridge && typeof bridge.sendFollowUpMessage === "function") {
          return Promise.resolve().then(function () { return bridge.sendFollowUpMessage({ prompt: text }); });
        }
        return viaMcp("ui/message", { role: "user", content: [{ type: "text", text: text }] }).then(function (result) {
          if (isObject(result) && result.isError) throw new Error("The host did not accept the message.");
          return result;
        });
      },
      /** Whether links can open at all: window.openai.openExternal, or a host that offers openLinks. */
      canOpenLinks: function () {
        const bridge = openai();
        return Boolean(bridge && typeof bridge.openExternal === "function") || Boolean(mcp && mcp.offers("openLinks"));
      },
      openLink: function (url) {
        const href = safeUrl(url);
        if (!href) return Promise.reject(new Error("Only http and https links open."));
        const bridge = openai();
        if (bridge && typeof bridge.openExternal === "function") {
          return Promise.resolve().then(function () { return bridge.openExternal({ href: href }); });
        }
        if (!mcp || !mcp.offers("openLinks")) return Promise.reject(new Error("This host does not open links."));
        return mcp.request("ui/open-link", { url: href }).then(function (result) {
          if (isObject(result) && result.isError) throw new Error("The host did not open the link.");
          return result;
        });
      },
      /** The display modes both sides allow: those the config lists and the host offers. */
      displayModes: function () {
        const bridge = openai();
        let offered = ["inline"];
        if (bridge && typeof bridge.requestDisplayMode === "function") offered = ["inline", "fullscreen", "pip"];
        else if (mcp && Array.isArray(layout.available())) offered = layout.available();
        return wanted.filter(function (mode) { return offered.indexOf(mode) >= 0; });
      },
      requestDisplayMode: function (mode) {
        if (actions.displayModes().indexOf(mode) < 0) {
          return Promise.reject(new Error("The display mode " + mode + " is not offered here."));
        }
        const bridge = openai();
        const asked = bridge && typeof bridge.requestDisplayMode === "function"
          ? Promise.resolve().then(function () { return bridge.requestDisplayMode({ mode: mode }); })
          : mcp.request("ui/request-display-mode", { mode: mode });
        return asked.then(function (result) {
          const granted = isObject(result) && typeof result.mode === "string" ? result.mode : mode;
          layout.set(granted);
          return granted;
        });
      },
      /** MCP Apps: what the user is looking at, for the model's next turn (only to hosts that accept it). */
      updateModelContext: function (text, structured) {
        if (!mcp || !mcp.offers("updateModelContext")) return Promise.resolve(null);
        return mcp.request("ui/update-model-context", {
          content: [{ type: "text", text: text }], structuredContent: structured,
        }).catch(function () { return null; });
      },
    };
    return actions;
  }

  /** The display modes the config asks for; "inline" always. */
  function displayModesOf(config) {
    const listed = Array.isArray(config.displayModes) ? config.displayModes.filter(function (mode) {
      return typeof mode === "string";
    }) : [];
    return ["inline"].concat(listed.filter(function (mode) { return mode !== "inline"; }));
  }

  /**
   * The layout the host asks for: display mode, maximum height and safe-area insets, from the MCP Apps host
   * context or window.openai's globals, as <html data-display-mode> and CSS variables.
   */
  function layoutKeeper() {
    let context = {};
    let granted = null; // the mode a request was answered with, until the host reports one
    let listener = null;
    let last = null;
    function mode() {
      const bridge = openai();
      const reported = typeof context.displayMode === "string" ? context.displayMode
        : bridge && typeof bridge.displayMode === "string" ? bridge.displayMode : null;
      return reported || granted || "inline";
    }
    function apply() {
      const bridge = openai();
      const root = document.documentElement;
      const current = mode();
      root.dataset.displayMode = current;
      const dimensions = isObject(context.containerDimensions) ? context.containerDimensions : {};
      let maxHeight = Number(dimensions.maxHeight !== undefined ? dimensions.maxHeight : dimensions.height);
      if (!(maxHeight > 0) && bridge) maxHeight = Number(bridge.maxHeight);
      if (maxHeight > 0 && Number.isFinite(maxHeight)) {
        root.dataset.maxHeight = String(Math.round(maxHeight));
        root.style.setProperty("--gw-max-height", Math.round(maxHeight) + "px");
      } else {
        delete root.dataset.maxHeight;
        root.style.removeProperty("--gw-max-height");
      }
      const insets = isObject(context.safeAreaInsets) ? context.safeAreaInsets
        : bridge && isObject(bridge.safeArea) && isObject(bridge.safeArea.insets) ? bridge.safeArea.insets : {};
      for (const side of ["top", "right", "bottom", "left"]) {
        const value = Number(insets[side]);
        root.style.setProperty("--gw-safe-" + side, (value > 0 && Number.isFinite(value) ? value : 0) + "px");
      }
      if (current !== last) {
        last = current;
        if (listener) listener(current);
      }
      return current;
    }
    return {
      apply: apply,
      mode: mode,
      context: function (update) {
        context = Object.assign({}, context, update);
        if (typeof update.displayMode === "string") granted = null;
        return apply();
      },
      available: function () {
        return Array.isArray(context.availableDisplayModes) ? context.availableDisplayModes : null;
      },
      toolCallId: function () {
        const info = isObject(context.toolInfo) ? context.toolInfo : {};
        return typeof info.id === "string" || typeof info.id === "number" ? String(info.id) : null;
      },
      set: function (value) { granted = value; apply(); },
      onChange: function (callback) { listener = callback; },
    };
  }

  function readStorage(key) {
    try {
      const text = window.localStorage.getItem(key);
      return text ? JSON.parse(text) : null;
    } catch (unavailable) {
      return null; // an opaque (sandboxed) origin has no storage: the view starts fresh
    }
  }

  function writeStorage(key, value) {
    try {
      window.localStorage.setItem(key, JSON.stringify(value));
    } catch (unavailable) {
      /* no storage here: the state lasts as long as the frame */
    }
  }

  /**
   * The view's state (sort, page, selected row) as the host keeps it: window.openai's widget state, whose
   * `modelContent` tells the model in one line what the user sees; or, in MCP Apps hosts, the frame's storage
   * under the tool call's id (or the data's digest) plus `ui/update-model-context`. A saved state only applies
   * to the data it was saved for.
   */
  function stateKeeper(config, layout, host) {
    let data = null;
    let storageKey = null;
    function fromOpenAi() {
      const bridge = openai();
      const state = bridge && isObject(bridge.widgetState) ? bridge.widgetState : null;
      if (!state) return null;
      if (isObject(state.privateContent) && isObject(state.privateContent[VIEW_STATE_KEY])) {
        return state.privateContent[VIEW_STATE_KEY];
      }
      return isObject(state[VIEW_STATE_KEY]) ? state[VIEW_STATE_KEY] : null;
    }
    return {
      bind: function (dataDigest) {
        data = dataDigest;
        const call = layout.toolCallId();
        storageKey = STORAGE_PREFIX + String(config.tool || "widget") + "/" + (call !== null ? "call:" + call : data);
      },
      restore: function () {
        const view = fromOpenAi() || readStorage(storageKey);
        return isObject(view) && view.data === data ? view : null;
      },
      save: function (view, line) {
        const stored = Object.assign({}, view, { data: data });
        const bridge = openai();
        if (bridge && typeof bridge.setWidgetState === "function") {
          const previous = isObject(bridge.widgetState) ? bridge.widgetState : {};
          const privateContent = Object.assign({}, isObject(previous.privateContent) ? previous.privateContent : {});
          privateContent[VIEW_STATE_KEY] = stored;
          const state = Object.assign({}, previous, { modelContent: line, privateContent: privateContent });
          Promise.resolve().then(function () { return bridge.setWidgetState(state); }).catch(function (error) {
            console.warn("gateway widget: the host did not keep the widget state:", messageOf(error));
          });
          return;
        }
        writeStorage(storageKey, stored);
        host.updateModelContext(line, { view: stored });
      },
    };
  }

  // ---- theme and size ---------------------------------------------------------------------------------

  function themeKeeper() {
    const media = typeof window.matchMedia === "function" ? window.matchMedia("(prefers-color-scheme: dark)") : null;
    let context = {};
    function apply() {
      const bridge = openai();
      const chosen = context.theme || (bridge && bridge.theme) || (media && media.matches ? "dark" : "light");
      const theme = chosen === "dark" ? "dark" : "light";
      document.documentElement.dataset.theme = theme;
      return theme;
    }
    if (media && typeof media.addEventListener === "function") media.addEventListener("change", apply);
    return {
      apply: apply,
      /** Merge a (partial) MCP Apps host context: theme and the standard style variables. */
      context: function (update) {
        context = Object.assign({}, context, update);
        const styles = isObject(context.styles) ? context.styles : {};
        for (const [name, value] of Object.entries(isObject(styles.variables) ? styles.variables : {})) {
          if (name.startsWith("--") && typeof value === "string") {
            document.documentElement.style.setProperty(name, value);
          }
        }
        return apply();
      },
    };
  }

  /** Reports the content size to the host after each render and on every layout change. */
  function sizeReporter(mcp) {
    let last = "";
    let observer = null;
    function report() {
      const box = document.documentElement.getBoundingClientRect();
      const size = { width: Math.ceil(box.width), height: Math.ceil(box.height) };
      const key = size.width + "x" + size.height;
      if (key === last) return;
      last = key;
      if (mcp) mcp.ready.then(function () { mcp.notify("ui/notifications/size-changed", size); }, function () {});
      const bridge = openai();
      if (bridge && typeof bridge.notifyIntrinsicHeight === "function") bridge.notifyIntrinsicHeight(size.height);
    }
    if (typeof ResizeObserver === "function") {
      observer = new ResizeObserver(report);
      observer.observe(document.documentElement);
    }
    return { report: report, stop: function () { if (observer) observer.disconnect(); } };
  }

  // ---- start ------------------------------------------------------------------------------------------

  function readConfig() {
    const element = document.getElementById("gateway-widget-config");
    if (!element) return {};
    try {
      const config = JSON.parse(element.textContent);
      return isObject(config) ? config : {};
    } catch (error) {
      console.error("gateway widget: the config is not JSON:", messageOf(error));
      return {};
    }
  }

  function rootElement() {
    let root = document.getElementById("gateway-root");
    if (!root) {
      root = h("main", { id: "gateway-root", className: "gw-root" });
      document.body.append(root);
    }
    return root;
  }

  function installStyle() {
    if (document.getElementById("gateway-widget-style")) return;
    const style = h("style", { id: "gateway-widget-style" });
    style.textContent = STYLE;
    document.head.prepend(style);
  }

  let runtime = null; // the started widget: one per document

  /** The context views render with: config, actions, the detail panel, a notice line and how to run actions. */
  function viewContext(state) {
    const config = state.config;
    const actions = Array.isArray(config.actions) ? config.actions.filter(isObject) : [];
    const rowAction = Number.isInteger(config.rowAction) ? actions[config.rowAction] || null : null;
    const resized = runtime ? runtime.sizes.report : function () {};
    const panel = detailPanel(resized);
    const notice = h("p", { className: "gw-status", role: "status" });
    const host = runtime ? runtime.host : null;
    const display = runtime && host.displayModes().indexOf("fullscreen") >= 0 ? {
      offers: function (mode) { return host.displayModes().indexOf(mode) >= 0; },
      mode: function () { return runtime.layout.mode(); },
      request: function (mode) { return host.requestDisplayMode(mode); },
      onChange: function (callback) { runtime.layout.onChange(callback); },
    } : null;
    const ctx = {
      title: config.title || null,
      columns: Array.isArray(config.columns) && config.columns.length ? config.columns.map(String) : null,
      pageSize: pageSizeOf(config),
      actions: actions,
      rowAction: rowAction,
      panel: panel,
      notice: notice,
      resized: resized,
      run: function (action, scope, name, trigger) { return runAction(action, scope, name, ctx, trigger); },
      links: Boolean(host && host.canOpenLinks()),
      linkFields: Array.isArray(config.linkFields) ? config.linkFields.map(String) : [],
      openLink: function (href) {
        return host.openLink(href).then(function () {
          notice.textContent = "";
        }, function (error) {
          notice.replaceChildren(errorView("The link did not open: " + messageOf(error)));
          resized();
        });
      },
      view: runtime && runtime.state ? { initial: runtime.state.restore(), save: runtime.state.save } : null,
      display: display,
    };
    return ctx;
  }

  /**
   * Runs one configured action for `scope` (a row or the card's object, called `name` on screen): a tool
   * call shows its result in the detail panel, a prompt goes to the conversation; failures show inline.
   */
  function runAction(action, scope, name, ctx, trigger) {
    if (typeof action.tool === "string") {
      const filled = fillText(action.label || action.tool, scope);
      const label = filled.includes(name) ? filled : filled + " · " + name;
      const panel = ctx.panel;
      panel.show(label, h("p", { className: "gw-status", role: "status", text: "Loading…" }), trigger);
      return runtime.host.callTool(action.tool, fillArguments(action.arguments || {}, scope)).then(function (result) {
        panel.update(resultView(result, ctx));
      }, function (error) {
        panel.update(errorView(messageOf(error)));
      });
    }
    if (typeof action.prompt === "string") {
      const text = fillText(action.prompt, scope);
      ctx.notice.textContent = "Sending…";
      return runtime.host.sendFollowUp(text).then(function () {
        ctx.notice.textContent = "Sent to the conversation: " + text;
        ctx.resized();
      }, function (error) {
        ctx.notice.replaceChildren(errorView(messageOf(error)));
        ctx.resized();
      });
    }
    return Promise.resolve();
  }

  /** A built-in view: `kind` picks table/card/list where the data's shape allows, else the shape decides. */
  function view(kind) {
    return function (state) {
      const ctx = viewContext(state);
      frame(state.root, ctx.title, shaped(state.data, ctx, kind), ctx.notice, ctx.panel.element);
    };
  }

  /** Fills `root`: the title (when there is one), then `content`. */
  function frame(root, title) {
    const content = Array.prototype.slice.call(arguments, 2);
    const heading = title ? [h("h1", { className: "gw-title", text: String(title) })] : [];
    root.replaceChildren.apply(root, heading.concat(content));
  }

  function start(render) {
    if (runtime) throw new Error("GatewayWidget.start() runs once per widget.");
    installStyle();
    const config = readConfig();
    if (config.title) document.title = String(config.title);
    const root = rootElement();
    const draw = typeof render === "function" ? render : view(config.kind);
    const inFrame = window.parent !== window;
    let input = {};
    let seen = { output: undefined, meta: undefined, input: undefined };
    let shown = null; // what is on screen, so a host speaking both bridges does not reset the view twice

    const theme = themeKeeper();
    const layout = layoutKeeper();
    const mcp = inFrame ? mcpAppsBridge({
      input: function (args) { input = args; },
      result: function (result) { deliver(result, "mcp-apps"); },
      cancelled: function (reason) {
        shown = null;
        frame(root, config.title, errorView("The tool call was cancelled" + (reason ? ": " + reason : ".")));
        runtime.sizes.report();
      },
      context: function (context) { theme.context(context); layout.context(context); },
      teardown: function () { runtime.sizes.stop(); },
    }, displayModesOf(config)) : null;
    const host = hostActions(mcp, layout, config);
    runtime = { host: host, sizes: sizeReporter(mcp), layout: layout, state: stateKeeper(config, layout, host) };

    function deliver(result, source) {
      const key = JSON.stringify([isObject(result) && result.isError === true, dataOf(result), textOf(result)]);
      if (key === shown) return;
      shown = key;
      runtime.state.bind(digest(JSON.stringify([config.tool || null, input, dataOf(result)]) || ""));
      const state = {
        data: dataOf(result), result: result, input: input, config: config, theme: theme.apply(), host: source,
        root: root,
      };
      const text = textOf(result);
      root.replaceChildren();
      if (isObject(result) && result.isError) frame(root, config.title, errorView(text));
      else if (state.data === undefined && text) {
        frame(root, config.title, h("p", { className: "gw-text", text: text }));
      }
      else if (isEmpty(state.data)) frame(root, config.title, emptyView());
      else {
        try {
          draw(state);
        } catch (error) {
          console.error("gateway widget: rendering failed:", error);
          frame(root, config.title, errorView("This widget could not show the result: " + messageOf(error)));
        }
      }
      runtime.sizes.report();
    }

    /** window.openai: render its globals when they hold a result, again whenever they change. */
    function fromOpenAi() {
      const bridge = openai();
      theme.apply();
      layout.apply();
      if (!bridge) return;
      const output = bridge.toolOutput;
      const meta = bridge.toolResponseMetadata;
      if (output === seen.output && meta === seen.meta && bridge.toolInput === seen.input) return;
      seen = { output: output, meta: meta, input: bridge.toolInput };
      if (isObject(bridge.toolInput)) input = bridge.toolInput;
      if ((output === null || output === undefined) && !isObject(meta)) return;
      deliver({ content: [], structuredContent: output, _meta: isObject(meta) ? meta : undefined }, "openai");
    }

    theme.apply();
    layout.apply();
    frame(root, config.title, h("p", { className: "gw-status", role: "status", text: "Waiting for data…" }));
    window.addEventListener("openai:set_globals", fromOpenAi);
    fromOpenAi();
    runtime.sizes.report();
  }

  function notStarted() {
    return new Error("GatewayWidget.start() has not run.");
  }

  window.GatewayWidget = Object.freeze({
    start: start,
    views: Object.freeze({ auto: view(null), table: view("table"), card: view("card"), list: view("list") }),
    dataOf: dataOf,
    fill: fillText,
    fillArguments: fillArguments,
    h: h,
    callTool: function (name, args) {
      return runtime ? runtime.host.callTool(name, args || {}) : Promise.reject(notStarted());
    },
    sendFollowUp: function (text) {
      return runtime ? runtime.host.sendFollowUp(String(text)) : Promise.reject(notStarted());
    },
    openLink: function (url) {
      return runtime ? runtime.host.openLink(String(url)) : Promise.reject(notStarted());
    },
    requestDisplayMode: function (mode) {
      return runtime ? runtime.host.requestDisplayMode(String(mode)) : Promise.reject(notStarted());
    },
  });
})();
