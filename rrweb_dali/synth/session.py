"""One synthetic rrweb session: Meta, FullSnapshot, then what a visitor's actions cause.

WHY an action model rather than sampling events independently: real recordings are bursts (a
click is MouseDown, Focus, MouseUp and Click within 2 ms, then a mutation; typing is one Input
per key, then search results rendered one mutation per row). Generating the actions the
recorder's script performed, for a session length drawn from the real ones, with the gaps
measured between each pair of event kinds (:mod:`profile`), reproduces the event mix, the gap
shape and node ids that refer to nodes of the page.
"""

from __future__ import annotations

import random
from itertools import accumulate

import orjson

from rrweb_dali.synth import dom, profile
from rrweb_dali.synth.svg import is_svg_session, svg_session_events

_ACTIONS = tuple(profile.ACTION_WEIGHTS)
_ACTION_CUM = tuple(accumulate(profile.ACTION_WEIGHTS.values()))
_VIEWPORTS = tuple(profile.VIEWPORT_WEIGHTS)
_VIEWPORT_CUM = tuple(accumulate(profile.VIEWPORT_WEIGHTS.values()))
_MUT_ATTR_NAMES = tuple(profile.MUTATION_ATTRIBUTE_NAMES)
_MUT_ATTR_CUM = tuple(accumulate(profile.MUTATION_ATTRIBUTE_NAMES.values()))
_CUSTOM_TAGS = tuple(profile.CUSTOM_TAGS)
_PRESET_WEIGHTS = {
    "slimDOM": profile.SLIM_DOM_PROBABILITY,
    "maskText": profile.MASK_TEXT_PROBABILITY,
    "maskAllInputs": profile.MASK_ALL_INPUTS_PROBABILITY,
    "inlineStylesheetOff": profile.INLINE_STYLESHEET_OFF_PROBABILITY,
}
_PRESETS = (*_PRESET_WEIGHTS, "defaults")
_PRESET_CUM = tuple(accumulate((*_PRESET_WEIGHTS.values(), 1 - sum(_PRESET_WEIGHTS.values()))))
_KEYS = "abcdefghijklmnopqrstuvwxyz_:"
_MAX_NAVIGATIONS = 3  # the recordings hold at most 4 pages


def session_site(seed: int, index: int) -> int:
    """The site a session visits: its own cheap stream, so a writer can group sessions by site
    (one process then builds that site's page templates) without generating them."""
    return dom.derive_seed(seed, index, 0x517E) % dom.SITES_PER_SEED


