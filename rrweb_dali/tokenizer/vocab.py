"""The fixed vocabulary of the structural tokenizer: one table of id ranges, built from fixed lists.

Why fixed: token shards written today must decode the same way next year and on another machine,
so nothing here is learned from data and nothing depends on Python's per-process ``hash()``.
Names outside the fixed lists (custom elements, ``data-*`` attributes, plugin names) fall into
hashed buckets chosen by ``zlib.crc32`` of their UTF-8 bytes, which is stable everywhere.

Layout (final ``uint16`` ids; a test checks this table against :data:`RANGES`)::

    range    first  size  what
    SPECIAL      0    64  PAD=0, BOS=1, EOS=2, markers (MALFORMED, TRUNC, BLOB, </>, ...), reserved
    BYTE        64   256  one token per UTF-8 byte of capped text
    EVENT      320    10  event types 0-8, then unknown
    SOURCE     330    18  incremental sources 0-16, then unknown
    MOUSE      348    12  mouse interactions 0-10, then unknown
    POINTER    360     4  pointer types Mouse, Pen, Touch, then unknown
    MEDIA      364     6  media interactions 0-4, then unknown
    NODE       370     7  node types 0-5, then unknown (an element is written as its tag token)
    DT         377   100  log bucket of the ms since the previous event; starts every event
    TOFF       477   100  log bucket of -timeOffset of a mouse / touch / drag position
    X          577   128  x * 128 // viewport width, clamped
    Y          705   128  y * 128 // viewport height, clamped
    SX         833   128  scroll x in 1/8 viewport widths, clamped
    SY         961   128  scroll y in 1/8 viewport heights, clamped
    VW        1089   128  viewport width in 32 px steps, clamped
    VH        1217   128  viewport height in 32 px steps, clamped
    SIZE      1345    48  blob size: bit length of its length (chars, or JSON bytes), clamped
    COUNT     1393    48  small numbers (selection offsets, media time): log buckets as DT
    TAG       1441  1218  element open: 194 known HTML/SVG tags, then 1024 hashed buckets
    TARGET    2659  1218  the tag of the node an event targets (same order as TAG)
    ATTR      3877  1261  attribute name: 237 known names, then 1024 hashed buckets
    NAME      5138  1098  custom-event tags, plugin names, CSS properties: 74 known + 1024 hashed
                          vocab_size = 6236

Log buckets (DT, TOFF, COUNT) have four steps per octave: see :func:`log_bucket`.
Changing any list or size changes ids: bump ``VERSION`` when you do.

Versions: 1, the first layout; 2 (three new specials, 65 CSS property names in NAME) adds the
token budget of :mod:`rrweb_dali.tokenizer.budget`: long geometry attributes (``d``, ``points``,
``transform``, numeric lists), long inline styles and long decimals are summarised, and an event
longer than its budget is cut and marked ``<EV-TRUNC>``.
"""

from __future__ import annotations

import zlib

VERSION = 2
HASH_BUCKETS = 1024

# Named single tokens at the start of the vocabulary; the order is part of the format.
SPECIAL_NAMES: tuple[str, ...] = (
    "<PAD>",
    "<BOS>",
    "<EOS>",
    "<UNK_EVENT>",  # an event whose type is not 0-8 (also the EVENT unknown slot renders so)
    "<MALFORMED>",  # something of the wrong shape; the tokenizer goes on after it
    "<TRUNC>",  # text cut at max_text_bytes
    "<BLOB>",  # a payload never inlined; a SIZE token follows
    "<DT?>",  # event timestamp missing or not a number
    "<DT-NEG>",  # event earlier than the previous one
    "</>",  # element close
    "=true",  # attribute value true
    "=false",
    "=null",  # attribute removed
    "=num",  # numeric attribute value; its digits follow as bytes
    "=style{",  # style-diff object value (mutation attributes)
    "!important",
    "<shadow-host>",
    "<shadow>",
    "<custom-element>",
    "<svg-ns>",
    "MUT-REMOVE",
    "MUT-ADD",
    "MUT-TEXT",
    "MUT-ATTR",
    "attach-iframe",
    "@?",  # target node unknown (no snapshot has named it)
    "checked",
    "unchecked",
    "user",  # input userTriggered
    "href=",
    "range",
    "muted",
    "unmuted",
    "loop",
    "vol",
    "rate",
    "t=",
    "public-id",
    "system-id",
    "adds",
    "removes",
    "replace",
    "=str",  # a payload that is a plain (possibly compressed) string
    "define",
    "@#text",  # target is a text node
    "@#doc",  # target is the document (the page scrolls as the document)
    "@#other",  # target is a doctype, comment or CDATA node
    "=geom",  # (v2) long geometry / numeric list: command letters as bytes, then a COUNT token
    "=css{",  # (v2) long inline style: property NAME tokens and short keyword values, then SIZE
    "<EV-TRUNC>",  # (v2) the event's tokens were cut at the per-event token budget
)
SPECIAL_SIZE = 64
assert len(SPECIAL_NAMES) <= SPECIAL_SIZE

