"""A warehouse's WMS spoken to in XML over HTTP (docs/connectors.md, "wms_xml").

The same documents, answers and callbacks as wms_json, as XML: the root element is the type, with the id
as its attribute, and each field is an element of its own name::

    <?xml version="1.0" encoding="UTF-8"?>
    <sales_order id="oms-msg-17"><order_number>100001</order_number>...
      <lines type="array"><line><line_no type="integer">1</line_no><sku>TEA-1</sku>...</line></lines>
    </sales_order>

A value that is not text says its type (``type="integer" | "decimal" | "boolean" | "array" | "object"``,
``nil="true"`` for none); a key that is no XML name is written ``<entry key="...">``. XML from the WMS
(answers, callbacks) is read with defusedxml and nothing else: a document type declaration, an entity
or an external reference is refused, never expanded or fetched.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import defusedxml
import defusedxml.ElementTree as SafeET

from oms_engine import hookimpl

from .wms_http import MAX_CALLBACK_BYTES, HttpWms

DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
# A list's elements are named after it: <lines><line>, <items><item>, <suppliers><supplier>; <value> else.
SINGULAR = {"lines": "line", "items": "item", "suppliers": "supplier"}
MAX_DEPTH = 32
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
# Characters XML 1.0 cannot carry (control characters but tab, newline and carriage return; surrogates, FFFE/F).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class XmlRefused(ValueError):
    """XML from the WMS that is not read: malformed, or with a DTD, an entity or an external reference."""


def _element_name(key: str) -> bool:
    return bool(_NAME.match(key)) and not key.lower().startswith("xml")


def _put(elem: ET.Element, value: Any, name: str, depth: int = 0) -> None:
    """Write ``value`` into ``elem`` (named ``name``)."""
    if depth > MAX_DEPTH:
        raise ValueError(f"'{name}' is nested too deeply for the XML format")
    if value is None:
        elem.set("nil", "true")
    elif isinstance(value, bool):
        elem.set("type", "boolean")
        elem.text = "true" if value else "false"
    elif isinstance(value, int):
        elem.set("type", "integer")
        elem.text = str(value)
    elif isinstance(value, float | Decimal):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"'{name}' is {value}, which is no number to send")
        elem.set("type", "decimal")
        elem.text = str(value)
    elif isinstance(value, str):
        bad = _NOT_XML.search(value)
        if bad:
            raise ValueError(f"'{name}' holds the character U+{ord(bad.group()):04X}, which XML cannot carry")
        elem.text = value
    elif isinstance(value, Mapping):
        if not value:
            elem.set("type", "object")
        for key, item in value.items():
            key = str(key)
            child = ET.SubElement(elem, key) if _element_name(key) else ET.SubElement(elem, "entry", {"key": key})
            _put(child, item, key, depth + 1)
    elif isinstance(value, list | tuple):
        elem.set("type", "array")
        for item in value:
            _put(ET.SubElement(elem, SINGULAR.get(name, "value")), item, name, depth + 1)
    else:
        raise ValueError(f"'{name}': a {type(value).__name__} has no XML form")


def to_xml(root_name: str, key: str, data: Mapping[str, Any]) -> bytes:
    root = ET.Element(root_name, {"id": key})
    _put(root, data, root_name)
    return DECLARATION + ET.tostring(root, encoding="utf-8", xml_declaration=False)


def parse_xml(body: bytes, what: str) -> ET.Element:
    """The root element of XML from the WMS, read with defusedxml; XmlRefused saying why not."""
    if not body.strip():
        raise XmlRefused(f"the {what} is empty")
    try:
        return SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DTDForbidden as exc:
        raise XmlRefused(f"the {what} is refused: it has a document type declaration (<!DOCTYPE {exc.name}>); "
                         "DTDs, entities and external references are never read (XML bomb or external entity "
                         "guard)") from None
    except defusedxml.EntitiesForbidden as exc:
        raise XmlRefused(f"the {what} is refused: it declares the entity '{exc.name}'; entities are never "
                         "expanded (XML bomb guard)") from None
    except defusedxml.ExternalReferenceForbidden as exc:
        raise XmlRefused(f"the {what} is refused: it refers to the external resource {exc.sysid!r}, which is "
                         "never fetched") from None
    except defusedxml.DefusedXmlException as exc:
        raise XmlRefused(f"the {what} is refused: {type(exc).__name__}: {exc}") from None
    except ET.ParseError as exc:
        raise XmlRefused(f"the {what} is not well-formed XML: {exc}") from None


def _local(tag: Any) -> str:
    if not isinstance(tag, str):   # a comment or a processing instruction
        return ""
    return tag.rsplit("}", 1)[-1]


def from_xml(elem: ET.Element, depth: int = 0, *, fields: bool = False) -> Any:
    """The value an element holds (the reverse of :func:`_put`; without type attributes, a leaf is text).
    ``fields``: the element is a document's root, whose children are always its fields."""
    name = _local(elem.tag)
    if depth > MAX_DEPTH:
        raise XmlRefused(f"<{name}> is nested too deeply")
    if elem.get("nil") == "true" and not fields:
        return None
    kind = elem.get("type")
    children = [c for c in elem if _local(c.tag)]
    text = elem.text or ""
    if not fields and (kind == "array" or (kind is None and children and _is_list(name, children))):
        return [from_xml(c, depth + 1) for c in children]
    if fields or kind == "object" or (kind is None and children):
        out: dict[str, Any] = {}
        for child in children:
            key = child.get("key", "") if _local(child.tag) == "entry" and "key" in child.attrib else _local(child.tag)
            if key in out:
                raise XmlRefused(f"<{key}> appears twice in <{name}>")
            out[key] = from_xml(child, depth + 1)
        return out
    if children:
        raise XmlRefused(f"<{name} type=\"{kind}\"> must not contain elements")
    if kind is None:
        return text
    value = text.strip()
    if kind == "integer":
        if not re.fullmatch(r"[+-]?[0-9]{1,18}", value):
            raise XmlRefused(f"<{name} type=\"integer\"> holds {value!r}, not a whole number")
        return int(value)
    if kind == "decimal":
        try:
            return Decimal(value)
        except ArithmeticError:
            raise XmlRefused(f"<{name} type=\"decimal\"> holds {value!r}, not a number") from None
    if kind == "boolean":
        if value not in ("true", "false", "1", "0"):
            raise XmlRefused(f"<{name} type=\"boolean\"> holds {value!r}, not true or false")
        return value in ("true", "1")
    raise XmlRefused(f"<{name}> has the unknown type {kind!r} (integer, decimal, boolean, array, object)")


