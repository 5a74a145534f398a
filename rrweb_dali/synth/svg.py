"""SVG-heavy synthetic sessions: dashboards whose charts and force graphs animate by script.

WHY: the recordings behind :mod:`rrweb_dali.synth.profile` are documentation pages, but a real
user-study session of a D3 force graph (every animation frame one mutation rewriting ~200 path
``d`` attributes) spent 99 % of its tokens on geometry. These sessions put that shape into the
synthetic corpus, so the tokenizer's budget (:mod:`rrweb_dali.tokenizer.budget`) is measured at
scale. Two page kinds, half each:

``force``
    an ``<svg>`` of ``<path>`` links and ``<g transform>`` nodes (circle and label); the
    simulation runs one mutation per animation frame (16-17 ms apart) rewriting every link's
    ``d`` and every node's ``transform`` with unrounded coordinates, as D3 writes them; a drag
    of a node restarts it. 20-80 nodes, 1.3 links per node, up to ~190 attributes a frame.
``chart``
    axes (``<g class="tick" transform>``), bars (``<rect>`` with script-set decimals) and a line
    series (a ``<path>`` of 60-300 points); hovering and clicking starts transitions of
    12-20 frames that move the bars, the line and the ticks.

Which sessions: :func:`is_svg_session` draws from its own stream of (seed, index), with
probability ``profile.SVG_SESSION_PROBABILITY``; every other session is generated exactly as
before, byte for byte. Ids are numbered in pre-order from 1, like rrweb's snapshots.
"""

from __future__ import annotations

import random
from itertools import accumulate

from rrweb_dali.synth import dom, profile

_VIEWPORTS = tuple(profile.VIEWPORT_WEIGHTS)
_VIEWPORT_CUM = tuple(accumulate(profile.VIEWPORT_WEIGHTS.values()))
_FRAME_GAPS = (16, 17, 16, 17, 16, 33)  # requestAnimationFrame at 60 Hz, a dropped frame at times
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def is_svg_session(seed: int, index: int) -> bool:
    """Whether session ``index`` of corpus ``seed`` is an SVG-heavy one (its own cheap stream)."""
    draw = dom.derive_seed(seed, index, 0x5F6) % 1_000_000
    return draw < profile.SVG_SESSION_PROBABILITY * 1_000_000


def svg_kind(seed: int, index: int) -> str:
    """``"force"`` or ``"chart"``: the page of an SVG-heavy session."""
    return ("force", "chart")[dom.derive_seed(seed, index, 0x5F7) % 2]


def _num(x: float) -> str:
    """A coordinate as a script writes it: JavaScript's shortest round-trip form."""
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


class _Page:
    """Builds one page's nodes in pre-order, numbering ids from 1."""

    def __init__(self) -> None:
        self.next_id = 1

    def take(self) -> int:
        nid = self.next_id
        self.next_id += 1
        return nid

    def el(self, tag: str, attrs: dict, children_fn=None, svg: bool = False) -> dict:
        node = {"type": 2, "tagName": tag, "attributes": attrs, "childNodes": [], "id": self.take()}
        if svg:
            node["isSVG"] = True
        if children_fn is not None:
            node["childNodes"] = children_fn()
        return node

    def text(self, value: str) -> dict:
        return {"type": 3, "textContent": value, "id": self.take()}


class _Session:
    def __init__(self, seed: int, index: int) -> None:
        self.rng = random.Random(dom.derive_seed(seed, index, 0x5F8))
        self.events: list[dict] = []
        self.t = self.rng.randint(*profile.FIRST_TIMESTAMP_RANGE)
        self.width, self.height = self.rng.choices(_VIEWPORTS, cum_weights=_VIEWPORT_CUM)[0]
        self.page = _Page()
        self.px, self.py = self.width // 2, self.height // 2

    def emit(self, etype: int, data: dict) -> None:
        self.events.append({"type": etype, "data": data, "timestamp": self.t})

    def gap(self, table: tuple[float, ...]) -> None:
        self.t += round(profile.quantile_draw(self.rng, table))

    def frame(self, attributes: list[dict]) -> None:
        self.t += self.rng.choice(_FRAME_GAPS)
        self.emit(
            3, {"source": 0, "texts": [], "attributes": attributes, "removes": [], "adds": []}
        )

    def mousemove(self, target: int) -> None:
        rng = self.rng
        positions = []
        for off in sorted(rng.randint(-480, 0) for _ in range(rng.randint(1, 8))):
            self.px = min(self.width - 1, max(0, self.px + rng.randint(-120, 120)))
            self.py = min(self.height - 1, max(0, self.py + rng.randint(-90, 90)))
            positions.append({"x": self.px, "y": self.py, "id": target, "timeOffset": off})
        self.emit(3, {"source": 1, "positions": positions})

    def click(self, target: int) -> None:
        x, y = self.px + self.rng.random(), self.py + self.rng.random()
        for kind in (1, 0, 2):  # MouseDown, MouseUp, Click
            self.emit(3, {"source": 2, "type": kind, "id": target, "x": x, "y": y})
            self.t += self.rng.randint(0, 3)

    def open(self, kind: str, build) -> None:
        """Meta, then the FullSnapshot of the page ``build(page)`` makes (ids in pre-order)."""
        self.emit(4, {"href": f"https://dash.example.com/{kind}", "width": self.width,
                      "height": self.height})  # fmt: skip
        self.gap(profile.META_TO_SNAPSHOT_GAP_Q)
        page = self.page
        doc_id = page.take()
        doctype = {"type": 1, "name": "html", "publicId": "", "systemId": "", "id": page.take()}
        html = page.el("html", {"lang": "en"}, lambda: build(page))
        doc = {"type": 0, "childNodes": [doctype, html], "id": doc_id}
        self.emit(2, {"node": doc, "initialOffset": {"left": 0, "top": 0}})