EVENT_NAMES: tuple[str, ...] = (
    "DomContentLoaded",
    "Load",
    "FULL",
    "INCR",
    "META",
    "CUSTOM",
    "PLUGIN",
    "ASSET",
    "ANNOTATION",
    "<UNK_EVENT>",
)
SOURCE_NAMES: tuple[str, ...] = (
    "Mutation",
    "MouseMove",
    "MouseInteraction",
    "Scroll",
    "ViewportResize",
    "Input",
    "TouchMove",
    "MediaInteraction",
    "StyleSheetRule",
    "CanvasMutation",
    "Font",
    "Log",
    "Drag",
    "StyleDeclaration",
    "Selection",
    "AdoptedStyleSheet",
    "CustomElement",
    "<UNK_SOURCE>",
)
MOUSE_NAMES: tuple[str, ...] = (
    "MouseUp",
    "MouseDown",
    "Click",
    "ContextMenu",
    "DblClick",
    "Focus",
    "Blur",
    "TouchStart",
    "TouchMove_Departed",
    "TouchEnd",
    "TouchCancel",
    "<UNK_MOUSE>",
)
POINTER_NAMES: tuple[str, ...] = ("ptr:mouse", "ptr:pen", "ptr:touch", "ptr:?")
MEDIA_NAMES: tuple[str, ...] = (
    "Play",
    "Pause",
    "Seeked",
    "VolumeChange",
    "RateChange",
    "<UNK_MEDIA>",
)
NODE_NAMES: tuple[str, ...] = (
    "#document",
    "#doctype",
    "#element",
    "#text",
    "#cdata",
    "#comment",
    "#unknown-node",
)

# The name lists stay compact, several names a line.
# fmt: off
HTML_TAGS: tuple[str, ...] = (
    "a", "abbr", "address", "area", "article", "aside", "audio", "b", "base", "bdi", "bdo",
    "blockquote", "body", "br", "button", "canvas", "caption", "cite", "code", "col", "colgroup",
    "data", "datalist", "dd", "del", "details", "dfn", "dialog", "div", "dl", "dt", "em", "embed",
    "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
    "head", "header", "hgroup", "hr", "html", "i", "iframe", "img", "input", "ins", "kbd", "label",
    "legend", "li", "link", "main", "map", "mark", "menu", "meta", "meter", "nav", "noscript",
    "object", "ol", "optgroup", "option", "output", "p", "param", "picture", "pre", "progress",
    "q", "rp", "rt", "ruby", "s", "samp", "script", "search", "section", "select", "slot", "small",
    "source", "span", "strong", "style", "sub", "summary", "sup", "table", "tbody", "td",
    "template", "textarea", "tfoot", "th", "thead", "time", "title", "tr", "track", "u", "ul",
    "var", "video", "wbr", "acronym", "applet", "basefont", "big", "blink", "center", "dir",
    "font", "frame", "frameset", "marquee", "nobr", "noembed", "noframes", "plaintext", "rb",
    "rtc", "strike", "tt", "xmp", "math", "portal",
)
SVG_TAGS: tuple[str, ...] = (
    "svg", "g", "defs", "symbol", "use", "path", "rect", "circle", "ellipse", "line", "polyline",
    "polygon", "text", "tspan", "textPath", "image", "clipPath", "mask", "pattern", "marker",
    "linearGradient", "radialGradient", "stop", "filter", "foreignObject", "desc", "metadata",
    "switch", "view", "animate", "animateMotion", "animateTransform", "set", "mpath", "feBlend",
    "feColorMatrix", "feComponentTransfer", "feComposite", "feConvolveMatrix", "feDiffuseLighting",
    "feDisplacementMap", "feDistantLight", "feDropShadow", "feFlood", "feFuncA", "feFuncB",
    "feFuncG", "feFuncR", "feGaussianBlur", "feImage", "feMerge", "feMergeNode", "feMorphology",
    "feOffset", "fePointLight", "feSpecularLighting", "feSpotLight", "feTile", "feTurbulence",
)
TAGS: tuple[str, ...] = HTML_TAGS + SVG_TAGS