def _is_list(name: str, children: list[ET.Element]) -> bool:
    tags = {_local(c.tag) for c in children}
    if len(tags) != 1:
        return False
    (tag,) = tags
    return SINGULAR.get(name) == tag or tag == "value" or len(children) > 1


class XmlWms(HttpWms):
    name = "wms_xml"
    content_type = "application/xml"

    def __init__(self, name: str = "wms_xml", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.name = name

    def encode(self, doc_type: str, key: str, data: Mapping[str, Any]) -> bytes:
        return to_xml(doc_type, key, data)

    def decode_answer(self, body: bytes) -> dict[str, Any]:
        root = parse_xml(body, "answer")
        if _local(root.tag) != "answer":
            raise XmlRefused(f"the answer's root element is <{_local(root.tag)}>, not <answer>")
        fields = from_xml(root, fields=True)
        if not isinstance(fields.get("status"), str):
            raise XmlRefused("the answer has no <status>")
        return {**fields, "id": root.get("id")}

    def decode_callback(self, body: bytes) -> tuple[dict[str, Any], bool]:
        if len(body) > MAX_CALLBACK_BYTES:
            raise XmlRefused(f"the callback is over {MAX_CALLBACK_BYTES} bytes")
        root = parse_xml(body, "callback")
        fields = from_xml(root, fields=True)
        return {"type": _local(root.tag), "id": root.get("id", ""), "data": fields}, True


@hookimpl(trylast=True)
def oms_register_connectors(register: Any, config: Any) -> None:
    register(XmlWms())