def _head(page: _Page, title: str) -> dict:
    return page.el(
        "head",
        {},
        lambda: [
            page.el("meta", {"charset": "utf-8"}),
            page.el("title", {}, lambda: [page.text(title)]),
            page.el(
                "style",
                {},
                lambda: [
                    {
                        "type": 3,
                        "textContent": ".links path{stroke:#999;stroke-opacity:.6}"
                        ".nodes circle{stroke:#fff;stroke-width:1.5px}",
                        "isStyle": True,
                        "id": page.take(),
                    }
                ],
            ),
        ],
    )


def _force_session(s: _Session) -> None:
    rng = s.rng
    n_nodes = rng.randint(20, 80)
    n_links = round(n_nodes * 1.3)
    w, h = 960, 600
    pos = [[rng.uniform(0, w), rng.uniform(0, h)] for _ in range(n_nodes)]
    home = [[rng.uniform(80, w - 80), rng.uniform(60, h - 60)] for _ in range(n_nodes)]
    links = [(rng.randrange(n_nodes), rng.randrange(n_nodes)) for _ in range(n_links)]
    curved = rng.random() < 0.5  # arcs (d3 "curved links") or straight lines
    link_ids: list[int] = []
    node_ids: list[int] = []
    svg_ids: list[int] = []

    def link_d(a: int, b: int) -> str:
        (x1, y1), (x2, y2) = pos[a], pos[b]
        if curved:
            r = ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5
            return f"M{_num(x1)},{_num(y1)}A{_num(r)},{_num(r)} 0 0,1 {_num(x2)},{_num(y2)}"
        return f"M{_num(x1)},{_num(y1)}L{_num(x2)},{_num(y2)}"

    def translate(i: int) -> str:
        return f"translate({_num(pos[i][0])},{_num(pos[i][1])})"

    def svg_children(page: _Page) -> list[dict]:
        def link_nodes() -> list[dict]:
            out = []
            for a, b in links:
                node = page.el("path", {"d": link_d(a, b), "stroke-width": "1.5"}, svg=True)
                link_ids.append(node["id"])
                out.append(node)
            return out

        def node_nodes() -> list[dict]:
            out = []
            for i in range(n_nodes):

                def parts(i=i) -> list[dict]:
                    return [
                        page.el("circle", {"r": "5", "fill": rng.choice(_COLORS)}, svg=True),
                        page.el(
                            "text",
                            {"dx": "8", "dy": ".35em"},
                            lambda: [page.text(f"n{i}")],
                            svg=True,
                        ),
                    ]

                node = page.el("g", {"transform": translate(i)}, parts, svg=True)
                node_ids.append(node["id"])
                out.append(node)
            return out

        return [
            page.el("g", {"class": "links"}, link_nodes, svg=True),
            page.el("g", {"class": "nodes"}, node_nodes, svg=True),
        ]

    def svg_root(page: _Page) -> dict:
        attrs = {"viewBox": f"0 0 {w} {h}", "width": str(w), "height": str(h)}
        svg_ids.append(page.next_id)
        return page.el("svg", attrs, lambda: svg_children(page), svg=True)

    def body(page: _Page) -> list[dict]:
        return [
            _head(page, "Force graph"),
            page.el(
                "body",
                {},
                lambda: [
                    page.el("h1", {}, lambda: [page.text("Co-occurrence network")]),
                    svg_root(page),
                ],
            ),
        ]

    s.open("force", body)
    svg_id = svg_ids[0]

    def run(frames: int, alpha: float) -> None:
        for _ in range(frames):
            for i in range(n_nodes):
                for k in (0, 1):
                    pos[i][k] += (home[i][k] - pos[i][k]) * alpha + rng.uniform(-2, 2) * alpha
            alpha *= 0.985
            attrs = [{"id": link_ids[j], "attributes": {"d": link_d(a, b)}}
                     for j, (a, b) in enumerate(links)]  # fmt: skip
            attrs += [{"id": node_ids[i], "attributes": {"transform": translate(i)}}
                      for i in range(n_nodes)]  # fmt: skip
            s.frame(attrs)

    s.gap(profile.SNAPSHOT_TO_MUTATION_GAP_Q)
    run(rng.randint(60, 160), 0.3)
    for _ in range(rng.randint(1, 2)):  # drag a node: the simulation reheats
        s.gap(profile.OTHER_GAP_Q)
        s.mousemove(svg_id)
        grabbed = rng.randrange(n_nodes)
        s.click(node_ids[grabbed])
        home[grabbed] = [rng.uniform(80, w - 80), rng.uniform(60, h - 60)]
        run(rng.randint(20, 50), 0.2)


