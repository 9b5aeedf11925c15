"""XML as an OpenAPI schema describes it: the `xml` object (`name`, `namespace`, `prefix`, `attribute`,
`wrapped`) read once at start into an `XmlNode` tree, then used both ways:

* `write` turns an argument (an object) into an XML request body: properties become child elements
  named by their `xml.name` (else the property name), `attribute: true` properties become attributes,
  arrays repeat their item element (named by the items' `xml.name`, else the property name) or, with
  `wrapped: true`, sit inside a wrapper element named after the property; `namespace`/`prefix` add an
  `xmlns` declaration and prefix the name. ElementTree escapes all text;
* `read` turns an XML answer into JSON data that follows the schema: attributes and child elements become
  properties, repeated (or wrapped) elements arrays, and scalar text a string, or a number or boolean when
  the schema says so and the text is exactly one. What the schema does not describe (an unknown element,
  text beside child elements, two elements where one is expected) makes the answer unreadable
  (`Unfaithful`): the caller then returns it as text. Backend XML is untrusted: `parse` refuses any
  document type declaration, so no entity is ever defined or expanded, and no external resource is read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from xml.etree import ElementTree
from xml.parsers import expat

XmlKind = Literal["object", "array", "scalar", "any"]
_MAX_DEPTH = 12
_NAME = re.compile(r"^[A-Za-z_][\w.-]*$")
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class Unfaithful(ValueError):
    """The XML does not have the shape the schema describes: it is not read as structured data."""


class XmlRefused(ValueError):
    """A value that cannot be written as XML (a bad name, control characters)."""


@dataclass(frozen=True, slots=True)
class XmlNode:
    """The XML shape of one schema: its element (or attribute) name and what is inside."""

    kind: XmlKind
    name: str | None = None  # the `xml.name`, else the property name (None at an unnamed root)
    explicit_name: bool = False  # `xml.name` was given
    namespace: str | None = None
    prefix: str | None = None
    attribute: bool = False
    wrapped: bool = False
    scalar: str = "string"  # kind scalar: string, integer, number or boolean
    properties: tuple[tuple[str, XmlNode], ...] = ()  # kind object: (property name, node)
    items: XmlNode | None = None  # kind array

    def property(self, name: str) -> XmlNode | None:
        return next((node for key, node in self.properties if key == name), None)


ANY = XmlNode("any")


def xml_plan(schema: Any, resolve: Callable[[Any], Any], name: str | None = None, depth: int = 0) -> XmlNode:
    """The `XmlNode` of `schema`; `resolve` follows a `$ref`. `name` is the property (or component) name."""
    ref = schema.get("$ref") if isinstance(schema, Mapping) else None
    if isinstance(ref, str) and name is None:
        name = ref.rsplit("/", 1)[-1] or None  # a component is named after itself (OpenAPI's default)
    schema = resolve(schema)
    if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
        return XmlNode("any", name=name)
    hint = schema.get("xml") if isinstance(schema.get("xml"), Mapping) else {}
    explicit = isinstance(hint.get("name"), str) and bool(hint.get("name"))
    common: dict[str, Any] = {
        "name": hint["name"] if explicit else name,
        "explicit_name": explicit,
        "namespace": hint.get("namespace") if isinstance(hint.get("namespace"), str) else None,
        "prefix": hint.get("prefix") if isinstance(hint.get("prefix"), str) else None,
        "attribute": hint.get("attribute") is True,
        "wrapped": hint.get("wrapped") is True,
    }
    properties: dict[str, Any] = {}
    kinds: set[str] = set()
    for part in [schema, *(resolve(p) for p in schema.get("allOf") or ())]:
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        kinds.update(kind if isinstance(kind, list) else [kind] if isinstance(kind, str) else [])
        if isinstance(part.get("properties"), Mapping):
            properties.update(part["properties"])
    kinds.discard("null")
    if schema.get("anyOf") or schema.get("oneOf") or len(kinds) > 1:
        return XmlNode("any", **common)
    if properties or kinds == {"object"}:
        nodes = tuple((str(key), xml_plan(value, resolve, str(key), depth + 1)) for key, value in properties.items())
        return XmlNode("object", properties=nodes, **common)
    if kinds == {"array"}:
        return XmlNode("array", items=xml_plan(schema.get("items"), resolve, None, depth + 1), **common)
    if kinds & {"string", "integer", "number", "boolean"}:
        return XmlNode("scalar", scalar=kinds.pop(), **common)
    return XmlNode("any", **common)


# -- writing ---------------------------------------------------------------------------------------


def write(value: Any, node: XmlNode) -> bytes:
    """An XML request body for `value`, following `node` (the body schema's XML shape)."""
    if not node.explicit_name and isinstance(value, Mapping) and len(value) == 1 and (
            node.kind != "object" or next(iter(value)) not in dict(node.properties)):
        # `{"CORSConfiguration": {...}}`: the one key names the root (the shape AWS-style specs give XML bodies)
        (name, content), = value.items()
        element = _element(str(name), content, XmlNode("any", name=str(name)))
    else:
        element = _element(node.name or "root", value, node)
    return ElementTree.tostring(element, encoding="utf-8", xml_declaration=True)


def _tag(name: str, node: XmlNode) -> str:
    if not _NAME.fullmatch(name) or (node.prefix is not None and not _NAME.fullmatch(node.prefix)):
        raise XmlRefused(f"{name!r} cannot be an XML name")
    return f"{node.prefix}:{name}" if node.prefix else name


def _declare(element: ElementTree.Element, node: XmlNode) -> None:
    if node.namespace is not None:
        element.set(f"xmlns:{node.prefix}" if node.prefix else "xmlns", _clean(node.namespace))


def _clean(text: str) -> str:
    if _FORBIDDEN.search(text):
        raise XmlRefused("contains control characters that XML cannot carry")
    return text


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Mapping | list):
        raise XmlRefused("an attribute must be a single value")
    return _clean(str(value))