HTML_ATTRS: tuple[str, ...] = (
    "id", "class", "style", "href", "src", "alt", "title", "type", "name", "value", "rel",
    "content", "charset", "lang", "dir", "hidden", "tabindex", "role", "for", "action", "method",
    "target", "placeholder", "disabled", "checked", "selected", "readonly", "required", "multiple",
    "autocomplete", "autofocus", "autoplay", "controls", "loop", "muted", "poster", "preload",
    "width", "height", "colspan", "rowspan", "headers", "scope", "span", "srcset", "sizes",
    "media", "crossorigin", "integrity", "referrerpolicy", "loading", "decoding", "async", "defer",
    "nonce", "download", "hreflang", "ping", "accept", "accept-charset", "enctype", "novalidate",
    "min", "max", "step", "pattern", "maxlength", "minlength", "size", "list", "form",
    "formaction", "open", "label", "datetime", "cite", "translate", "spellcheck",
    "contenteditable", "draggable", "accesskey", "inputmode", "enterkeyhint", "is", "itemprop",
    "itemscope", "itemtype", "itemid", "itemref", "slot", "part", "exportparts", "popover",
    "popovertarget", "http-equiv", "sandbox", "allow", "allowfullscreen", "frameborder",
    "scrolling", "srcdoc", "border", "cellpadding", "cellspacing", "align", "valign", "bgcolor",
    "color", "face", "nowrap", "wrap", "cols", "rows", "shape", "coords", "usemap", "ismap",
    "start", "reversed", "kind", "srclang", "default", "data", "xmlns", "xmlns:xlink", "xml:lang",
    "as", "blocking", "fetchpriority", "property", "onclick", "onload", "onerror", "onsubmit",
    "onchange", "oninput",
)
ARIA_ATTRS: tuple[str, ...] = (
    "aria-label", "aria-labelledby", "aria-describedby", "aria-hidden", "aria-expanded",
    "aria-controls", "aria-haspopup", "aria-current", "aria-selected", "aria-checked",
    "aria-pressed", "aria-disabled", "aria-live", "aria-atomic", "aria-busy", "aria-modal",
    "aria-orientation", "aria-valuenow", "aria-valuemin", "aria-valuemax", "aria-valuetext",
    "aria-level", "aria-owns", "aria-activedescendant", "aria-autocomplete", "aria-invalid",
    "aria-required", "aria-readonly", "aria-multiselectable", "aria-sort", "aria-posinset",
    "aria-setsize", "aria-roledescription", "aria-keyshortcuts", "aria-details",
    "aria-errormessage", "aria-placeholder",
)
SVG_ATTRS: tuple[str, ...] = (
    "viewBox", "d", "fill", "stroke", "stroke-width", "stroke-linecap", "stroke-linejoin",
    "stroke-dasharray", "stroke-dashoffset", "stroke-opacity", "fill-opacity", "fill-rule",
    "clip-rule", "opacity", "transform", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx",
    "ry", "points", "preserveAspectRatio", "xlink:href", "focusable", "version", "offset",
    "stop-color", "stop-opacity", "gradientUnits", "gradientTransform", "patternUnits",
    "clip-path", "mask", "filter", "marker-end", "marker-start", "text-anchor",
    "dominant-baseline", "font-size", "font-family", "font-weight", "dx", "dy", "pathLength",
)
RR_ATTRS: tuple[str, ...] = (
    "_cssText", "rr_dataURL", "rr_width", "rr_height", "rr_scrollLeft", "rr_scrollTop",
    "rr_mediaState", "rr_mediaCurrentTime", "rr_mediaPlaybackRate", "rr_mediaMuted",
    "rr_mediaLoop", "rr_mediaVolume", "rr_src", "rr_open",
)
# fmt: on
ATTRS: tuple[str, ...] = HTML_ATTRS + ARIA_ATTRS + SVG_ATTRS + RR_ATTRS