def _chart_session(s: _Session) -> None:
    rng = s.rng
    n_bars = rng.randint(8, 30)
    n_points = rng.randint(60, 300)
    w, h = 900, 400
    bar_w = w / n_bars
    values = [rng.uniform(0.1, 1.0) for _ in range(n_bars)]
    series = [rng.uniform(0.2, 0.9) for _ in range(n_points)]
    bar_ids: list[int] = []
    tick_ids: list[int] = []
    line_id = [0]

    def bar_attrs(i: int) -> dict:
        y = h * (1 - values[i])
        return {"y": _num(y), "height": _num(h - y)}

    def line_d() -> str:
        step = w / (n_points - 1)
        return "M" + "L".join(f"{_num(i * step)},{_num(h * (1 - v))}" for i, v in enumerate(series))

    def tick_transform(i: int, scale: float) -> str:
        return f"translate({_num((i + 0.5) * bar_w * scale)},0)"

    def svg_children(page: _Page) -> list[dict]:
        def ticks() -> list[dict]:
            out = [page.el("path", {"class": "domain", "d": f"M0.5,6V0.5H{w}.5V6"}, svg=True)]
            for i in range(n_bars):

                def parts(i=i) -> list[dict]:
                    return [
                        page.el("line", {"y2": "6"}, svg=True),
                        page.el(
                            "text",
                            {"y": "9", "dy": "0.71em"},
                            lambda: [page.text(f"Q{i % 4 + 1}")],
                            svg=True,
                        ),
                    ]

                node = page.el("g", {"class": "tick", "opacity": "1",
                                     "transform": tick_transform(i, 1.0)}, parts, svg=True)  # fmt: skip
                tick_ids.append(node["id"])
                out.append(node)
            return out

        def bars() -> list[dict]:
            out = []
            for i in range(n_bars):
                attrs = {"x": _num(i * bar_w + 1), "width": _num(bar_w - 2), **bar_attrs(i),
                         "fill": _COLORS[i % len(_COLORS)]}  # fmt: skip
                node = page.el("rect", attrs, svg=True)
                bar_ids.append(node["id"])
                out.append(node)
            return out

        def line() -> list[dict]:
            node = page.el("path", {"d": line_d(), "fill": "none", "stroke": "steelblue",
                                    "stroke-width": "1.5"}, svg=True)  # fmt: skip
            line_id[0] = node["id"]
            return [node]

        return [
            page.el("g", {"class": "x-axis", "transform": f"translate(0,{h})"}, ticks, svg=True),
            page.el("g", {"class": "bars"}, bars, svg=True),
            page.el("g", {"class": "series"}, line, svg=True),
        ]

    def body(page: _Page) -> list[dict]:
        return [
            _head(page, "Quarterly dashboard"),
            page.el(
                "body",
                {},
                lambda: [
                    page.el("h1", {}, lambda: [page.text("Revenue by quarter")]),
                    page.el(
                        "svg",
                        {"viewBox": f"0 0 {w} {h + 40}", "width": str(w), "height": str(h + 40)},
                        lambda: svg_children(page),
                        svg=True,
                    ),
                ],
            ),
        ]

    s.open("chart", body)
    for _ in range(rng.randint(2, 6)):  # hover or click, then a transition
        s.gap(profile.OTHER_GAP_Q)
        s.mousemove(bar_ids[0])
        if rng.random() < 0.5:
            s.click(rng.choice(bar_ids))
        old_values, old_series = values[:], series[:]
        new_values = [rng.uniform(0.1, 1.0) for _ in range(n_bars)]
        new_series = [min(0.95, max(0.05, v + rng.uniform(-0.1, 0.1))) for v in series]
        scale_to = rng.uniform(0.9, 1.1)
        frames = rng.randint(12, 20)
        for f in range(1, frames + 1):
            u = f / frames
            e = u * u * (3 - 2 * u)  # d3.easeCubic-like
            values[:] = [a + (b - a) * e for a, b in zip(old_values, new_values, strict=True)]
            series[:] = [a + (b - a) * e for a, b in zip(old_series, new_series, strict=True)]
            scale = 1 + (scale_to - 1) * e
            attrs = [{"id": bar_ids[i], "attributes": bar_attrs(i)} for i in range(n_bars)]
            attrs.append({"id": line_id[0], "attributes": {"d": line_d()}})
            attrs += [{"id": tick_ids[i], "attributes": {"transform": tick_transform(i, scale)}}
                      for i in range(n_bars)]  # fmt: skip
            s.frame(attrs)


def svg_session_events(seed: int, index: int) -> list[dict]:
    """The events of SVG-heavy session ``index`` of corpus ``seed`` (plain dicts)."""
    s = _Session(seed, index)
    if svg_kind(seed, index) == "force":
        _force_session(s)
    else:
        _chart_session(s)
    return s.events
