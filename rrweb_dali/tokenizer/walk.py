"""Serialized DOM nodes and their values -> internal ids (the hot path of the tokenizer).

Why it looks the way it does: a full snapshot is most of a session's bytes, so the walk is one
loop over an explicit stack (a 20,000-level DOM cannot hit the recursion limit) with the element
and text cases inlined, class checks instead of isinstance, and text written with
``list.extend(bytes)``. Long strings are cut *before* they are encoded, so a 10 M-character text
costs as little as a short one. Payloads that are not language (``_cssText``, ``<style>`` text,
``data:`` URLs, long base64) become ``<BLOB>`` plus a size bucket and are never inlined.
"""

from __future__ import annotations

import math
import re

from rrweb_dali.tokenizer import ids as t
from rrweb_dali.tokenizer.budget import (
    NUMBER_START,
    RULES,
    SHORT_VALUE,
    emit_geometry,
    emit_number_text,
    emit_ruled,
)
from rrweb_dali.tokenizer.ids import NameTokens
from rrweb_dali.tokenizer.quantize import size_index

ENCODE_ERRORS = "surrogatepass"  # a lone surrogate is bytes like any other, never an exception
BLOB_LIKE_MIN = 256
"""A string at least this long whose first BLOB_LIKE_MIN chars are all base64 is a blob."""
_base64_prefix = re.compile(f"[A-Za-z0-9+/=_-]{{{BLOB_LIKE_MIN}}}").match
# "data:" + media type and parameters (no comma, no space) + ",": a data URL, not prose such as
# a code sample reading "data: {...}".
_data_url = re.compile(r"data:[^,\s]*,").match
_CLOSE_MARK: dict = {"type": "</>"}  # stack entry: "emit the close of the element above"
# (a dict, so the hot loop's ``node.get("type")`` needs no separate check; found by identity)


def emit_string(out: list[int], s: str, cap: int) -> None:
    """A text field: capped UTF-8 bytes plus ``<TRUNC>`` when cut, or a blob when not language."""
    n = len(s)
    if (n >= BLOB_LIKE_MIN and _base64_prefix(s)) or (s.startswith("data:") and _data_url(s)):
        out.append(t.BLOB)
        out.append(t.SIZE + size_index(n))
        return
    if n <= cap:
        b = s.encode("utf-8", ENCODE_ERRORS)
        if len(b) <= cap:
            out.extend(b)
            return
        out.extend(b[:cap])
    else:
        out.extend(s[:cap].encode("utf-8", ENCODE_ERRORS)[:cap])
    out.append(t.TRUNC)


def emit_text_value(out: list[int], s: str, cap: int) -> None:
    """A string value of an attribute without a rule: a long number or numeric list is
    summarised (see :mod:`rrweb_dali.tokenizer.budget`), anything else is text."""
    if len(s) > SHORT_VALUE and s[0] in NUMBER_START and emit_number_text(out, s, cap):
        return
    emit_string(out, s, cap)


def emit_blob(out: list[int], length: int) -> None:
    out.append(t.BLOB)
    out.append(t.SIZE + size_index(length))


def number_bytes(x) -> bytes:
    """Decimal text of a JSON number with at most 3 decimals, by integer math (no float repr)."""
    if x.__class__ is int:
        return str(x).encode()
    m = math.floor(x * 1000)  # raises on nan / inf: the caller marks the value malformed
    sign = "-" if m < 0 else ""
    whole, frac = divmod(abs(m), 1000)
    if frac == 0:
        return f"{sign}{whole}".encode()
    return f"{sign}{whole}.{frac:03d}".rstrip("0").encode()


def emit_value(out: list[int], val, cap: int, names: NameTokens) -> None:
    """An attribute value: string, true, false, null, number, or a style-diff object."""
    cls = val.__class__
    if cls is str:
        if val:
            emit_string(out, val, cap)
    elif val is True:
        out.append(t.V_TRUE)
    elif val is None:
        out.append(t.V_NULL)
    elif val is False:
        out.append(t.V_FALSE)
    elif cls is int or cls is float:
        try:
            digits = number_bytes(val)
        except (ValueError, OverflowError):
            out.append(t.MALFORMED)
            return
        out.append(t.V_NUM)
        out.extend(digits[:cap])
    elif cls is dict:
        _emit_style_diff(out, val, cap, names)
    else:
        out.append(t.MALFORMED)