# Other names: known custom-event tags and plugin names.
NAMES: tuple[str, ...] = (
    "rrweb/console@1",
    "rrweb/network@1",
    "rrweb/sequential-id@1",
    "rrweb/canvas-webrtc@1",
    "$pageview",
    "$pageleave",
    "breadcrumb",
    "performanceSpan",
    "options",
)
# (v2) CSS properties of inline styles and style diffs: named, not hashed, so they read well.
# fmt: off
CSS_PROPERTIES: tuple[str, ...] = (
    "display", "position", "top", "left", "right", "bottom", "width", "height", "min-width",
    "min-height", "max-width", "max-height", "margin", "margin-top", "margin-left",
    "margin-right", "margin-bottom", "padding", "padding-top", "padding-left", "padding-right",
    "padding-bottom", "color", "background", "background-color", "background-image", "border",
    "border-radius", "border-color", "border-width", "font-size", "font-weight", "font-family",
    "line-height", "text-align", "overflow", "overflow-x", "overflow-y", "visibility",
    "opacity", "z-index", "transform", "transform-origin", "transition", "animation", "cursor",
    "pointer-events", "flex", "flex-direction", "align-items", "justify-content", "gap",
    "box-shadow", "white-space", "fill", "stroke", "stroke-width", "translate", "rotate",
    "scale", "inset", "will-change", "user-select", "content", "outline",
)
# fmt: on
NAMES = NAMES + CSS_PROPERTIES

assert len(set(TAGS)) == len(TAGS) and len(set(ATTRS)) == len(ATTRS)
assert len(set(NAMES)) == len(NAMES)

# Numeric range sizes.
DT_SIZE = 100
TOFF_SIZE = 100
COORD_SIZE = 128
SCROLL_SIZE = 128
SCROLL_STEPS_PER_VIEWPORT = 8
VIEWPORT_SIZE = 128
VIEWPORT_STEP_PX = 32
SIZE_SIZE = 48
COUNT_SIZE = 48

RANGE_SIZES: tuple[tuple[str, int], ...] = (
    ("SPECIAL", SPECIAL_SIZE),
    ("BYTE", 256),
    ("EVENT", len(EVENT_NAMES)),
    ("SOURCE", len(SOURCE_NAMES)),
    ("MOUSE", len(MOUSE_NAMES)),
    ("POINTER", len(POINTER_NAMES)),
    ("MEDIA", len(MEDIA_NAMES)),
    ("NODE", len(NODE_NAMES)),
    ("DT", DT_SIZE),
    ("TOFF", TOFF_SIZE),
    ("X", COORD_SIZE),
    ("Y", COORD_SIZE),
    ("SX", SCROLL_SIZE),
    ("SY", SCROLL_SIZE),
    ("VW", VIEWPORT_SIZE),
    ("VH", VIEWPORT_SIZE),
    ("SIZE", SIZE_SIZE),
    ("COUNT", COUNT_SIZE),
    ("TAG", len(TAGS) + HASH_BUCKETS),
    ("TARGET", len(TAGS) + HASH_BUCKETS),
    ("ATTR", len(ATTRS) + HASH_BUCKETS),
    ("NAME", len(NAMES) + HASH_BUCKETS),
)


def _offsets() -> dict[str, tuple[int, int]]:
    start = 0
    table: dict[str, tuple[int, int]] = {}
    for name, size in RANGE_SIZES:
        table[name] = (start, size)
        start += size
    return table


RANGES: dict[str, tuple[int, int]] = _offsets()
"""Range name -> (first id, size)."""

VOCAB_SIZE: int = sum(size for _, size in RANGE_SIZES)
assert VOCAB_SIZE < 65536

SPECIAL: dict[str, int] = {name: i for i, name in enumerate(SPECIAL_NAMES)}
PAD_ID: int = SPECIAL["<PAD>"]
BOS_ID: int = SPECIAL["<BOS>"]
EOS_ID: int = SPECIAL["<EOS>"]

BYTE_BASE: int = RANGES["BYTE"][0]
"""Byte b is token BYTE_BASE + b. The encoder stores ids minus BYTE_BASE (see encode.py)."""


def stable_bucket(name: str) -> int:
    """A bucket in [0, HASH_BUCKETS) that is the same on every machine and Python version."""
    return zlib.crc32(name.encode("utf-8", "surrogatepass")) % HASH_BUCKETS


