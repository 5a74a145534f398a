"""Plausible documentation-page DOMs in rrweb's serialized node format, built cheaply.

WHY templates: building a fresh DOM with fresh text for each of ~32k sessions would cost far more
than writing it. A seed defines a few *sites* (API-reference pages shaped like rustdoc, guides
shaped like the Node.js docs), each with a pool of *pages*; a page is built once per process
(memoized: a pure function of (seed, site, page)) as a pre-order list of pre-serialized node
pieces, and a snapshot of it is a join of those bytes that numbers ids from 1 and applies the
session's record options (slimDOM, text masking, inlineStylesheet off). Subtrees added by
mutations ("widgets") are byte templates with id slots.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

import orjson

from rrweb_dali.synth import profile

# flat-node kinds (not rrweb's numbers: these pick the serialized shape)
DOC, DOCTYPE, EL, TEXT, COMMENT, SVG, CUSTOM, HOST, SHADOW_EL, SHADOW_TEXT, CSSLINK = range(11)
# flags: whitespace text, dropped by slimDOM, masked by maskTextSelector, an inlined stylesheet
WS, SLIM, MASK, CSS = 1, 2, 4, 8

SITES_PER_SEED = 8
PAGES_PER_SITE = 48
# chance that a spot between elements gets an indentation text node; tuned so the share of
# whitespace nodes in snapshots matches profile.WHITESPACE_NODE_FRACTION
WS_CALL_PROBABILITY: dict[str, float] = {"api": 0.75, "guide": 1.0}


def _words(text: str) -> tuple[str, ...]:
    """A vocabulary written as prose, which reads better than a list of quoted words."""
    return tuple(text.split())


WORDS = _words(
    "the a an of to in for on with by from as is are be this that it returns value values "
    "function method type types struct trait module option options result error errors buffer "
    "stream string strings number integer pointer reference slice vector iterator element "
    "elements index length capacity memory thread threads lock file path socket request response "
    "event events listener callback promise async await handle handles object objects default "
    "may must should will can not if when which each all any new old first last next previous "
    "creates returns converts reads writes checks sets gets removes inserts calls panics "
    "safely unsafe mutable immutable borrowed owned shared static const generic implementation "
    "see also example examples note deprecated since version stable unstable platform specific"
)
IDENT_PARTS = _words(
    "as ptr from into try get set len is empty iter map filter fold read write buf with "
    "capacity push pop insert remove split join trim parse to string bytes char count max min "
    "next peek take skip zip chain clone copy hash eq cmp sort key value entry lock spawn "
    "open close flush seek sync send recv poll wake ready drop new default create"
)
# identifiers of two and three parts ("as_ptr", "from_bytes_with"): picking from ready lists is
# several times faster than joining parts for each of the ~400k nodes of a seed's pages
IDENTS_2 = tuple(f"{a}_{b}" for a in IDENT_PARTS for b in IDENT_PARTS if a != b)
IDENTS_3 = tuple(
    f"{a}_{b}_{c}" for a in IDENT_PARTS[:16] for b in IDENT_PARTS[16:32] for c in IDENT_PARTS[32:48]
)
CLASS_WORDS = _words(
    "content main heading section item docblock toggle sidebar block code header rightside "
    "anchor impl method field variant summary details nav toc menu popover picker mark "
    "api stability signature example source location crate version"
)
CSS_PROPS = (
    "display:flex", "margin:0px", "padding:8px 12px", "color:var(--main-color)",
    "font-family:\"Source Serif 4\",serif", "line-height:1.5", "border-bottom:1px solid #ddd",
    "overflow-wrap:break-word", "position:relative", "font-size:0.875rem", "cursor:pointer",
    "background-color:transparent", "white-space:pre-wrap", "max-width:960px",
)  # fmt: skip
SVG_PATHS = (
    "M10 2L2 10l8 8 8-8z",
    "M4 6h16M4 12h16M4 18h16",
    "M12 4v16m8-8H4",
    "M9 5l7 7-7 7",
    "M21 21l-4.35-4.35M11 19a8 8 0 100-16 8 8 0 000 16z",
)


def derive_seed(*parts: int) -> int:
    """A 64-bit seed from integers, stable across runs and Python versions (no ``hash()``)."""
    x = 0x9E3779B97F4A7C15
    for p in parts:
        x ^= (
            (p & 0xFFFFFFFFFFFFFFFF)
            + 0x9E3779B97F4A7C15
            + ((x << 6) & 0xFFFFFFFFFFFFFFFF)
            + (x >> 2)
        )
        x = (x * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return x


_SENTINEL = 9_000_000_000_000  # ids in a widget's byte template: _SENTINEL + slot code
_PARENT_SLOT = 999_999
_SLOT_RE = re.compile(rb"(?<=:)9000000(\d{6})(?=[,}])")


@dataclass(frozen=True)
class Widget:
    """A subtree a page adds by mutation, kept as a byte template of its rrweb ``adds``.

    WHY bytes: search results add hundreds of these per session; filling ids into a template
    with ``%`` formatting is several times faster than building and dumping the dicts.
    """

    flat: tuple  # (parent, kind, name, value, flags) in pre-order; the root's parent is -1
    size: int  # nodes; they take ids first_id .. first_id + size - 1 (pre-order)
    template: bytes  # the adds, without the enclosing brackets, with %d id slots
    slots: tuple[int, ...]  # per %d after the first (the root's parentId): offset from first_id
    text_offsets: tuple[int, ...]  # offsets of text nodes, for later text mutations

    def adds_bytes(self, parent_id: int, first_id: int) -> bytes:
        """The JSON of the adds (comma-separated, no brackets) inserting it under ``parent_id``."""
        return self.template % (parent_id, *map(first_id.__add__, self.slots))


@dataclass(frozen=True)
class Site:
    kind: str  # "api" (rustdoc-like) or "guide" (Node.js-docs-like)
    origin: str
    name: str
    css_big: str
    css_small: str
    css_open: tuple[bytes, bytes]  # the opening bytes of a <link> carrying each as _cssText
    widgets: dict  # name -> variants (tuple of Widget)


@dataclass(frozen=True)
class Page:
    site: Site
    path: str
    nodes: tuple  # pre-serialized, in pre-order: (parent, flags, open, alt_open, mid, tail)
    clickables: tuple[int, ...]  # positions of a / button / summary
    inputs: tuple[int, ...]  # text inputs (the search box)
    checkboxes: tuple[int, ...]
    texts: tuple[int, ...]  # non-whitespace text nodes
    toggles: tuple[int, ...]  # elements whose class / aria-expanded / open flip
    containers: tuple[int, ...]  # elements that receive added widgets
    height: int  # document height in px, for scroll positions


class _Builder:
    """Appends nodes in DFS pre-order, so a node's position + 1 is its rrweb id."""

    def __init__(self, rng: random.Random, kind: str) -> None:
        self.rng = rng
        self.origin = ""  # the site's origin, for absolute URLs (rrweb absolutizes them)
        self.flat: list[tuple] = []
        self.ws_fraction = WS_CALL_PROBABILITY[kind]
        self.roles: dict[str, list[int]] = {
            k: [] for k in ("clickables", "inputs", "checkboxes", "texts", "toggles", "containers")
        }

    def add(self, parent: int, kind: int, name: str, value, flags: int = 0) -> int:
        self.flat.append((parent, kind, name, value, flags))
        return len(self.flat) - 1

    def el(
        self, parent: int, tag: str, attrs: dict | None = None, kind: int = EL, role: str = ""
    ) -> int:
        pos = self.add(parent, kind, tag, attrs or {})
        if role:
            self.roles[role].append(pos)
        return pos

    def text(self, parent: int, value: str, flags: int = 0) -> int:
        pos = self.add(parent, TEXT, "", value, flags)
        if value.strip():
            self.roles["texts"].append(pos)
        return pos

    def ws(self, parent: int, depth: int, flags: int = 0) -> None:
        """Indentation text, as often as the measured whitespace share asks for."""
        if self.rng.random() < self.ws_fraction:
            self.add(parent, TEXT, "", "\n" + " " * (2 * depth), WS | flags)

    def words(self, lo: int, hi: int) -> str:
        n = self.rng.randint(lo, hi)
        return " ".join(self.rng.choices(WORDS, k=n))

    def ident(self) -> str:
        """An identifier of 1-3 parts, short ones most often (text nodes are short: median 5)."""
        r = self.rng.random()
        return self.rng.choice(IDENT_PARTS if r < 0.5 else IDENTS_2 if r < 0.85 else IDENTS_3)

    def short_text(self) -> str:
        """A text of the measured length distribution (median 5, long tail)."""
        n = int(profile.quantile_draw(self.rng, profile.TEXT_LENGTH_Q))
        if n <= 12:
            return self.ident()[: max(1, n)]
        return self.words(max(1, n // 6), max(1, n // 5))

    def svg_icon(self, parent: int) -> None:
        s = self.el(parent, "svg", {"width": "16", "height": "16", "viewBox": "0 0 24 24",
                                    "xmlns": "http://www.w3.org/2000/svg", "fill": "none"}, SVG)  # fmt: skip
        self.el(s, "path", {"d": self.rng.choice(SVG_PATHS)}, SVG)

    def paragraph(self, parent: int, link_base: str, depth: int) -> None:
        self.ws(parent, depth)
        p = self.el(parent, "p")
        for _ in range(self.rng.randint(1, 4)):
            self.text(p, self.words(1, 9) + " ", MASK)
            r = self.rng.random()
            if r < 0.45:
                c = self.el(p, "code")
                self.text(c, self.ident())
            elif r < 0.8:
                a = self.el(p, "a", {"href": f"{link_base}{self.ident()}.html"}, role="clickables")
                self.text(a, self.ident())

    def code_block(self, parent: int, depth: int) -> None:
        self.ws(parent, depth)
        pre = self.el(parent, "pre", {"class": "rust"})
        code = self.el(pre, "code")
        for _ in range(self.rng.randint(3, 18)):
            r = self.rng.random()
            if r < 0.5:
                s = self.el(
                    code, "span", {"class": self.rng.choice(("kw", "ident", "string", "comment"))}
                )
                self.text(s, self.ident())
            else:
                self.text(code, self.rng.choice((" ", "(", ");\n    ", " = ", "::", ".")))
        holder = self.el(pre, "div", {"class": "button-holder"})
        b = self.el(holder, "button", {"class": "copy-button", "title": "Copy code to clipboard"},
                    role="clickables")  # fmt: skip
        self.svg_icon(b)


def _css(rng: random.Random, chars: int) -> str:
    parts: list[str] = []
    total = 0
    while total < chars:
        rule = f".{rng.choice(CLASS_WORDS)}-{rng.choice(IDENT_PARTS)} {{ " + "; ".join(
            rng.choices(CSS_PROPS, k=rng.randint(1, 4))) + "; }"  # fmt: skip
        parts.append(rule)
        total += len(rule)
    return "".join(parts)[:chars]


def _widget(builder_fn, rng: random.Random, kind: str, origin: str) -> Widget:
    b = _Builder(rng, kind)
    b.origin = origin
    root = b.el(-1, "div", {})
    builder_fn(b, root)
    flat = tuple((p - 1, *rest) for p, *rest in b.flat[1:])  # the scaffold's child is the root
    children: list[list[int]] = [[] for _ in flat]
    for i, (p, *_rest) in enumerate(flat[1:], start=1):
        children[p].append(i)
    nxt = [-1] * len(flat)
    for sib in children:
        for a, c in pairwise(sib):
            nxt[a] = c
    adds = []
    stack = [0]  # rrweb emits a parent, then its children last to first
    while stack:
        i = stack.pop()
        stack.extend(children[i])
        parent, kind_, name, value, flags = flat[i]
        node = _node(kind_, name, value, flags, _SENTINEL + i, False, True, ("", ""))
        adds.append({
            "parentId": _SENTINEL + (parent if parent >= 0 else _PARENT_SLOT),
            "nextId": _SENTINEL + nxt[i] if nxt[i] >= 0 else None,
            "node": node,
        })  # fmt: skip
    blob = orjson.dumps(adds)[1:-1].replace(b"%", b"%%")
    slots = tuple(int(m) for m in _SLOT_RE.findall(blob))
    if slots[0] != _PARENT_SLOT or _PARENT_SLOT in slots[1:]:  # the root is emitted first
        raise AssertionError("widget template: the root's parentId must be its only parent slot")
    template = _SLOT_RE.sub(b"%d", blob)
    texts = tuple(i for i, f in enumerate(flat) if f[1] == TEXT)
    return Widget(flat=flat, size=len(flat), template=template, slots=slots[1:], text_offsets=texts)


def _w_search_row(b: _Builder, root: int) -> None:
    a = b.el(
        root, "a", {"class": "result-fn", "href": f"{b.origin}/{b.ident()}/fn.{b.ident()}.html"}
    )
    d = b.el(a, "div", {"class": "result-name"})
    t = b.el(d, "span", {"class": "typename"})
    b.text(t, "fn")
    p = b.el(d, "div", {"class": "path"})
    for _ in range(b.rng.randint(2, 4)):
        b.text(p, b.ident() + "::")
        s = b.el(p, "span", {"class": "fn"})
        b.text(s, b.ident())
    desc = b.el(a, "div", {"class": "desc"})
    b.text(desc, b.words(2, 14))
    for _ in range(b.rng.choice((0, 0, 1, 2, 3))):
        c = b.el(desc, "code")
        b.text(c, b.ident())
        b.text(desc, " " + b.words(1, 6))


def _w_popover(b: _Builder, root: int) -> None:
    pop = b.el(root, "div", {"class": "popover", "id": "help"})
    c = b.el(pop, "div", {"class": "content"})
    for _ in range(b.rng.randint(5, 9)):
        dl = b.el(c, "dt")
        k = b.el(dl, "kbd")
        b.text(k, b.rng.choice(("?", "S", "/", "+", "-", "Esc", "Tab")))
        dd = b.el(c, "dd")
        b.text(dd, b.words(2, 8))


def _w_toolbar(b: _Builder, root: int) -> None:
    bar = b.el(root, "doc-toolbar", {}, CUSTOM)
    for name in ("toggle-all-docs", "settings-menu", "help-menu", "search-button"):
        b.text(bar, "\n        ", WS)
        d = b.el(bar, "div", {"class": name, "tabindex": "-1"})
        a = b.el(d, "a", {"href": "#", "title": b.words(2, 5)})
        s = b.el(a, "span", {"class": "label"})
        b.text(s, name.split("-")[0].title())


def _w_impl_item(b: _Builder, root: int) -> None:
    det = b.el(root, "details", {"class": "toggle implementors-toggle", "open": ""})
    summ = b.el(det, "summary")
    sec = b.el(summ, "section", {"id": f"impl-{b.ident()}", "class": "impl"})
    b.el(sec, "a", {"href": f"#impl-{b.ident()}", "class": "anchor"})
    h = b.el(sec, "h3", {"class": "code-header"})
    b.text(h, "impl ")
    a = b.el(h, "a", {"class": "trait", "href": f"{b.origin}/trait.{b.ident()}.html"})
    b.text(a, b.ident())
    b.text(h, " for ")
    a2 = b.el(h, "a", {"class": "struct", "href": f"{b.origin}/struct.{b.ident()}.html"})
    b.text(a2, b.ident())


def _w_tooltip(b: _Builder, root: int) -> None:
    tip = b.el(root, "div", {"class": "tooltip popover"})
    b.text(tip, b.words(3, 12))
    b.el(tip, "span", {"class": "arrow"})


def _w_script(b: _Builder, root: int) -> None:
    b.el(
        root,
        "script",
        {"src": f"{b.origin}/static.files/{b.ident()}-{b.rng.getrandbits(32):08x}.js"},
    )


def _w_label(b: _Builder, root: int) -> None:
    b.text(root, b.rng.choice(("Show all", "Hide", "Copied!", "Expand", "Collapse")))


_WIDGET_BUILDERS = {
    "search_row": _w_search_row,
    "popover": _w_popover,
    "toolbar": _w_toolbar,
    "impl_item": _w_impl_item,
    "tooltip": _w_tooltip,
    "script": _w_script,
    "label": _w_label,
}
WIDGET_VARIANTS = 6


@lru_cache(maxsize=64)
def site(seed: int, number: int) -> Site:
    """Site ``number`` of ``seed``: kind, origin, stylesheets and widget shapes (memoized, pure)."""
    rng = random.Random(derive_seed(seed, number, 0x5173))
    kind = "api" if number % 8 < 5 else "guide"  # 75 of 120 recordings are rustdoc pages
    big, small = profile.CSS_SIZES[kind]
    origin = f"https://docs{number}.s{seed % 100_000}.example.dev"
    widgets = {
        name: tuple(_widget(fn, rng, kind, origin) for _ in range(WIDGET_VARIANTS))
        for name, fn in _WIDGET_BUILDERS.items()
    }
    css = (
        _css(rng, int(big * rng.uniform(0.8, 1.2))),
        _css(rng, int(small * rng.uniform(0.8, 1.2))),
    )
    return Site(
        kind=kind,
        origin=origin,
        name="".join(rng.choices(IDENT_PARTS, k=2)),
        css_big=css[0],
        css_small=css[1],
        css_open=tuple(_pieces(CSSLINK, "link", ({}, i), CSS, css)[0] for i in (0, 1)),
        widgets=widgets,
    )


def _head(b: _Builder, s: Site, html: int, title: str) -> None:
    head = b.el(html, "head")
    static = f"{s.origin}/static.files/"
    b.ws(head, 2, SLIM)
    b.el(head, "meta", {"charset": "utf-8"})
    b.ws(head, 2, SLIM)
    b.el(head, "meta", {"name": "viewport", "content": "width=device-width, initial-scale=1.0"})
    b.add(head, EL, "meta", {"name": "description", "content": b.words(6, 20)}, SLIM)
    t = b.el(head, "title")
    b.text(t, title)
    sc = b.add(head, EL, "script", {}, SLIM)
    b.add(sc, TEXT, "", "SCRIPT_PLACEHOLDER", SLIM)
    for _ in range(b.rng.randint(2, 7) if s.kind == "api" else 0):
        b.el(head, "link", {"rel": "preload", "as": "font", "type": "font/woff2",
                            "href": f"{static}{b.ident()}-{b.rng.getrandbits(32):08x}.woff2"})  # fmt: skip
    for idx in (0, 1):
        b.ws(head, 2, SLIM)
        href = f"{static}{('main', 'style')[idx]}-{b.rng.getrandbits(32):08x}.css"
        b.add(head, CSSLINK, "link", ({"rel": "stylesheet", "href": href}, idx), CSS)
    if s.kind == "guide" and b.rng.random() < 0.2:
        css = _css(b.rng, profile.STYLE_ELEMENT_CSS_CHARS)
        b.el(head, "style", {"_cssText": css})
    b.el(head, "link", {"rel": "icon", "type": "image/svg+xml", "href": f"{static}favicon.svg"})
    for _ in range(b.rng.randint(1, 4)):
        b.add(head, EL, "script", {"src": f"{static}{b.ident()}.js", "defer": ""}, SLIM)
    ns = b.el(head, "noscript")
    b.text(ns, f'<link rel="stylesheet" href="{static}noscript.css">')


def _api_body(b: _Builder, s: Site, body: int, target: int, base: str) -> None:
    a = b.el(body, "a", {"class": "skip-main-content", "href": "#main-content"}, role="clickables")
    b.text(a, "Skip to main content")
    b.add(
        body,
        COMMENT,
        "",
        '[if lte IE 11]><div class="warning">Unsupported browser</div><![endif]',
        SLIM,
    )
    top = b.el(body, "doc-topbar", {}, HOST)
    for name in ("settings-menu", "help-menu", "sidebar-menu-toggle"):
        d = b.el(top, "div", {"class": name}, role="toggles")
        x = b.el(d, "a", {"href": "#"}, role="clickables")
        b.text(x, name.split("-")[0])
    for name in ("sidebar-menu-toggle", "settings-menu", "help-menu"):
        b.add(top, SHADOW_TEXT, "", "\n        ")
        b.add(top, SHADOW_EL, "slot", {"name": name})
    nav = b.el(body, "nav", {"class": "sidebar"})
    h2 = b.el(nav, "h2")
    x = b.el(h2, "a", {"href": f"{base}index.html"}, role="clickables")
    b.text(x, s.name)
    ul = b.el(nav, "ul", {"class": "block"})
    for _ in range(max(4, min(400, target // 10))):
        b.ws(ul, 4)
        li = b.el(ul, "li")
        x = b.el(
            li, "a", {"href": f"{base}{b.ident()}.html", "title": b.ident()}, role="clickables"
        )
        b.text(x, b.ident())
    main = b.el(body, "main")
    form = b.el(main, "form", {"class": "search-form"})
    b.el(form, "input", {"class": "search-input", "name": "search", "type": "search",
                         "placeholder": "Type ‘S’ or ‘/’ to search"}, role="inputs")  # fmt: skip
    btn = b.el(form, "button", {"id": "search-button", "title": "search"}, role="clickables")
    b.svg_icon(btn)
    sec = b.el(main, "section", {"id": "main-content", "class": "content"}, role="containers")
    head = b.el(sec, "div", {"class": "main-heading"})
    h1 = b.el(head, "h1")
    b.text(h1, b.ident(), MASK)
    pre = b.el(sec, "pre", {"class": "rust item-decl"})
    code = b.el(pre, "code")
    b.text(code, "pub fn ")
    x = b.el(code, "a", {"class": "fn", "href": f"{base}fn.{b.ident()}.html"}, role="clickables")
    b.text(x, b.ident())
    b.text(code, "(self) -> usize")
    while len(b.flat) < target:
        b.ws(sec, 3)
        det = b.el(sec, "details", {"class": "toggle top-doc", "open": ""}, role="toggles")
        summ = b.el(det, "summary", {"class": "hideme"}, role="clickables")
        sp = b.el(summ, "span")
        b.text(sp, "Expand description")
        doc = b.el(det, "div", {"class": "docblock"})
        h = b.el(doc, "h2", {"id": b.ident()})
        b.text(h, b.words(1, 3), MASK)
        for _ in range(b.rng.randint(1, 4)):
            b.paragraph(doc, base, 0)
        if b.rng.random() < 0.6:
            b.code_block(doc, 0)
        if b.rng.random() < 0.5:
            lst = b.el(sec, "div", {"id": "implementations-list"}, role="containers")
            for _ in range(b.rng.randint(2, 12)):
                w = b.rng.choice(s.widgets["impl_item"]).flat
                first = len(b.flat)
                for p, kind, name, value, flags in w:
                    b.add(lst if p < 0 else first + p, kind, name, value, flags)


def _guide_body(b: _Builder, s: Site, body: int, target: int, base: str) -> None:
    b.ws(body, 1)
    header = b.el(body, "header", {"id": "header"})
    b.ws(header, 2)
    b.el(header, "input", {"type": "checkbox", "id": "theme-toggle"}, role="checkboxes")
    btn = b.el(
        header, "button", {"class": "theme-toggle", "aria-expanded": "false"}, role="toggles"
    )
    b.svg_icon(btn)
    b.ws(body, 1)
    toc = b.el(body, "details", {"id": "toc", "open": ""}, role="toggles")
    summ = b.el(toc, "summary", {}, role="clickables")
    b.text(summ, "Table of contents")
    ul = b.el(toc, "ul")
    for _ in range(max(3, min(120, target // 25))):
        b.ws(ul, 3)
        li = b.el(ul, "li")
        x = b.el(li, "a", {"href": f"#{b.ident()}"}, role="clickables")
        b.text(x, b.words(1, 4))
    b.ws(body, 1)
    main = b.el(body, "div", {"id": "apicontent"}, role="containers")
    while len(b.flat) < target:
        b.ws(main, 2)
        h = b.el(main, "h3" if b.rng.random() < 0.6 else "h2")
        sp = b.el(h, "span")
        b.text(sp, b.words(1, 5), MASK)
        x = b.el(
            h, "a", {"class": "mark", "href": f"#{b.ident()}", "id": b.ident()}, role="clickables"
        )
        b.text(x, "#")
        for _ in range(b.rng.randint(1, 3)):
            b.paragraph(main, base, 2)
        r = b.rng.random()
        if r < 0.35:
            b.code_block(main, 2)
        elif r < 0.6:
            b.ws(main, 2)
            lst = b.el(main, "ul")
            for _ in range(b.rng.randint(2, 8)):
                b.ws(lst, 3)
                li = b.el(lst, "li")
                c = b.el(li, "code")
                b.text(c, b.ident())
                b.text(li, " " + b.short_text(), MASK)
                b.ws(li, 4)
        elif r < 0.75:
            t = b.el(main, "table")
            for _ in range(b.rng.randint(2, 6)):
                b.ws(t, 3)
                tr = b.el(t, "tr")
                for _ in range(3):
                    b.ws(tr, 4)
                    td = b.el(tr, "td")
                    b.text(td, b.short_text())


@lru_cache(maxsize=512)
def page(seed: int, site_number: int, page_number: int) -> Page:
    """Page ``page_number`` of a site, as a flat pre-order template (memoized, pure)."""
    s = site(seed, site_number)
    rng = random.Random(derive_seed(seed, site_number, page_number, 0x9A6E))
    b = _Builder(rng, s.kind)
    target = int(profile.quantile_draw(rng, profile.SNAPSHOT_NODES_BY_KIND_Q[s.kind]))
    section = "_".join(rng.choices(IDENT_PARTS, k=2))
    path = f"/{s.name}/{section}/{'_'.join(rng.choices(IDENT_PARTS, k=2))}.html"
    doc = b.add(-1, DOC, "", None)
    b.add(doc, DOCTYPE, "html", None)
    html = b.el(
        doc, "html", {"lang": "en", "data-theme": "light"} if s.kind == "api" else {"lang": "en"}
    )
    _head(b, s, html, f"{path.rsplit('/', 1)[-1][:-5]} in {s.name} - Docs")
    body = b.el(html, "body", {"class": f"{s.kind} {rng.choice(CLASS_WORDS)}"}, role="containers")
    if s.kind == "api":
        _api_body(b, s, body, target, f"{s.origin}/{s.name}/{section}/")
    else:
        _guide_body(b, s, body, target, f"{s.origin}/{s.name}/")
    nodes = []
    for parent, kind, name, value, flags in b.flat:
        if kind == CSSLINK:  # share the site's (large) stylesheet bytes between its pages
            alt, _, mid, tail = _pieces(kind, name, value, flags, ("", ""), inline_css=False)
            nodes.append((parent, flags, s.css_open[value[1]], alt, mid, tail))
        else:
            nodes.append((parent, flags, *_pieces(kind, name, value, flags, ("", ""))))
    return Page(site=s, path=path, nodes=tuple(nodes), height=max(800, len(nodes) * 6),
                **{k: tuple(v) for k, v in b.roles.items()})  # fmt: skip


_BEFORE_ID = {SVG: {"isSVG": True}, CUSTOM: {"isCustom": True}, HOST: {"isCustom": True}}
_AFTER_ID = {
    HOST: {"isShadowHost": True},
    SHADOW_EL: {"isShadow": True},
    SHADOW_TEXT: {"isShadow": True},
}


def _node(
    kind: int, name: str, value, flags: int, nid: int, mask: bool, inline_css: bool, css
) -> dict:
    """One serialized node (children left empty), keys in the order rrweb writes them."""
    if kind == DOC:
        return {"type": 0, "childNodes": [], "id": nid}
    if kind == DOCTYPE:
        return {"type": 1, "name": name, "publicId": "", "systemId": "", "id": nid}
    if kind in (TEXT, SHADOW_TEXT, COMMENT):
        text = "*" * len(value) if mask and flags & MASK else value
        node = {"type": 5 if kind == COMMENT else 3, "textContent": text, "id": nid}
    else:
        if kind == CSSLINK:
            attrs = {"_cssText": css[value[1]]} if inline_css else value[0].copy()
        else:
            attrs = value.copy()
        node = {"type": 2, "tagName": name, "attributes": attrs, "childNodes": []}
        node.update(_BEFORE_ID.get(kind, {}))
        node["id"] = nid
    node.update(_AFTER_ID.get(kind, {}))
    return node


_ELEMENT_MID = b'],"id":'
_TAIL = b"}"


def _pieces(kind: int, name: str, value, flags: int, css, inline_css: bool = True) -> tuple:
    """A template node as bytes: (open, alt_open, mid, tail) with the id between, children
    (comma-separated) between open and mid; mid is None for a leaf. alt_open is the masked
    text, or the <link> without inlined CSS, when the node has one."""
    if kind == EL:  # the common cases, without a dict and a split
        open_ = b'{"type":2,"tagName":%b,"attributes":%b,"childNodes":[' % (
            orjson.dumps(name),
            orjson.dumps(value),
        )
        return open_, None, _ELEMENT_MID, _TAIL
    if kind == TEXT:
        alt = b'{"type":3,"textContent":"%b","id":' % (b"*" * len(value)) if flags & MASK else None
        return b'{"type":3,"textContent":%b,"id":' % orjson.dumps(value), alt, None, _TAIL
    sentinel = b"%d" % _SENTINEL
    blob = orjson.dumps(_node(kind, name, value, flags, _SENTINEL, False, inline_css, css))
    head, tail = blob.rsplit(sentinel, 1)
    alt = None
    if kind == TEXT and flags & MASK:
        alt = orjson.dumps(_node(kind, name, value, flags, _SENTINEL, True, True, css)).rsplit(
            sentinel, 1
        )[0]
    if b'"childNodes":[]' not in head:
        return head, alt, None, tail
    open_, mid = head.rsplit(b'"childNodes":[]', 1)
    return open_ + b'"childNodes":[', alt, b"]" + mid, tail


def serialize(
    p: Page, slim: bool = False, mask: bool = False, inline_css: bool = True
) -> tuple[bytes, list[int] | None, int]:
    """A snapshot of ``p`` as rrweb JSON (ids from 1), the id of each template position (None
    when that is position + 1) and the largest id. Positions slimDOM drops get id 0, like
    rrweb, which gives ignored nodes no id.

    WHY bytes from pre-serialized pieces: joining bytes is several times faster than building
    a dict per node and dumping the tree.
    """
    out: list[bytes] = []
    put = out.append
    stack: list[list] = []  # open containers: [position, mid, tail, id, has_children]
    alt_bits = (MASK if mask else 0) | (0 if inline_css else CSS)
    ids = [0] * len(p.nodes) if slim else None
    nid = 0
    for pos, (parent, flags, open_, alt, mid, tail) in enumerate(p.nodes):
        if ids is not None and (flags & SLIM or (parent >= 0 and not ids[parent])):
            continue
        while stack and stack[-1][0] != parent:
            _, m, t, i, _ = stack.pop()
            put(m)
            put(b"%d" % i)
            put(t)
        if stack:
            if stack[-1][4]:
                put(b",")
            else:
                stack[-1][4] = True
        nid += 1
        if ids is not None:
            ids[pos] = nid
        put(alt if flags & alt_bits else open_)
        if mid is None:
            put(b"%d" % nid)
            put(tail)
        else:
            stack.append([pos, mid, tail, nid, False])
    while stack:
        _, m, t, i, _ = stack.pop()
        put(m)
        put(b"%d" % i)
        put(t)
    return b"".join(out), ids, nid


@lru_cache(maxsize=1024)  # ~140 MB at most: the pages x the common option presets
def snapshot(
    seed: int, site_number: int, page_number: int, slim: bool, mask: bool, inline_css: bool
) -> tuple[bytes, tuple[int, ...] | None, int]:
    """:func:`serialize` of a page, memoized.

    WHY: a page recorded with the same options serializes identically (ids restart at 1 on
    every snapshot), so each variant is made once per process, not once per session.
    """
    node, ids, max_id = serialize(page(seed, site_number, page_number), slim, mask, inline_css)
    return node, (tuple(ids) if ids is not None else None), max_id