def _emit_style_diff(out: list[int], diff: dict, cap: int, names: NameTokens) -> None:
    """rrweb's style attribute diff: {prop: value | false | [value, priority]}."""
    out.append(t.V_STYLE)
    for prop in sorted_keys(diff):
        out.append(names.other(prop))
        val = diff[prop]
        if val.__class__ is str:
            _emit_style_value(out, val, cap)
        elif val is False:
            out.append(t.V_FALSE)
        elif val.__class__ is list and len(val) == 2 and val[0].__class__ is str:
            _emit_style_value(out, val[0], cap)
            if val[1]:
                out.append(t.IMPORTANT)
        else:
            out.append(t.MALFORMED)


def _emit_style_value(out: list[int], val: str, cap: int) -> None:
    """A style-diff value: one over SHORT_VALUE characters holding two or more numbers (an
    animated ``transform: translate(12.5px, 80.25px)``) is summarised like geometry."""
    if len(val) > SHORT_VALUE and _two_numbers(val):
        emit_geometry(out, val)
    else:
        emit_string(out, val, cap)


_two_numbers = re.compile(r"\d[^\d]+\d", re.ASCII).search


def sorted_keys(d: dict) -> list:
    """Keys in canonical order, so equal dicts give equal tokens whatever their key order."""
    try:
        return sorted(d)
    except TypeError:  # mixed key types (not JSON, but never raise): strings sorted, then the
        # rest in insertion order (a stable sort; repr() could hold memory addresses)
        return sorted(d, key=lambda k: (0, k) if k.__class__ is str else (1, ""))


def emit_attributes(out: list[int], attrs, cap: int, names: NameTokens) -> None:
    """Attributes sorted by name: name token, then value (blob for _cssText / rr_dataURL)."""
    if attrs.__class__ is not dict:
        out.append(t.MALFORMED)
        return
    for name in sorted_keys(attrs) if len(attrs) > 1 else attrs:
        a = names.attr(name)
        out.append(a)
        val = attrs[name]
        if val.__class__ is not str:
            emit_value(out, val, cap, names)
        elif a in RULES:
            emit_ruled(out, RULES[a], val, cap, names, emit_string)
        elif val:
            emit_text_value(out, val, cap)


