"""JS/TS modules: their data literal is read (JSON5 syntax, after imports, with comments), never
evaluated; anything that would need evaluation is ``not_json`` naming the construct and line.

Every module is generated here. A refusal's line is checked against the line of the generated
text that really holds the construct.
"""

from __future__ import annotations

import orjson
import pytest

from rrweb_dali.errors import SessionError
from rrweb_dali.ingest import ReadLimits, parse_session_bytes

T0 = 1_700_000_000_000
EVENTS = [
    {"type": 4, "data": {"href": "http://x/", "width": 800, "height": 600}, "timestamp": T0},
    {
        "type": 2,
        "data": {
            "node": {
                "type": 0,
                "id": 1,
                "childNodes": [{"type": 3, "textContent": "a ] } // b", "id": 2}],
            },
            "initialOffset": {"top": 0, "left": 0},
        },
        "timestamp": T0 + 1,
    },
    {"type": 3, "data": {"source": 2, "type": 2, "id": 2, "x": 1, "y": 1}, "timestamp": T0 + 2},
]

# The same events in JS object-literal syntax: unquoted keys, single quotes, trailing commas,
# comments (one holding a bracket), a string with brackets and comment markers.
LITERAL = """[
  // the Meta event
  { type: 4, data: { href: 'http://x/', width: 800, height: 600, }, timestamp: 1700000000000 },
  {
    type: 2, /* a ] in a comment */
    data: {
      node: { type: 0, id: 1, childNodes: [{ type: 3, textContent: 'a ] } // b', id: 2 }] },
      'initialOffset': { "top": 0, left: 0 },
    },
    timestamp: 1700000000001,
  },
  { type: 3, data: { source: 2, type: 2, id: 2, x: 1, y: 1 }, timestamp: 0x18BCFE56802, },
]"""
IMPORTS = (
    "import { IncrementalSource } from '@rrweb/types';\n"
    "import type { eventWithTime } from '@rrweb/types';\n\n"
)


def read(text: str, limits: ReadLimits | None = None):
    return parse_session_bytes(text.encode(), limits or ReadLimits(), name="events.ts")


def refusal(text: str) -> SessionError:
    with pytest.raises(SessionError) as info:
        read(text)
    return info.value


def last_line_holding(text: str, needle: str) -> int:
    return text.count("\n", 0, text.rindex(needle)) + 1


@pytest.mark.parametrize(
    "module",
    [
        "export default " + LITERAL + ";\n",
        IMPORTS + "const events: eventWithTime[] = " + LITERAL + ";\n\nexport default events;\n",
        IMPORTS + "const now = Date.now();\nexport const closed = 132;\n"
        "const events = " + LITERAL + "\nexport default events\n",
        "'use strict';\nmodule.exports = " + LITERAL + ";\n",
        "const events = " + LITERAL + ";\nexport { events as default };\n",
        "/* header */\nexport const events: Array<eventWithTime> = " + LITERAL + " as const;\n",
        "const html = `<div>${[1, 2].join(',')}</div>`;\nexport default " + LITERAL + ";\n",
        "export const meta = { version: 1 };\nexport const events = " + LITERAL + ";\n",
    ],
    ids=[
        "export-default",
        "typed-const",
        "helpers-around",
        "commonjs",
        "export-clause",
        "as-const",
        "template-elsewhere",
        "first-array",
    ],
)
def test_data_literal_is_read(module):
    got = read(module)
    assert got.events == EVENTS
    assert got.report.format == "js-literal" and not got.report.salvaged


def test_json_syntax_literal_is_js_array():
    got = read("export default " + orjson.dumps(EVENTS).decode() + ";\n")
    assert got.events == EVENTS and got.report.format == "js-array"


def test_array_of_event_json_strings_is_read():
    # PostHog's mobile mock: `export const data: string[] = ['<event JSON>', ...]`
    strings = ",\n".join("    '" + orjson.dumps(e).decode() + "'" for e in EVENTS)
    got = read(f"export const encoded: string[] = [\n    // a note\n{strings},\n]\n")
    assert got.events == EVENTS and got.report.format == "js-literal"


@pytest.mark.parametrize(
    ("construct", "named"),
    [
        ("EventType.Meta", "`EventType.Meta` (a member expression such as an enum)"),
        ("now + 100", "`now + 100` (arithmetic)"),
        ("1700000000000 + 5", "an operator `+` (arithmetic)"),
        ("Date.now()", "`Date.now` (a member expression such as an enum)"),
        ("makeTime(3)", "`makeTime(...)` (a call)"),
        ("`text`", "a template literal"),
        ("undefined", "`undefined` (an identifier, not a value)"),
        ("now", "`now` (an identifier, not a value)"),
        ("function () { return 1; }", "a function"),
        ("new Date()", "a `new` expression"),
    ],
)
def test_construct_needing_evaluation_is_named_with_its_line(construct, named):
    module = (
        IMPORTS
        + "const now = 1;\nconst events = "
        + LITERAL.replace("0x18BCFE56802", construct)
        + ";\n"
    )
    error = refusal(module)
    assert error.reason == "not_json"
    line = last_line_holding(module, construct)
    assert error.detail.startswith(f"{named} at line {line}:"), error.detail


