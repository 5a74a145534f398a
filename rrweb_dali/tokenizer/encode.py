"""rrweb events -> internal token ids: one line of tokens per event.

Every event starts with a time-delta token (log bucket of the ms since the previous event) and its
type token; incremental snapshots add their source token; then come the event's own tokens.
Event types and sources dispatch through dicts of bound methods. Bad shapes never raise: a
handler that meets something unexpected is rolled back to the event's type token and followed by
``<MALFORMED>``, and the next event is encoded as usual. An event whose tokens exceed its budget
(``max_event_tokens``, or ``max_snapshot_tokens`` for a FullSnapshot) is cut there and marked
``<EV-TRUNC>`` (see :mod:`rrweb_dali.tokenizer.budget`). Node ids never become tokens: they only
index ``targets`` (id -> token naming the node's tag), so renumbering every id changes nothing.
"""

from __future__ import annotations

import logging

import orjson

from rrweb_dali.tokenizer import ids as t
from rrweb_dali.tokenizer import quantize as q
from rrweb_dali.tokenizer import vocab
from rrweb_dali.tokenizer.budget import cut_event
from rrweb_dali.tokenizer.walk import emit_attributes, emit_blob, emit_string, walk

logger = logging.getLogger(__name__)

_N_SOURCES = len(vocab.SOURCE_NAMES) - 1
_DT_TOP = t.DT + vocab.DT_SIZE - 1


def blob_size(payload) -> int:
    """Length of a payload that is not inlined: chars for a string, JSON bytes otherwise."""
    if payload.__class__ is str:
        return len(payload)
    try:
        return len(orjson.dumps(payload))
    except (TypeError, orjson.JSONEncodeError):
        return 0


def _without_node_id(data: dict) -> dict:
    """The payload minus its node id, whose digit count must not move the size bucket."""
    if "id" not in data:
        return data
    return {key: val for key, val in data.items() if key != "id"}


class _Session:
    """State of one encode() call: the output, the current viewport, id -> target token."""

    __slots__ = ("cx", "cy", "out", "sx", "sy", "targets")

    def __init__(self) -> None:
        self.out: list[int] = [t.BOS]
        self.targets: dict = {}
        self.set_viewport(*q.DEFAULT_VIEWPORT)

    def set_viewport(self, width, height) -> None:
        self.cx, self.cy = q.coord_scale(width), q.coord_scale(height)
        self.sx, self.sy = q.scroll_scale(width), q.scroll_scale(height)

    def target(self, nid) -> int:
        return self.targets.get(nid, t.T_UNKNOWN) if nid.__class__ is int else t.T_UNKNOWN