def _name_id(range_name: str, fixed: tuple[str, ...], index: dict[str, int], name: str) -> int:
    first, _ = RANGES[range_name]
    i = index.get(name)
    if i is None:
        i = index.get(name.lower())
    if i is None:
        i = len(fixed) + stable_bucket(name)
    return first + i


_TAG_INDEX = {n: i for i, n in enumerate(TAGS)}
_ATTR_INDEX = {n: i for i, n in enumerate(ATTRS)}
_NAME_INDEX = {n: i for i, n in enumerate(NAMES)}


def tag_id(name: str) -> int:
    """Token of an element open for tag ``name`` (fixed list, case-folded retry, else hashed)."""
    return _name_id("TAG", TAGS, _TAG_INDEX, name)


def target_id(name: str) -> int:
    """Token saying "the event's target is a ``name`` element"; parallel to :func:`tag_id`."""
    return tag_id(name) - RANGES["TAG"][0] + RANGES["TARGET"][0]


def attr_id(name: str) -> int:
    """Token of attribute name ``name``."""
    return _name_id("ATTR", ATTRS, _ATTR_INDEX, name)


def other_name_id(name: str) -> int:
    """Token of a custom-event tag, plugin name or CSS property name."""
    return _name_id("NAME", NAMES, _NAME_INDEX, name)


def token_names() -> list[str]:
    """A printable name for every id, for :func:`decode` and for people reading shards."""
    names = [f"<RESERVED{i}>" for i in range(VOCAB_SIZE)]
    for i, n in enumerate(SPECIAL_NAMES):
        names[i] = n

    def fill(range_name: str, labels) -> None:
        first, size = RANGES[range_name]
        for i in range(size):
            names[first + i] = labels(i)

    fill("BYTE", lambda i: f"<0x{i:02X}>")
    fill("EVENT", lambda i: EVENT_NAMES[i])
    fill("SOURCE", lambda i: SOURCE_NAMES[i])
    fill("MOUSE", lambda i: MOUSE_NAMES[i])
    fill("POINTER", lambda i: POINTER_NAMES[i])
    fill("MEDIA", lambda i: MEDIA_NAMES[i])
    fill("NODE", lambda i: NODE_NAMES[i])
    fill("DT", lambda i: f"[+{log_bucket_floor(i)}ms]")
    fill("TOFF", lambda i: f"dt-{log_bucket_floor(i)}ms")
    fill("X", lambda i: f"x{i}")
    fill("Y", lambda i: f"y{i}")
    fill("SX", lambda i: f"sx{i}")
    fill("SY", lambda i: f"sy{i}")
    fill("VW", lambda i: f"w{i * VIEWPORT_STEP_PX}")
    fill("VH", lambda i: f"h{i * VIEWPORT_STEP_PX}")
    fill("SIZE", lambda i: f"size~2^{i}")
    fill("COUNT", lambda i: f"n{log_bucket_floor(i)}")
    n_tags = len(TAGS)
    fill("TAG", lambda i: "<" + (TAGS[i] if i < n_tags else f"tag#{i - n_tags}"))
    fill("TARGET", lambda i: "@" + (TAGS[i] if i < n_tags else f"tag#{i - n_tags}"))
    n_attrs = len(ATTRS)
    fill("ATTR", lambda i: (ATTRS[i] if i < n_attrs else f"attr#{i - n_attrs}") + "=")
    n_names = len(NAMES)
    fill("NAME", lambda i: "'" + (NAMES[i] if i < n_names else f"name#{i - n_names}") + "'")
    return names


def log_bucket(d: int) -> int:
    """Bucket of a non-negative integer on a log scale with four steps per octave.

    0-3 map to themselves; above, the bucket is 4 * (bit_length - 2) plus the two bits below the
    leading one, so 4-7 -> 4-7, 8-15 -> 8-11, 16-31 -> 12-15 and so on. Integer math only, so
    every machine agrees. The caller clamps to its range.
    """
    if d < 4:
        return d if d > 0 else 0
    n = d.bit_length()
    return 4 * (n - 2) + ((d >> (n - 3)) & 3)


def log_bucket_floor(b: int) -> int:
    """The smallest integer in log bucket ``b`` (inverse of :func:`log_bucket`, for rendering)."""
    if b < 4:
        return b
    n = b // 4 + 2
    return (4 + b % 4) << (n - 3)