def test_spread_is_named():
    module = "const base = [];\nexport default [\n  ...base,\n  { type: 4, data: {}, timestamp: 1 },\n];\n"
    error = refusal(module)
    assert error.reason == "not_json" and error.detail.startswith("a spread `...` at line 3:")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(value):
    module = "export default [\n  { type: 4, data: { width: " + value + " }, timestamp: 1 },\n];\n"
    error = refusal(module)
    assert (
        error.reason == "not_json"
        and "NaN or Infinity" in error.detail
        and "line 2" in error.detail
    )


def test_nan_in_a_string_is_data():
    got = read("export default [{ type: 4, data: { href: 'NaN Infinity' }, timestamp: 1 }];\n")
    assert got.events[0]["data"]["href"] == "NaN Infinity"


def test_integer_past_64_bits_is_refused():
    error = refusal("export default [{ type: 4, data: {}, timestamp: 99999999999999999999999 }];\n")
    assert error.reason == "not_json" and "JSON cannot" in error.detail


@pytest.mark.parametrize(
    ("module", "words"),
    [
        (
            "const events = " + LITERAL + ".map((e) => e);\nexport default events;\n",
            "followed by '.map",
        ),
        (
            "const events = " + LITERAL + ";\nevents.push({ type: 5 });\nexport default events;\n",
            "'events' is used again",
        ),
        ("const events = " + LITERAL + ";\nevents[0].timestamp = 0;\n", "'events' is used again"),
        ("const events = load();\nexport default events;\n", "'events' is not a data literal"),
        ("export default events.slice(1);\n", "followed by '.slice"),
        ("import x from 'y';\nexport function f() { return 1; }\n", "without an array or object"),
        ("export default [\n  'an unterminated string,\n];\n", "an unterminated string at line 2"),
    ],
    ids=[
        "method-on-literal",
        "push",
        "assignment",
        "computed-default",
        "computed-export",
        "no-literal",
        "unterminated-string",
    ],
)
def test_module_that_changes_or_computes_its_data_is_refused(module, words):
    error = refusal(module)
    assert error.reason == "not_json" and words in error.detail, error.detail


def test_name_in_a_comment_or_string_is_no_use():
    module = (
        "// events recorded by hand\nconst events = "
        + LITERAL
        + ";\nconst note = 'events.push';\nexport default events;\n"
    )
    assert read(module).events == EVENTS


def test_text_that_is_not_a_module_keeps_the_json_error():
    error = refusal("hello, this is not a recording\n")
    assert error.reason == "not_json" and "at byte" in error.detail


def test_truncated_json_syntax_literal_is_salvaged():
    text = "const events = " + orjson.dumps(EVENTS).decode()
    got = read(text[: text.rindex("{") + 5])
    assert got.events == EVENTS[:2] and got.report.salvaged and got.report.format == "js-array"


def test_truncated_json5_literal_is_truncated():
    error = refusal("export default " + LITERAL[: LITERAL.index("type: 3") + 4])
    assert error.reason == "truncated" and "line 1" in error.detail


def test_deep_literal_is_too_deep():
    deep = "export default [{ type: 2, data: " + "[" * 3000 + "]" * 3000 + ", timestamp: 1 }];\n"
    assert refusal(deep).reason == "too_deep"


def test_dom_depth_limit_applies_to_js_literals():
    node = "{ type: 2, tagName: 'b', childNodes: [] }"
    for _ in range(30):
        node = "{ type: 2, tagName: 'b', childNodes: [" + node + "] }"
    module = "export default [{ type: 2, data: { node: " + node + " }, timestamp: 1 }];\n"
    with pytest.raises(SessionError) as info:
        read(module, ReadLimits(max_depth=10))
    assert info.value.reason == "too_deep"
    assert read(module).report.events == 1


def test_unstamped_events_in_a_module_are_counted():
    got = read(
        "export default [{ type: 4, data: {} }, { type: 2, data: { node: { type: 0 } } }];\n"
    )
    assert got.report.missing_timestamps == 2 and got.report.flags == ()


def test_reading_a_module_is_deterministic():
    module = IMPORTS + "const events = " + LITERAL + ";\nexport default events;\n"
    first, second = read(module), read(module)
    assert orjson.dumps(first.events) == orjson.dumps(second.events)
    assert first.report == second.report