def _element(name: str, value: Any, node: XmlNode) -> ElementTree.Element:
    element = ElementTree.Element(_tag(name, node))
    _declare(element, node)
    _fill(element, value, node)
    return element


def _fill(element: ElementTree.Element, value: Any, node: XmlNode) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if item is None:
                continue
            child = node.property(str(key)) or XmlNode("any", name=str(key))
            name = child.name or str(key)
            if child.attribute:
                element.set(_tag(name, child), _scalar_text(item))
                if child.namespace is not None and child.prefix:
                    element.set(f"xmlns:{child.prefix}", _clean(child.namespace))
            elif isinstance(item, list):
                element.extend(_array(name, item, child))
            else:
                element.append(_element(name, item, child))
    elif isinstance(value, list):  # an array where the schema has no property for it: repeat the element
        raise XmlRefused("an array cannot be the content of one XML element")
    else:
        element.text = _scalar_text(value)


def _array(name: str, items: list[Any], node: XmlNode) -> list[ElementTree.Element]:
    item_node = node.items or XmlNode("any")
    if node.wrapped:
        wrapper = ElementTree.Element(_tag(name, node))
        _declare(wrapper, node)
        item_name = item_node.name if item_node.explicit_name and item_node.name else name
        wrapper.extend(_element(item_name, item, item_node) for item in items if item is not None)
        return [wrapper]
    item_name = item_node.name if item_node.explicit_name and item_node.name else name
    shaped = XmlNode(item_node.kind, item_name, True, node.namespace or item_node.namespace,
                     node.prefix or item_node.prefix, False, False, item_node.scalar, item_node.properties,
                     item_node.items)
    return [_element(item_name, item, shaped) for item in items if item is not None]


# -- reading ---------------------------------------------------------------------------------------


def parse(data: bytes) -> ElementTree.Element:
    """An untrusted XML document as an element tree. Raises ValueError when it is not well-formed XML or
    declares a document type (the only way to define entities: refused, so nothing is ever expanded)."""
    builder = ElementTree.TreeBuilder()
    parser = expat.ParserCreate()

    def refuse(*_: Any) -> None:
        raise ValueError("the XML declares a document type (DTD), which the gateway refuses")

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise ValueError(f"not well-formed XML ({exc})") from None
    return builder.close()


def _local(name: str) -> str:
    return name.rsplit(":", 1)[-1]


def read(root: ElementTree.Element, node: XmlNode) -> Any:
    """The XML answer as JSON data shaped by `node`; raises `Unfaithful` where they disagree."""
    local = _local(root.tag)
    if node.kind == "object" and (node.name or local) != local:
        child = node.property(local) if len(node.properties) == 1 else None
        if child is not None and not child.attribute:  # `{"ListBucketResult": {...}}` style schemas
            return {local: _read(root, child, 0)}
    return _read(root, node, 0)


def _read(element: ElementTree.Element, node: XmlNode, depth: int) -> Any:
    if depth > _MAX_DEPTH or node.kind == "any":
        raise Unfaithful("the schema does not say how to read this element")
    if node.kind == "scalar":
        if len(element):
            raise Unfaithful(f"<{element.tag}> has child elements where the schema expects a value")
        return _scalar(element.text or "", node.scalar)
    if node.kind == "array":
        return [_read(child, node.items or ANY, depth + 1) for child in element]
    if (element.text or "").strip():
        raise Unfaithful(f"<{element.tag}> has text beside its elements")
    out: dict[str, Any] = {}
    attributes = {_local(k): v for k, v in element.attrib.items() if not k.startswith("xmlns")}
    children: dict[str, list[ElementTree.Element]] = {}
    for child in element:
        children.setdefault(_local(child.tag), []).append(child)
    used: set[str] = set()
    for key, child_node in node.properties:
        name = child_node.name or key
        if child_node.attribute:
            if name in attributes:
                out[key] = _scalar(attributes[name], child_node.scalar if child_node.kind == "scalar" else "string")
            continue
        if child_node.kind == "array" and not child_node.wrapped:
            item_node = child_node.items or ANY
            item_name = item_node.name if item_node.explicit_name and item_node.name else name
            if item_name in children:
                used.add(item_name)
                out[key] = [_read(found, item_node, depth + 1) for found in children[item_name]]
            continue
        found = children.get(name)
        if not found:
            continue
        if len(found) > 1:
            raise Unfaithful(f"<{name}> appears {len(found)} times where the schema expects one")
        used.add(name)
        out[key] = _read(found[0], child_node, depth + 1)
    unknown = set(children) - used
    if unknown:
        raise Unfaithful(f"<{sorted(unknown)[0]}> is not described by the schema")
    return out


def _scalar(text: str, kind: str) -> Any:
    if kind == "boolean" and text.strip() in ("true", "false"):
        return text.strip() == "true"
    if kind in ("integer", "number") and re.fullmatch(r"-?\d+", text.strip()):
        return int(text.strip())
    if kind == "number" and re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", text.strip()):
        return float(text.strip())
    return text