def walk(out: list[int], stack: list, targets: dict, cap: int, names: NameTokens) -> None:
    """Depth-first tokens of the node trees on ``stack``; records id -> target in ``targets``.

    ``stack`` is consumed from its end, so push roots in reverse order. An entry may also be a
    mutation add record ``{parentId, node, ...}`` (a dict without ``type``): it emits MUT-ADD and
    its parent's target when it is reached, not when pushed, because an add often names a parent
    added earlier in the same batch.
    """
    append = out.append
    extend = out.extend
    tag_cache = names.tags
    attr_cache = names.attrs
    rules = RULES
    short, num_start = SHORT_VALUE, NUMBER_START
    target_shift = t.TARGET_SHIFT
    close_mark = _CLOSE_MARK
    fast = min(cap, BLOB_LIKE_MIN - 1)  # strings this short need no base64 check
    CLOSE, TRUNC, MALFORMED, NODE_TEXT = t.CLOSE, t.TRUNC, t.MALFORMED, t.NODE_TEXT
    T_TEXT, T_UNKNOWN, MUT_ADD = t.T_TEXT, t.T_UNKNOWN, t.MUT_ADD
    pop = stack.pop
    push = stack.append
    # Written for speed (one iteration per node, so every bytecode counts): subscripts in a
    # ``try`` where the key is nearly always there, ``in`` tests instead of ``dict.get`` calls,
    # lengths taken once, and the rare shapes (missing keys, odd types) sent to slow paths.
    while stack:
        node = pop()
        if node is close_mark:  # as many as elements: the cheapest test first
            append(CLOSE)
            continue
        try:  # .get(), not a subscript: add records have no type, and a raise costs more
            kind = node.get("type")
        except AttributeError:  # not a dict
            append(MALFORMED)
            continue
        if kind == 2:  # element
            try:  # subscripts are faster than .get(); a missing key takes the slow path
                tag, nid, attrs, children = (
                    node["tagName"],
                    node["id"],
                    node["attributes"],
                    node["childNodes"],
                )
            except KeyError:
                tag, nid = node.get("tagName"), node.get("id")
                attrs, children = node.get("attributes"), node.get("childNodes")
            try:
                tok = tag_cache[tag]
                target = tok + target_shift
            except (KeyError, TypeError):  # first time this tag is seen, or an odd tagName
                tok, target = names.tag(tag)
            append(tok)
            if nid.__class__ is int:
                targets[nid] = target
            if len(node) > 5:  # flags are rare: only look for them when extra keys exist
                _element_flags(out, node)
            if attrs:
                if attrs.__class__ is dict:
                    for name in sorted(attrs) if len(attrs) > 1 else attrs:
                        try:
                            a = attr_cache[name]
                        except KeyError:  # first time this name is seen (or the memo is full)
                            a = names.attr(name)
                        append(a)
                        val = attrs[name]
                        if val.__class__ is not str:
                            emit_value(out, val, cap, names)
                        elif a in rules:
                            emit_ruled(out, rules[a], val, cap, names, emit_string)
                        else:
                            n = len(val)
                            if (
                                n <= fast
                                and (n <= short or val[0] not in num_start)
                                and "data:" not in val  # faster than startswith; exact below
                            ):
                                try:
                                    b = val.encode()  # strict is twice as fast as surrogatepass
                                except UnicodeEncodeError:
                                    b = val.encode("utf-8", ENCODE_ERRORS)
                                if len(b) <= cap:
                                    extend(b)
                                else:
                                    extend(b[:cap])
                                    append(TRUNC)
                            else:
                                emit_text_value(out, val, cap)
                else:
                    append(MALFORMED)
            if children:
                if children.__class__ is list:
                    push(close_mark)
                    if len(children) == 1:  # most elements with children have one
                        push(children[0])
                    else:
                        stack += children[::-1]  # a reversed copy: faster than reversed()
                    continue
                append(MALFORMED)
            elif children is None:
                append(MALFORMED)
            append(CLOSE)
        elif kind == 3:  # text
            append(NODE_TEXT)
            try:
                nid, text = node["id"], node["textContent"]
            except KeyError:
                nid, text = node.get("id"), node.get("textContent")
            if nid.__class__ is int:
                targets[nid] = T_TEXT
            if text.__class__ is str:
                if len(node) > 3 and node.get("isStyle"):
                    append(t.BLOB)
                    append(t.SIZE + size_index(len(text)))
                elif len(text) <= fast and "data:" not in text:
                    try:
                        b = text.encode()
                    except UnicodeEncodeError:  # a lone surrogate
                        b = text.encode("utf-8", ENCODE_ERRORS)
                    if len(b) <= cap:
                        extend(b)
                    else:
                        extend(b[:cap])
                        append(TRUNC)
                else:
                    emit_string(out, text, cap)
            elif text is not None:
                append(MALFORMED)
        elif kind is None and ("parentId" in node or "node" in node):  # a mutation add record
            append(MUT_ADD)
            parent = node.get("parentId")
            append(targets.get(parent, T_UNKNOWN) if parent.__class__ is int else T_UNKNOWN)
            push(node.get("node"))
        else:
            _other_node(out, node, kind, targets, cap, push)


def _element_flags(out: list[int], node: dict) -> None:
    if node.get("isSVG"):
        out.append(t.SVG_NS)
    if node.get("isCustom"):
        out.append(t.CUSTOM_EL)
    if node.get("isShadowHost"):
        out.append(t.SHADOW_HOST)
    if node.get("isShadow"):
        out.append(t.SHADOW)


def _other_node(out: list[int], node: dict, kind, targets: dict, cap: int, push) -> None:
    """Document, doctype, CDATA, comment and unknown node types (rare: not inlined)."""
    nid = node.get("id")
    registrable = nid.__class__ is int
    if kind == 0:
        out.append(t.NODE_DOC)
        if registrable:
            targets[nid] = t.T_DOC
        children = node.get("childNodes")
        push(_CLOSE_MARK)
        if children.__class__ is list:
            for child in reversed(children):
                push(child)
        else:
            out.append(t.MALFORMED)
        return
    if registrable:
        targets[nid] = t.T_OTHER
    if kind == 1:
        out.append(t.NODE_DOCTYPE)
        _text_field(out, node.get("name"), cap)
        public_id, system_id = node.get("publicId"), node.get("systemId")
        if public_id:
            out.append(t.PUBLIC_ID)
            _text_field(out, public_id, cap)
        if system_id:
            out.append(t.SYSTEM_ID)
            _text_field(out, system_id, cap)
    elif kind == 4:
        out.append(t.NODE_CDATA)
    elif kind == 5:
        out.append(t.NODE_COMMENT)
        _text_field(out, node.get("textContent"), cap)
    else:
        out.append(t.NODE_UNKNOWN)


def _text_field(out: list[int], s, cap: int) -> None:
    if s.__class__ is str:
        emit_string(out, s, cap)
    elif s is not None:
        out.append(t.MALFORMED)
