"""Internal token ids used while encoding, and memoised name -> id lookups.

Why "internal" ids: the encoder collects one Python list in which a text byte ``b`` is stored as
``b`` itself (so ``list.extend(some_bytes)`` writes a whole string at C speed) and every other
token ``t`` as ``t - BYTE_BASE``. A single numpy add of ``BYTE_BASE`` at the end turns the list
into final ids. Every constant below is already in that internal form.
"""

from __future__ import annotations

from rrweb_dali.tokenizer import vocab as v

K = v.BYTE_BASE


def internal(final_id: int) -> int:
    """Internal id of a final token id."""
    return final_id - K


def _base(range_name: str) -> int:
    return internal(v.RANGES[range_name][0])


def _s(name: str) -> int:
    return internal(v.SPECIAL[name])


BOS, EOS = _s("<BOS>"), _s("<EOS>")
MALFORMED, TRUNC, BLOB = _s("<MALFORMED>"), _s("<TRUNC>"), _s("<BLOB>")
DT_UNKNOWN, DT_NEG = _s("<DT?>"), _s("<DT-NEG>")
CLOSE = _s("</>")
V_TRUE, V_FALSE, V_NULL, V_NUM = _s("=true"), _s("=false"), _s("=null"), _s("=num")
V_STYLE, IMPORTANT, V_STR = _s("=style{"), _s("!important"), _s("=str")
SHADOW_HOST, SHADOW, CUSTOM_EL, SVG_NS = (
    _s("<shadow-host>"),
    _s("<shadow>"),
    _s("<custom-element>"),
    _s("<svg-ns>"),
)
MUT_REMOVE, MUT_ADD, MUT_TEXT, MUT_ATTR = (
    _s("MUT-REMOVE"),
    _s("MUT-ADD"),
    _s("MUT-TEXT"),
    _s("MUT-ATTR"),
)
ATTACH_IFRAME = _s("attach-iframe")
T_UNKNOWN, T_TEXT, T_DOC, T_OTHER = _s("@?"), _s("@#text"), _s("@#doc"), _s("@#other")
CHECKED, UNCHECKED, USER, HREF, RANGE = (
    _s("checked"),
    _s("unchecked"),
    _s("user"),
    _s("href="),
    _s("range"),
)
MUTED, UNMUTED, LOOP, VOL, RATE, TIME = (
    _s("muted"),
    _s("unmuted"),
    _s("loop"),
    _s("vol"),
    _s("rate"),
    _s("t="),
)
PUBLIC_ID, SYSTEM_ID, DEFINE = _s("public-id"), _s("system-id"), _s("define")
V_GEOM, V_CSS, EVENT_TRUNC = _s("=geom"), _s("=css{"), _s("<EV-TRUNC>")

EVENT, SOURCE, MOUSE = _base("EVENT"), _base("SOURCE"), _base("MOUSE")
POINTER, MEDIA, NODE = _base("POINTER"), _base("MEDIA"), _base("NODE")
DT, TOFF, X, Y = _base("DT"), _base("TOFF"), _base("X"), _base("Y")
SX, SY, VW, VH = _base("SX"), _base("SY"), _base("VW"), _base("VH")
SIZE, COUNT = _base("SIZE"), _base("COUNT")
EVENT_UNKNOWN = EVENT + len(v.EVENT_NAMES) - 1
SOURCE_UNKNOWN = SOURCE + len(v.SOURCE_NAMES) - 1
MOUSE_UNKNOWN = MOUSE + len(v.MOUSE_NAMES) - 1
POINTER_UNKNOWN = POINTER + len(v.POINTER_NAMES) - 1
MEDIA_UNKNOWN = MEDIA + len(v.MEDIA_NAMES) - 1
NODE_DOC, NODE_DOCTYPE, NODE_ELEMENT, NODE_TEXT, NODE_CDATA, NODE_COMMENT, NODE_UNKNOWN = (
    NODE + i for i in range(7)
)
CSS_TEXT_ATTR = internal(v.attr_id("_cssText"))
DATA_URL_ATTR = internal(v.attr_id("rr_dataURL"))
TARGET_SHIFT = v.RANGES["TARGET"][0] - v.RANGES["TAG"][0]

_CACHE_LIMIT = 100_000  # hostile inputs with endless distinct names must not grow memory forever


class NameTokens:
    """Memoised name -> internal id lookups (fixed list, else stable hash bucket).

    Memoisation only saves time: the id of a name never depends on what was seen before.
    """

    __slots__ = ("attrs", "names", "tags")

    def __init__(self) -> None:
        self.tags: dict[str, int] = {}  # tag name -> open token
        self.attrs: dict[str, int] = {}
        self.names: dict[str, int] = {}

    def tag(self, name) -> tuple[int, int]:
        """(element open token, target token) for a tag name; a non-string is malformed."""
        if name.__class__ is not str:
            return (MALFORMED, T_UNKNOWN)
        tok = self.tags.get(name)
        if tok is None:
            tok = internal(v.tag_id(name))
            if len(self.tags) < _CACHE_LIMIT:
                self.tags[name] = tok
        return (tok, tok + TARGET_SHIFT)

    def attr(self, name) -> int:
        """Attribute name token; a non-string name is malformed."""
        tok = self.attrs.get(name) if name.__class__ is str else MALFORMED
        if tok is None:
            tok = internal(v.attr_id(name))
            if len(self.attrs) < _CACHE_LIMIT:
                self.attrs[name] = tok
        return tok

    def other(self, name) -> int:
        """Custom-event tag, plugin name or CSS property token; a non-string is malformed."""
        tok = self.names.get(name) if name.__class__ is str else MALFORMED
        if tok is None:
            tok = internal(v.other_name_id(name))
            if len(self.names) < _CACHE_LIMIT:
                self.names[name] = tok
        return tok