class _Recorder:
    """The state of one session being generated: clock, page, ids, record options."""

    def __init__(self, seed: int, index: int) -> None:
        rng = self.rng = random.Random(dom.derive_seed(seed, index, 0x5E55))
        self.seed = seed
        self.events: list[dict] = []
        self.t = rng.randint(*profile.FIRST_TIMESTAMP_RANGE)
        self.site_number = session_site(seed, index)
        self.width, self.height = rng.choices(_VIEWPORTS, cum_weights=_VIEWPORT_CUM)[0]
        self.px, self.py = rng.randrange(self.width), rng.randrange(self.height)
        # record options: like the recordings, a session uses one preset (or the defaults)
        preset = rng.choices(_PRESETS, cum_weights=_PRESET_CUM)[0]
        self.slim = preset == "slimDOM"
        self.mask_text = preset == "maskText"
        self.mask_inputs = preset == "maskAllInputs"
        self.inline_css = preset != "inlineStylesheetOff"
        self.user_triggered = rng.random() < profile.USER_TRIGGERED_INPUT_PROBABILITY
        self.updown = rng.random() > 0.1  # sampling.mouseInteraction may drop MouseDown/Up
        self.checkout_ms = (
            rng.randint(3000, 9000) if rng.random() < profile.CHECKOUT_SESSION_PROBABILITY else 0
        )
        self.theme = rng.choices((b"light", b"dark", b"ayu"), cum_weights=(6, 9, 10))[0]
        self.focused = 0
        self.checked = False
        self.burst_budget = profile.SEARCH_BURST_MUTATIONS_Q[-1]  # the real maximum per session
        self.huge_done = False

    # --- emitting ---
    def emit(self, etype: int, data: dict) -> None:
        self.events.append({"type": etype, "data": data, "timestamp": self.t})

    def inc(self, data: dict) -> None:
        self.events.append({"type": 3, "data": data, "timestamp": self.t})

    def gap(self, table: tuple[float, ...]) -> None:
        self.t += round(profile.quantile_draw(self.rng, table))

    # --- pages ---
    def open_page(self, page_number: int, checkout: bool = False) -> None:
        rng = self.rng
        self.page = dom.page(self.seed, self.site_number, page_number)
        self.page_number = page_number
        site = self.page.site
        self.emit(
            4, {"href": site.origin + self.page.path, "width": self.width, "height": self.height}
        )
        self.gap(profile.META_TO_SNAPSHOT_GAP_Q)
        node, self.ids, max_id = dom.snapshot(
            self.seed, self.site_number, page_number, self.slim, self.mask_text, self.inline_css
        )
        if self.theme != b"light" and site.kind == "api":  # rustdoc's theme setting
            node = node.replace(b'"data-theme":"light"', b'"data-theme":"%s"' % self.theme, 1)
        self.next_id = max_id + 1
        self.added: list[tuple[int, int]] = []  # (parentId, id) of added widget roots
        self.added_texts: list[int] = []
        self.focused = 0
        self.snapshot_t = self.t
        self.scroll_y = 0
        if rng.random() < profile.INITIAL_OFFSET_NONZERO_PROBABILITY:
            self.scroll_y = rng.randint(1, self.page.height)
        self.emit(
            2, {"node": orjson.Fragment(node), "initialOffset": {"left": 0, "top": self.scroll_y}}
        )
        if checkout:
            return
        self.gap(profile.SNAPSHOT_TO_MUTATION_GAP_Q)
        for i in range(round(profile.quantile_draw(rng, profile.LOAD_MUTATIONS_Q))):
            if i:
                self.gap(profile.MUTATION_TO_MUTATION_GAP_Q)
            if i == 0 and site.kind == "api":
                self.mutate_add("toolbar", removes=rng.random() < 0.3)
            else:
                self.mutate_add(rng.choice(("tooltip", "popover", "search_row")))
        huge = (
            site.kind == "api" and not self.huge_done
        )  # one per session at most, like the recordings
        if huge and rng.random() < profile.HUGE_INSERT_PAGE_PROBABILITY:
            self.huge_done = True
            self.gap(profile.MUTATION_TO_MUTATION_GAP_Q)
            self.huge_insert()

    def pick(self, role: str) -> int:
        """The id of a random node with ``role`` on the page (1 = the document, if none)."""
        positions = getattr(self.page, role)
        if not positions:
            return 1
        pos = self.rng.choice(positions)
        return (self.ids[pos] or 1) if self.ids is not None else pos + 1

    # --- mutations ---
    def mutate_add(self, widget: str, removes: bool = False, attributes: bool = False) -> None:
        rng = self.rng
        w = rng.choice(self.page.site.widgets[widget])
        parent = self.pick("containers")
        first = self.next_id
        self.next_id += w.size
        rem = []
        if removes and self.added:
            pid, nid = self.added.pop(rng.randrange(len(self.added)))
            rem.append({"parentId": pid, "id": nid})
        self.added.append((parent, first))
        if len(self.added_texts) < 64:
            self.added_texts.extend(first + k for k in w.text_offsets[:4])
        texts = []
        if self.added_texts and rng.random() < 0.03:
            texts.append({"id": rng.choice(self.added_texts), "value": rng.choice(dom.WORDS)})
        attrs = [self.attribute_change()] if attributes else []
        adds = orjson.Fragment(b"[" + w.adds_bytes(parent, first) + b"]")
        self.inc({"source": 0, "texts": texts, "attributes": attrs, "removes": rem, "adds": adds})

    def attribute_change(self) -> dict:
        rng = self.rng
        name = rng.choices(_MUT_ATTR_NAMES, cum_weights=_MUT_ATTR_CUM)[0]
        value: str | None
        if rng.random() < profile.MUTATION_ATTRIBUTE_NULL_FRACTION:
            value = None
        elif name == "class":
            value = rng.choice(dom.CLASS_WORDS) + rng.choice(
                ("", " expanded", " hidden", " active")
            )
        elif name == "href":
            value = f"{self.page.site.origin}/{rng.choice(dom.IDENT_PARTS)}.html"
        elif name == "aria-expanded":
            value = rng.choice(("true", "false"))
        elif name == "style":
            value = f"width: {rng.randint(100, 400)}px;"
        else:
            value = ""
        return {"id": self.pick("toggles"), "attributes": {name: value}}

    def mutate_attributes(self) -> None:
        attrs = [self.attribute_change() for _ in range(self.rng.choice((1, 1, 1, 2, 2, 3)))]
        self.inc({"source": 0, "texts": [], "attributes": attrs, "removes": [], "adds": []})

    def huge_insert(self) -> None:
        """A type-alias page inserting thousands of nodes in one mutation (the real 1.3 MB ones)."""
        w = self.rng.choice(self.page.site.widgets["impl_item"])
        parent = self.pick("containers")
        parts = []
        for _ in range(
            max(1, round(profile.quantile_draw(self.rng, profile.HUGE_INSERT_ADDS_Q)) // w.size)
        ):
            parts.append(w.adds_bytes(parent, self.next_id))
            self.next_id += w.size
        adds = orjson.Fragment(b"[" + b",".join(parts) + b"]")
        self.inc({"source": 0, "texts": [], "attributes": [], "removes": [], "adds": adds})

    # --- pointer and keyboard ---
    def step(self) -> tuple[int, int]:
        """Move the pointer a little: recorded positions form a path, not random dots."""
        r = self.rng
        self.px = min(self.width - 1, max(0, self.px + r.randint(-160, 160)))
        self.py = min(self.height - 1, max(0, self.py + r.randint(-120, 120)))
        return self.px, self.py

    def xy(self) -> tuple[float, float]:
        """The pointer position as rrweb writes a click's: a float32 value printed as a double."""
        r = self.rng
        return self.px + r.getrandbits(16) / 65536, self.py + r.getrandbits(16) / 65536

    def mousemove(self, source: int = 1) -> None:
        """One flush of rrweb's mousemove buffer: positions of the last ~500 ms."""
        rng = self.rng
        n = round(profile.quantile_draw(rng, profile.MOUSEMOVE_POSITIONS_Q))
        offsets = sorted(
            round(profile.quantile_draw(rng, profile.MOUSEMOVE_TIME_OFFSET_Q)) for _ in range(n)
        )
        positions = []
        for off in offsets:
            x, y = self.step()
            positions.append({"x": x, "y": y, "id": self.pick("clickables"), "timeOffset": off})
        self.inc({"source": source, "positions": positions})

    def mousemoves(self, count: int) -> None:
        for i in range(count):
            if i:
                self.gap(profile.MOUSEMOVE_TO_MOUSEMOVE_GAP_Q)
            self.mousemove()

    def click(self, target: int, focus: bool = True) -> None:
        """MouseDown, (Blur of the focused node,) Focus, MouseUp, Click: rrweb's order."""
        x, y = self.xy()
        if self.updown:
            self.inc({"source": 2, "type": 1, "id": target, "x": x, "y": y})
        if target != self.focused:
            if self.focused:
                self.gap(profile.CLICK_STEP_GAP_Q)
                self.inc({"source": 2, "type": 6, "id": self.focused})
                self.focused = 0
            if focus:
                self.gap(profile.CLICK_STEP_GAP_Q)
                self.inc({"source": 2, "type": 5, "id": target})
                self.focused = target
        self.gap(profile.CLICK_STEP_GAP_Q)
        if self.updown:
            self.inc({"source": 2, "type": 0, "id": target, "x": x, "y": y})
        self.inc({"source": 2, "type": 2, "id": target, "x": x, "y": y, "pointerType": 0})

    def scroll(self, y: int | None = None) -> None:
        rng = self.rng
        if y is None:
            y = self.scroll_y + rng.randint(-200, 500)
        self.scroll_y = max(0, min(self.page.height, y))
        target = (
            1 if rng.random() < profile.SCROLL_DOCUMENT_PROBABILITY else self.pick("containers")
        )
        self.inc({"source": 3, "id": target, "x": 0, "y": self.scroll_y})

    def selection(self) -> None:
        rng = self.rng
        if rng.random() < profile.SELECTION_EMPTY_PROBABILITY:
            self.inc({"source": 14, "ranges": []})
            return
        start = self.pick("texts")
        end = start if rng.random() < 0.8 else self.pick("texts")
        so = rng.randint(0, 20)
        rng_ = {"start": start, "startOffset": so, "end": end, "endOffset": so + rng.randint(1, 40)}
        self.inc({"source": 14, "ranges": [rng_]})

    def input_text(self, target: int, text: str) -> None:
        shown = "*" * len(text) if self.mask_inputs else text
        data = {"source": 5, "text": shown, "isChecked": False, "id": target}
        if self.user_triggered:
            data["userTriggered"] = True
        self.inc(data)

    # --- actions (the kinds the recorder's script performed; see profile.ACTION_WEIGHTS) ---
    def act(self, action: str) -> None:
        rng = self.rng
        if action == "mousemove":
            self.mousemoves(rng.randint(1, 4))
        elif action == "hover":
            self.mousemoves(rng.randint(1, 2))
            if rng.random() < 0.5:
                self.gap(profile.OTHER_GAP_Q)
                if rng.random() < 0.6:
                    self.mutate_attributes()
                else:
                    self.mutate_add("tooltip", removes=True)
        elif action == "wheel":
            for i in range(rng.randint(1, 3)):
                if i:
                    self.gap(profile.SCROLL_TO_SCROLL_GAP_Q)
                self.scroll()
        elif action == "toggle":
            self.approach()
            self.click(self.pick("clickables"), focus=rng.random() < 0.8)
            self.gap(profile.CLICK_STEP_GAP_Q)
            r = rng.random()
            if r < 0.5:
                self.mutate_add(
                    rng.choice(("popover", "tooltip")), removes=rng.random() < 0.5, attributes=True
                )
            elif r < 0.8:  # a summary's label swapped: "Show all" -> "Hide"
                self.mutate_add("label", removes=True, attributes=rng.random() < 0.5)
            else:
                self.mutate_attributes()
        elif action == "select":
            self.select()
        elif action == "type" and self.page.site.kind == "api":
            self.type_text()
        elif action == "type":  # guide pages have no search box, but a theme checkbox
            target = self.pick("checkboxes")
            self.approach()
            self.click(target)
            self.checked = not self.checked
            self.gap(profile.CLICK_STEP_GAP_Q)
            self.inc({"source": 5, "text": "", "isChecked": self.checked, "id": target})
        elif action == "navigate":
            self.approach()
            self.click(self.pick("clickables"))
            self.gap(profile.OTHER_GAP_Q)
            self.open_page(self.next_page())
        elif action == "keys":  # Tab moves the focus, PageDown scrolls
            for i in range(rng.randint(1, 3)):
                if i:
                    self.gap(profile.OTHER_GAP_Q)
                if rng.random() < 0.7:
                    if self.focused:
                        self.inc({"source": 2, "type": 6, "id": self.focused})
                        self.gap(profile.CLICK_STEP_GAP_Q)
                    self.focused = self.pick("clickables")
                    self.inc({"source": 2, "type": 5, "id": self.focused})
                else:
                    self.scroll(self.scroll_y + self.height)
        elif action == "resize":
            self.width, self.height = rng.choice(profile.RESIZE_SIZES)
            self.px, self.py = min(self.px, self.width - 1), min(self.py, self.height - 1)
            self.inc({"source": 4, "width": self.width, "height": self.height})
            if rng.random() < 0.3:
                self.gap(profile.OTHER_GAP_Q)
                self.mutate_attributes()
        elif action == "custom":
            payload = {"n": rng.randint(0, 999), "path": self.page.path, "at": self.t}
            self.emit(5, {"tag": rng.choice(_CUSTOM_TAGS), "payload": payload})
        elif action == "hashlink":
            self.approach()
            self.click(self.pick("clickables"))
            self.gap(profile.OTHER_GAP_Q)
            self.scroll(round(profile.quantile_draw(rng, profile.SCROLL_Y_Q)))
        else:  # wait: the window may lose the focus meanwhile
            self.t += rng.randint(200, 900)
            if self.focused and rng.random() < 0.5:
                self.inc({"source": 2, "type": 6, "id": self.focused})
                self.focused = 0

    def approach(self) -> None:
        """The pointer usually travels to a target before clicking it."""
        if self.rng.random() < 0.5:
            self.mousemove()
            self.gap(profile.OTHER_GAP_Q)

    def select(self) -> None:
        rng = self.rng
        target = self.pick("texts")
        self.approach()
        r = rng.random()
        if r < 0.25:  # double click selects a word
            self.click(target)
            self.gap(profile.CLICK_STEP_GAP_Q)
            self.click(target, focus=False)
            x, y = self.xy()
            self.inc({"source": 2, "type": 4, "id": target, "x": x, "y": y})
            self.gap(profile.SELECTION_TO_SELECTION_GAP_Q)
            self.selection()
        elif r < 0.75:  # drag
            x, y = self.xy()
            if self.updown:
                self.inc({"source": 2, "type": 1, "id": target, "x": x, "y": y})
            for _ in range(rng.randint(2, 14)):
                self.gap(profile.SELECTION_TO_SELECTION_GAP_Q)
                self.selection()
            self.gap(profile.CLICK_STEP_GAP_Q)
            if self.updown:
                self.inc({"source": 2, "type": 0, "id": target, "x": x, "y": y})
            self.inc({"source": 2, "type": 2, "id": target, "x": x, "y": y, "pointerType": 0})
        else:  # a click that selected nothing (the recorder's "select-skipped")
            self.click(target)

    def type_text(self) -> None:
        """Keystrokes into an API page's search box, which renders results one row per mutation."""
        rng = self.rng
        target = self.pick("inputs")
        self.approach()
        self.click(target)
        length = rng.randint(3, 16)
        burst = 0
        if rng.random() < profile.SEARCH_BURST_PROBABILITY:
            burst = round(profile.quantile_draw(rng, profile.SEARCH_BURST_MUTATIONS_Q))
            burst = min(burst, self.burst_budget)
            self.burst_budget -= burst
        text = ""
        for k in range(length):
            self.gap(profile.INPUT_TO_INPUT_GAP_Q)
            if text and rng.random() < 0.08:
                text = text[:-1]  # backspace
            else:
                text += rng.choice(_KEYS)
            self.input_text(target, text)
            if k == 0:  # the search script loads, the results page appears
                self.gap(profile.CLICK_STEP_GAP_Q)
                self.mutate_add("script")
                self.gap(profile.SEARCH_BURST_GAP_Q)
                self.mutate_add("search_row", attributes=True)
            elif burst and k >= 2:
                rows = burst // (length - 2) + (k == length - 1) * (burst % (length - 2))
                for i in range(rows):
                    self.gap(profile.SEARCH_BURST_GAP_Q if i else profile.CLICK_STEP_GAP_Q)
                    if rng.random() < profile.SEARCH_BURST_SMALL_MUTATION_PROBABILITY:
                        self.mutate_add("label", removes=rng.random() < 0.5)
                    else:
                        self.mutate_add("search_row", removes=rng.random() < 0.3)

    def next_page(self) -> int:
        """Navigation mostly moves to a nearby page of the same site, as link clicks do."""
        return (self.page_number + self.rng.randint(1, 6)) % dom.PAGES_PER_SITE


def generate_session(seed: int, index: int) -> list[dict]:
    """The events of synthetic session ``index`` of corpus ``seed``, as plain dicts.

    Deterministic in (seed, index) and independent of every other session, so any worker can
    make any session and the corpus bytes do not depend on how the work was split.
    """
    return orjson.loads(orjson.dumps(session_events(seed, index)))


def session_events(seed: int, index: int) -> list[dict]:
    """The events of :func:`generate_session`, with the bulky parts (snapshot nodes, mutation
    adds) left as pre-serialized ``orjson.Fragment`` values: the fast form for writing files.

    A share ``profile.SVG_SESSION_PROBABILITY`` of the sessions, chosen by their own stream, are
    SVG-heavy dashboards (:mod:`rrweb_dali.synth.svg`); the others are unchanged by them."""
    if is_svg_session(seed, index):
        return svg_session_events(seed, index)
    rec = _Recorder(seed, index)
    rng = rec.rng
    end = rec.t + round(profile.quantile_draw(rng, profile.SESSION_DURATION_Q))
    rare = rng.random() < profile.RARE_EVENTS_SESSION_PROBABILITY
    rec.open_page(_popular_page(rng))
    navigations = 0
    while rec.t < end or len(rec.events) < 6:
        action = rng.choices(_ACTIONS, cum_weights=_ACTION_CUM)[0]
        if action == "navigate":
            if navigations == _MAX_NAVIGATIONS:
                continue
            navigations += 1
        rec.gap(profile.OTHER_GAP_Q)
        rec.act(action)
        if rec.checkout_ms and rec.t - rec.snapshot_t >= rec.checkout_ms:
            rec.gap(profile.OTHER_GAP_Q)
            rec.open_page(rec.page_number, checkout=True)
        if rare and rng.random() < 0.5:
            rec.gap(profile.OTHER_GAP_Q)
            _emit_rare(rec)
    return rec.events


def _popular_page(rng: random.Random) -> int:
    """Entry pages are skewed (low numbers, the index pages, get more visits): P(page < k) is
    sqrt(k / pages), so page 0 is 8 times more popular than an average page."""
    return int(dom.PAGES_PER_SITE * rng.random() ** 2)


def _emit_rare(rec: _Recorder) -> None:
    """One event of a kind the recordings lack (profile.RARE_KINDS), in rrweb's shape."""
    rng = rec.rng
    kind = rng.choice(profile.RARE_KINDS)
    node = rec.pick("clickables")
    origin = rec.page.site.origin
    if kind in ("dom_content_loaded", "load"):
        rec.emit(0 if kind == "dom_content_loaded" else 1, {})
    elif kind in ("plugin", "log"):
        trace = [
            f"at {rng.choice(dom.IDENT_PARTS)} ({origin}/static.files/main.js:{rng.randint(1, 900)}:7)"
        ]
        log = {"level": rng.choice(("log", "warn", "error")), "trace": trace,
               "payload": ['"' + " ".join(rng.choices(dom.WORDS, k=5)) + '"']}  # fmt: skip
        if kind == "plugin":
            rec.emit(6, {"plugin": "rrweb/console@1", "payload": log})
        else:
            rec.inc({"source": 11, **log})
    elif kind in ("touch_move", "drag"):
        rec.mousemove(6 if kind == "touch_move" else 12)
    elif kind == "media":
        rec.inc({"source": 7, "type": rng.randint(0, 4), "id": node, "currentTime": rng.random() * 60,
                 "volume": 1, "muted": False, "playbackRate": 1})  # fmt: skip
    elif kind == "stylesheet_rule":
        rule = f".{rng.choice(dom.CLASS_WORDS)} {{ {rng.choice(dom.CSS_PROPS)}; }}"
        rec.inc(
            {
                "source": 8,
                "id": rec.pick("containers"),
                "adds": [{"rule": rule, "index": rng.randint(0, 40)}],
            }
        )
    elif kind == "canvas":
        b64 = "".join(
            rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", k=200)
        )
        blob = {
            "rr_type": "Blob",
            "data": [{"rr_type": "ArrayBuffer", "base64": b64}],
            "type": "image/png",
        }
        rec.inc({"source": 9, "id": node, "type": 0, "commands": [
            {"property": "clearRect", "args": [0, 0, 300, 150]},
            {"property": "drawImage", "args": [{"rr_type": "ImageBitmap", "args": [blob]}, 0, 0]},
        ]})  # fmt: skip
    elif kind == "font":
        rec.inc({"source": 10, "family": "Fira Sans", "fontSource": f"url({origin}/static.files/fira.woff2)",
                 "buffer": False, "descriptors": {"style": "normal", "weight": "400"}})  # fmt: skip
    elif kind == "style_declaration":
        rec.inc({"source": 13, "id": rec.pick("containers"), "index": [0, rng.randint(0, 30)],
                 "set": {"property": "color", "value": "#333", "priority": ""}})  # fmt: skip
    elif kind == "adopted_stylesheet":
        rule = {"rule": ":host { display: block; }", "index": 0}
        rec.inc(
            {"source": 15, "id": 1, "styleIds": [1], "styles": [{"styleId": 1, "rules": [rule]}]}
        )
    else:  # custom_element
        rec.inc({"source": 16, "define": {"name": "doc-toolbar"}})