class EventEncoder:
    """Encodes event lists to internal ids; one per Tokenizer, reusable, thread-compatible."""

    def __init__(
        self, max_text_bytes: int, max_event_tokens: int, max_snapshot_tokens: int
    ) -> None:
        self.cap = max_text_bytes
        self.event_budget = max_event_tokens
        self.snapshot_budget = max_snapshot_tokens
        self.names = t.NameTokens()
        nothing, blob = self._nothing, self._whole_blob
        self._events = {0: nothing, 1: nothing, 2: self._full_snapshot, 3: self._incremental}
        self._events.update({4: self._meta, 5: self._custom, 6: self._plugin, 7: blob, 8: blob})
        target_blob, positions = self._target_blob, self._positions
        self._sources = {
            0: self._mutation,
            1: positions,
            2: self._mouse_interaction,
            3: self._scroll,
            4: self._viewport,
            5: self._input,
            6: positions,
            7: self._media,
            8: target_blob,
            9: target_blob,
            10: blob,
            11: blob,
            12: positions,
            13: target_blob,
            14: self._selection,
            15: target_blob,
            16: self._custom_element,
        }

    def encode(self, events) -> list[int]:
        """Internal ids for a list of events, BOS first and EOS last."""
        s = _Session()
        out = s.out
        append = out.append
        if events.__class__ is not list:
            if not isinstance(events, (list, tuple)):
                out += (t.DT_UNKNOWN, t.MALFORMED, t.EOS)
                return out
            events = list(events)
        handlers = self._events
        log_table, n_log, DT = q.LOG_TABLE, len(q.LOG_TABLE), t.DT
        budget, snapshot_budget = self.event_budget, self.snapshot_budget
        prev = None
        for ev in events:
            if ev.__class__ is not dict:
                append(t.DT_UNKNOWN)
                append(t.MALFORMED)
                continue
            start = len(out)
            ts = ev.get("timestamp")
            if ts.__class__ is int or (ts.__class__ is float and -1e18 < ts < 1e18):
                d = ts - prev if prev is not None else 0
                prev = ts
                if d.__class__ is int and 0 <= d < n_log:
                    append(DT + log_table[d])
                else:
                    append(_dt_token(d))
            else:  # missing, not a number, nan or inf: no delta, and the clock does not move
                append(t.DT_UNKNOWN)
            et = ev.get("type")
            handler = handlers.get(et) if et.__class__ is int else None
            if handler is None:
                append(t.EVENT_UNKNOWN)
                continue
            append(t.EVENT + et)
            data = ev.get("data")
            if data.__class__ is not dict:
                if et > 1 or data is not None:  # DomContentLoaded / Load may carry no data
                    append(t.MALFORMED)
                continue
            mark = len(out)
            try:
                handler(s, data)
            except Exception as exc:  # a bad shape anywhere: roll the event back, mark it, go on
                logger.debug("malformed event of type %s: %r", et, exc)
                del out[mark:]
                append(t.MALFORMED)
            if len(out) - start > (snapshot_budget if et == 2 else budget):
                cut_event(out, start, snapshot_budget if et == 2 else budget)
        append(t.EOS)
        return out

    # ---- event types -------------------------------------------------------------------------
    def _nothing(self, s: _Session, data: dict) -> None:
        return None

    def _whole_blob(self, s: _Session, data: dict) -> None:
        emit_blob(s.out, blob_size(_without_node_id(data)))

    def _meta(self, s: _Session, data: dict) -> None:
        self._viewport(s, data)
        href = data.get("href")
        if href.__class__ is str:
            s.out.append(t.HREF)
            emit_string(s.out, href, self.cap)

    def _viewport(self, s: _Session, data: dict) -> None:
        """Meta and ViewportResize: later coordinates are relative to this size."""
        w, h = data.get("width"), data.get("height")
        if q.valid_extent(w) and q.valid_extent(h):
            s.set_viewport(w, h)
            s.out.append(t.VW + q.viewport_index(w))
            s.out.append(t.VH + q.viewport_index(h))
        else:
            s.out.append(t.MALFORMED)

    def _custom(self, s: _Session, data: dict) -> None:
        s.out.append(self.names.other(data.get("tag")))
        emit_blob(s.out, blob_size(data.get("payload")))

    def _plugin(self, s: _Session, data: dict) -> None:
        s.out.append(self.names.other(data.get("plugin")))
        emit_blob(s.out, blob_size(data.get("payload")))

    def _full_snapshot(self, s: _Session, data: dict) -> None:
        out = s.out
        offset = data.get("initialOffset")
        if offset.__class__ is dict:
            out.append(t.SX + q.clamp_index(offset.get("left", 0) * s.sx, vocab.SCROLL_SIZE))
            out.append(t.SY + q.clamp_index(offset.get("top", 0) * s.sy, vocab.SCROLL_SIZE))
        s.targets = {}  # a new snapshot starts a new id space
        walk(out, [data.get("node")], s.targets, self.cap, self.names)

    def _incremental(self, s: _Session, data: dict) -> None:
        src = data.get("source")
        handler = self._sources.get(src) if src.__class__ is int else None
        if handler is None:
            s.out.append(t.SOURCE_UNKNOWN)
            self._whole_blob(s, data)
            return
        out = s.out
        out.append(t.SOURCE + src)
        mark = len(out)
        try:
            handler(s, data)
        except Exception as exc:  # keep the source token, mark the rest malformed
            logger.debug("malformed incremental event of source %s: %r", src, exc)
            del out[mark:]
            out.append(t.MALFORMED)

    # ---- incremental sources -----------------------------------------------------------------
    def _mutation(self, s: _Session, data: dict) -> None:
        """Removes, adds (each a small tree), text changes, attribute changes: rrweb's order."""
        out, cap, names, targets = s.out, self.cap, self.names, s.targets
        append = out.append
        T_UNKNOWN = t.T_UNKNOWN
        for item in _items(out, data.get("removes")):
            append(t.MUT_REMOVE)
            nid = item.get("id")
            append(targets.get(nid, T_UNKNOWN) if nid.__class__ is int else T_UNKNOWN)
        adds = _items(out, data.get("adds"))
        if adds:
            walk(out, adds[::-1], targets, cap, names)  # the walk reads add records itself
        for item in _items(out, data.get("texts")):
            append(t.MUT_TEXT)
            value = item.get("value")
            if value.__class__ is str:
                emit_string(out, value, cap)
            elif value is None:
                append(t.V_NULL)
            else:
                append(t.MALFORMED)
        for item in _items(out, data.get("attributes")):
            append(t.MUT_ATTR)
            nid = item.get("id")
            append(targets.get(nid, T_UNKNOWN) if nid.__class__ is int else T_UNKNOWN)
            emit_attributes(out, item.get("attributes"), cap, names)
        if data.get("isAttachIframe"):
            append(t.ATTACH_IFRAME)

    def _positions(self, s: _Session, data: dict) -> None:
        """MouseMove, TouchMove, Drag: x, y relative to the viewport, and -timeOffset."""
        out = s.out
        append = out.append
        positions = data.get("positions")
        if positions.__class__ is not list:
            append(t.MALFORMED)
            return
        cx, cy, top = s.cx, s.cy, vocab.COORD_SIZE - 1
        X, Y, TOFF = t.X, t.Y, t.TOFF
        log_table, n_log = q.LOG_TABLE, len(q.LOG_TABLE)
        for p in positions:
            if p.__class__ is not dict:
                append(t.MALFORMED)
                continue
            xi, yi = int(p["x"] * cx), int(p["y"] * cy)
            append(X + (xi if 0 <= xi <= top else (0 if xi < 0 else top)))
            append(Y + (yi if 0 <= yi <= top else (0 if yi < 0 else top)))
            off = p.get("timeOffset", 0)
            d = -off if off.__class__ is int else q.as_int(-off)
            if 0 <= d < n_log:
                append(TOFF + log_table[d])
            else:
                append(TOFF + (0 if d < 0 else q.log_index(d, vocab.TOFF_SIZE)))

    def _xy(self, s: _Session, x, y) -> None:
        s.out.append(t.X + q.clamp_index(x * s.cx, vocab.COORD_SIZE))
        s.out.append(t.Y + q.clamp_index(y * s.cy, vocab.COORD_SIZE))

    def _mouse_interaction(self, s: _Session, data: dict) -> None:
        out = s.out
        kind = data.get("type")
        in_range = kind.__class__ is int and 0 <= kind < t.MOUSE_UNKNOWN - t.MOUSE
        out.append(t.MOUSE + kind if in_range else t.MOUSE_UNKNOWN)
        pointer = data.get("pointerType")
        if pointer is not None:
            known = pointer.__class__ is int and 0 <= pointer < t.POINTER_UNKNOWN - t.POINTER
            out.append(t.POINTER + pointer if known else t.POINTER_UNKNOWN)
        x, y = data.get("x"), data.get("y")
        if x is not None and y is not None:
            self._xy(s, x, y)
        out.append(s.target(data.get("id")))

    def _scroll(self, s: _Session, data: dict) -> None:
        out = s.out
        out.append(s.target(data.get("id")))
        out.append(t.SX + q.clamp_index(data.get("x", 0) * s.sx, vocab.SCROLL_SIZE))
        out.append(t.SY + q.clamp_index(data.get("y", 0) * s.sy, vocab.SCROLL_SIZE))

    def _input(self, s: _Session, data: dict) -> None:
        out = s.out
        out.append(s.target(data.get("id")))
        text = data.get("text")
        if text.__class__ is str:
            emit_string(out, text, self.cap)
        elif text is not None:
            out.append(t.MALFORMED)
        checked = data.get("isChecked")
        if checked is True:
            out.append(t.CHECKED)
        elif checked is False:
            out.append(t.UNCHECKED)
        if data.get("userTriggered") is True:
            out.append(t.USER)

    def _media(self, s: _Session, data: dict) -> None:
        out = s.out
        kind = data.get("type")
        in_range = kind.__class__ is int and 0 <= kind < t.MEDIA_UNKNOWN - t.MEDIA
        out.append(t.MEDIA + kind if in_range else t.MEDIA_UNKNOWN)
        out.append(s.target(data.get("id")))
        for key, marker, scale in (("currentTime", t.TIME, 1), ("volume", t.VOL, 10)):
            value = data.get(key)
            if value is not None:
                out.append(marker)
                out.append(t.COUNT + q.count_index(value * scale))
        rate = data.get("playbackRate")
        if rate is not None:
            out.append(t.RATE)
            out.append(t.COUNT + q.count_index(rate * 4))
        muted = data.get("muted")
        if muted is not None:
            out.append(t.MUTED if muted else t.UNMUTED)
        if data.get("loop"):
            out.append(t.LOOP)

    def _target_blob(self, s: _Session, data: dict) -> None:
        """StyleSheetRule, CanvasMutation, StyleDeclaration, AdoptedStyleSheet: never inlined."""
        if "id" in data:
            s.out.append(s.target(data.get("id")))
        emit_blob(s.out, blob_size(_without_node_id(data)))

    def _selection(self, s: _Session, data: dict) -> None:
        out, target = s.out, s.target
        for r in _items(out, data.get("ranges")):
            out.append(t.RANGE)
            out.append(target(r.get("start")))
            out.append(t.COUNT + q.count_index(r.get("startOffset", 0)))
            out.append(target(r.get("end")))
            out.append(t.COUNT + q.count_index(r.get("endOffset", 0)))

    def _custom_element(self, s: _Session, data: dict) -> None:
        define = data.get("define")
        if define.__class__ is dict:
            s.out.append(t.DEFINE)
            s.out.append(self.names.other(define.get("name")))
        else:
            self._whole_blob(s, data)


def _items(out: list[int], section) -> list:
    """The dict entries of a list section; a compressed string section is a blob; else malformed."""
    if section.__class__ is list:
        for item in section:
            if item.__class__ is not dict:
                out.append(t.MALFORMED)
                return [item for item in section if item.__class__ is dict]
        return section
    if section:
        if section.__class__ is str:  # e.g. PostHog's gzip-in-latin-1 sections, not unpacked here
            out.append(t.V_STR)
            emit_blob(out, len(section))
        else:
            out.append(t.MALFORMED)
    return []


def _dt_token(d) -> int:
    """Time-delta token for the uncommon cases: a float, negative or huge delta (finite)."""
    if d < 0:
        return t.DT_NEG
    return t.DT + q.dt_index(d) if d < 1e18 else _DT_TOP
