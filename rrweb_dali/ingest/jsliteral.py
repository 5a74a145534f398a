"""The data literal of a JavaScript / TypeScript module, read without evaluating any code.

Test suites keep recordings as modules: ``export default [...]``, ``const events:
eventWithTime[] = [...]; export default events;`` after ``import`` lines, written in JS
object-literal syntax (unquoted keys, single quotes, trailing commas, comments). Such a literal is
data, and JSON5 is exactly that subset of JavaScript, so a JSON5 parser (``pyjson5``, compiled)
reads it. Anything else in the literal would need evaluation (an enum member such as
``EventType.Meta``, arithmetic such as ``now + 100``, a call, a template literal, a spread): the
file is ``not_json`` with a detail naming the construct and its line. Nothing is ever executed.

Finding the literal takes a scan of the module that knows strings, comments, template literals
and brackets (so a bracket inside a string cannot end the literal early), and
recognises, at the top level only, the declarations ``export default``, ``module.exports =``,
``const|let|var NAME[: Type] =`` and ``export { NAME as default }``. The literal read is the
default export's; without one, the first array-valued declaration (else the first object-valued
one). Two guards keep what is read equal to what the module exports: the literal must not be
followed by an operator, call or member access (``[...].map(f)``), and its name must not appear
again in the module's code outside export clauses (``events.push(x)``). Regular-expression
literals outside the data are not understood (test data modules have none); a file that confuses
the scan is refused, never misread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson
import pyjson5

from rrweb_dali.errors import SessionError
from rrweb_dali.ingest.salvage import is_depth_error, too_deep

# What may open a module worth reading as one: only these bytes make the reader try this path,
# so real JSON and other text keep the plain parsers (and their errors).
_MODULE_START = re.compile(
    rb"(?:import|export|const|let|var)(?![\w$])|module\.exports(?![\w$])|(['\"])use strict\1"
)
_IDENT = rb"[A-Za-z_$][\w$]*"
# One alternative per thing the scan must see; everything between matches is plain code. Inside
# brackets only strings, comments, templates and brackets matter (and a pattern without the
# look-behinds of the declarations scans about 7x faster: 56 MB/s on a 2-core machine).
_INNER_ALTERNATIVES = (
    rb"'(?:[^'\\\r\n]|\\[\s\S])*'"
    rb'|"(?:[^"\\\r\n]|\\[\s\S])*"'
    rb"|//[^\n]*"
    rb"|/\*[\s\S]*?(?:\*/|\Z)"
    rb"|(?P<open>[\[{(])|(?P<close>[\]})])|(?P<tick>`)|(?P<quote>['\"])"
)
_INNER = re.compile(_INNER_ALTERNATIVES)
_TOKEN = re.compile(
    _INNER_ALTERNATIVES + rb"|(?<![\w$.])(?P<default>export\s+default(?![\w$])|module\.exports\s*=)"
    rb"|(?<![\w$.])(?P<clause>export\s*\{[^}]*\})"
    rb"|(?<![\w$.])(?:export\s+)?(?:const|let|var)\s+(?P<name>" + _IDENT + rb")"
    rb"\s*(?::[^=;]*?)?=(?![=>])"
)
_SPACE_OR_COMMENT = re.compile(rb"(?:\s+|//[^\n]*|/\*[\s\S]*?\*/)*")
# Inside a template literal: text up to its end or to a `${` substitution.
_TEMPLATE_TEXT = re.compile(rb"(?:[^`\\$]|\\[\s\S]|\$(?!\{))*")
_AS_DEFAULT = re.compile(rb"(?<![\w$])(" + _IDENT + rb")\s+as\s+default(?![\w$])")
_IDENT_AT = re.compile(_IDENT)
# What must not follow the literal (or the exported name): the start of a larger expression.
# The end of the statement, another statement, or a TS `as T` / `satisfies T` may.
_EVALUATES = frozenset(b".([+-*/%?|&^<>=!`")
_NON_FINITE = re.compile(rb"(?<![\w$])(?:NaN|Infinity)(?![\w$])")
_LONG_NUMBER = re.compile(rb"[0-9A-Fa-f]{16}")  # integers past 64 bits have at least 16 digits
_NEAR = re.compile(r"near (\d+)")
_CLOSER = {ord("["): ord("]"), ord("{"): ord("}"), ord("("): ord(")")}
_SUBSTITUTION = -1  # stack marker of an open `${` inside a template literal
# pyjson5 nests through Python's recursion check, so about 1,000 levels (orjson allows 1,024).
_MAX_NESTING = 1024


@dataclass
class _Declaration:
    name: str | None  # None for `export default [...]`
    at: int  # where the value starts
    literal: _Literal | None = None  # set when the value is an array or object literal


@dataclass
class _Literal:
    """One top-level array or object literal: its value when it is data, else why not."""

    end: int | None  # just past its closing bracket; None: the file ends inside it
    value: object = None
    format: str = "js-literal"  # "js-array": the literal is plain JSON
    refusal: SessionError | None = None  # not data: the construct that needs evaluation


@dataclass(frozen=True)
class ModuleData:
    """The value of a module's data literal and how it was read."""

    value: object
    format: str  # "js-array" (the literal is plain JSON) or "js-literal" (JSON5 syntax)
    begin: int  # offset of the literal in the document
    truncated: bool  # the file ends inside the literal (the caller may salvage it)


def looks_like_module(text: bytes, start: int) -> bool:
    """Whether the document (first non-space, non-comment byte at ``start``) is a JS/TS module."""
    return _MODULE_START.match(text, skip_space(text, start)) is not None


def skip_space(text: bytes, pos: int) -> int:
    """The offset of the first byte at or after ``pos`` that is not space or a JS comment."""
    return _SPACE_OR_COMMENT.match(text, pos).end()


def line_of(text: bytes, pos: int) -> int:
    return text.count(b"\n", 0, pos) + 1


def read_module(text: bytes, start: int) -> ModuleData:
    """The module's data literal (see the module docstring for which one). Raises
    ``not_json`` when the module holds no literal that is data, ``too_deep`` past the nesting
    limit. A literal the file ends inside comes back with ``truncated`` and no value."""
    declarations, default_name, code = _scan(text, start)
    chosen = _choose(declarations, default_name, text)
    literal = chosen.literal
    if literal.refusal is not None:
        raise literal.refusal
    if literal.end is not None:
        _check_end(text, literal.end)
    if chosen.name is not None:
        _check_unchanged(text, chosen.name, code)
    return ModuleData(literal.value, literal.format, chosen.at, literal.end is None)


def _read_literal(text: bytes, begin: int) -> _Literal:
    """Read the literal opening at ``text[begin]``: strict JSON first (orjson, several times
    faster), then JSON5, which also says where the literal ends. A literal that is neither
    is skipped by a bracket scan, keeping the parser's verdict for when it is the one chosen."""
    if text[begin] == ord("["):
        last = text.rfind(b"]")
        try:  # JSON ending at the file's last `]` is exactly the JS literal (brackets balance)
            value = orjson.loads(memoryview(text)[begin : last + 1])  # (a view: no copy)
            return _Literal(last + 1, value, "js-array")
        except orjson.JSONDecodeError as exc:
            if is_depth_error(exc):
                raise too_deep(exc) from None
    try:
        value = pyjson5.decode_buffer(memoryview(text)[begin:], maxdepth=_MAX_NESTING, wordlength=0)
        end = len(text)
    except pyjson5.Json5ExtraData as exc:  # the literal ended where other code begins
        value, end = exc.result, begin + _near(exc)
    except pyjson5.Json5NestingTooDeep:  # (its str() recurses through the partial result)
        raise SessionError("too_deep", "JS literal nesting over the parser limit") from None
    except pyjson5.Json5Exception as exc:
        close = _skip_brackets(text, begin)
        if close is None:
            return _Literal(None)
        pos = min(begin + max(_near(exc) - 1, 0), close - 1)
        return _Literal(close, refusal=SessionError("not_json", _construct_detail(text, pos)))
    return _Literal(end, _checked(text, begin, end, value))


def _near(exc: pyjson5.Json5Exception) -> int:
    """The offset pyjson5 names in its message (the end of the value, or near the failure)."""
    found = _NEAR.search(exc.message or "")
    return int(found.group(1)) if found else 0


def _checked(text: bytes, begin: int, end: int, value: object) -> object:
    """``value``, refused where JSON5 read something JSON has no value for."""
    if _NON_FINITE.search(text, begin, end) and _has_non_finite(value):
        at = _NON_FINITE.search(text, begin, end).start()
        _refuse(text, at, "NaN or Infinity (no JSON value)")
    if _LONG_NUMBER.search(text, begin, end):  # (a long digit run, maybe in a string: check)
        try:
            orjson.dumps(value)  # integers within 64 bits, which is all orjson reads as ints
        except orjson.JSONEncodeError as exc:
            raise SessionError("not_json", f"JS literal holds a value JSON cannot: {exc}") from None
    return value


def _skip_brackets(text: bytes, begin: int) -> int | None:
    """Just past the bracket closing the one at ``text[begin]``; None when the text ends first."""
    stack: list[int] = []
    pos = begin
    while True:
        match = _INNER.search(text, pos)
        if match is None:
            return None
        pos = match.end()
        kind = match.lastgroup
        if kind == "open":
            stack.append(_CLOSER[text[match.start()]])
        elif kind == "close":
            if _close(text, match.start(), stack):
                pos = _template(text, pos, stack)
            elif not stack:
                return pos
        elif kind == "tick":
            pos = _template(text, pos, stack)
        elif kind == "quote":
            if text.find(b"\n", match.start()) < 0:
                return None  # the file ends inside the string: cut short
            _refuse(text, match.start(), "an unterminated string")


def _close(text: bytes, at: int, stack: list[int]) -> bool:
    """Pop the bracket that the closer at ``at`` ends; True when it ends a template literal's
    ``${...}`` substitution (the template's text goes on after it). A closer that matches
    nothing open is refused."""
    closer = text[at]
    if not stack or stack[-1] not in (closer, _SUBSTITUTION):
        _refuse(text, at, f"unbalanced {chr(closer)!r}")
    if stack.pop() != _SUBSTITUTION:
        return False
    if closer != ord("}"):
        _refuse(text, at, f"unbalanced {chr(closer)!r}")
    return True


def _scan(text: bytes, pos: int) -> tuple[list[_Declaration], str | None, list[tuple[int, int]]]:
    """One pass over the module's top level: its declarations (each literal read as it is
    met), the default export's name, and the spans of code outside strings, comments and
    literals (for :func:`_check_unchanged`)."""
    declarations: list[_Declaration] = []
    default_name: str | None = None
    code: list[tuple[int, int]] = []
    stack: list[int] = []  # brackets of top-level code (calls, blocks), not of literals
    pending: _Declaration | None = None  # the declaration whose value starts at pending.at
    while pos < len(text):
        match = (_INNER if stack else _TOKEN).search(text, pos)
        code.append((pos, len(text) if match is None else match.start()))
        if match is None:
            break
        pos = match.end()
        kind = match.lastgroup
        if kind is None:
            continue  # a string or a comment
        if kind == "open":
            if not stack and pending is not None and pending.at == match.start():
                pending.literal = _read_literal(text, match.start())
                if pending.literal.end is None:
                    break  # the file ends inside it
                pos, pending = pending.literal.end, None
            else:
                stack.append(_CLOSER[text[match.start()]])
        elif kind == "close":
            if _close(text, match.start(), stack):
                pos = _template(text, pos, stack)
        elif kind == "tick":
            pos = _template(text, pos, stack)
        elif kind == "quote":
            if text.find(b"\n", match.start()) < 0:
                break  # the file ends inside the string: cut short
            _refuse(text, match.start(), "an unterminated string")
        elif kind == "default":
            value = skip_space(text, pos)
            ident = _IDENT_AT.match(text, value)
            if ident and text[value : value + 1] not in (b"[", b"{"):
                default_name = ident.group().decode()
                _check_end(text, ident.end())
                pos = ident.end()  # the exported name is no use of it
            pending = _Declaration(None, value)
            declarations.append(pending)
        elif kind == "clause":
            named = _AS_DEFAULT.search(match["clause"])
            if named:
                default_name = named.group(1).decode()
        else:  # "name": const|let|var NAME =
            pending = _Declaration(match["name"].decode(), skip_space(text, pos))
            declarations.append(pending)
    return declarations, default_name, code


def _template(text: bytes, pos: int, stack: list[int]) -> int:
    """Skip a template literal's text from ``pos``: past its closing backtick, or into a
    ``${`` substitution (scanned as code until its ``}``)."""
    pos = _TEMPLATE_TEXT.match(text, pos).end()
    if text[pos : pos + 1] == b"`":
        return pos + 1
    if text[pos : pos + 2] == b"${":
        stack.append(_SUBSTITUTION)
        return pos + 2
    return pos  # cut inside the template: the caller ends at the end of the text


def _choose(declarations: list[_Declaration], default_name: str | None, text: bytes):
    literals = [d for d in declarations if d.literal is not None]
    if default_name is not None:
        named = [d for d in declarations if d.name == default_name]
        if not named:
            raise SessionError(
                "not_json", f"the default export {default_name!r} is not declared in the module"
            )
        if named[-1].literal is None:
            _refuse(
                text, named[-1].at, f"the default export {default_name!r} is not a data literal"
            )
        return named[-1]
    for declaration in literals:
        if declaration.name is None:
            return declaration  # export default [...] / module.exports = [...]
    arrays = [d for d in literals if text[d.at] == ord("[")]
    if arrays or literals:
        return (arrays or literals)[0]
    raise SessionError("not_json", "a JS/TS module without an array or object data literal")


def _check_end(text: bytes, end: int) -> None:
    """Refuse a literal (or exported name) that is the start of an expression."""
    after = skip_space(text, end)
    if after < len(text) and text[after] in _EVALUATES:
        _refuse(text, after, f"the data is followed by {_first_line(text[after : after + 12])!r}")


def _check_unchanged(text: bytes, name: str, code: list[tuple[int, int]]) -> None:
    """Refuse when the literal's name is used in the module's code: it may be changed there."""
    pattern = re.compile(rb"(?<![\w$.])" + re.escape(name.encode()) + rb"(?![\w$])")
    for begin, end in code:
        found = pattern.search(text, begin, end)
        if found:
            _refuse(text, found.start(), f"{name!r} is used again (the module may change it)")


def _refuse(text: bytes, pos: int, what: str) -> None:
    raise SessionError(
        "not_json", f"{what} at line {line_of(text, pos)}: JS/TS data is read, never evaluated"
    )


_MEMBER = re.compile(_IDENT + rb"(?:\s*\.\s*" + _IDENT + rb")+")
_CALL = re.compile(_IDENT + rb"\s*\(")
_OPERATION = re.compile(_IDENT + rb"\s*[-+*/%]\s*[\w$.]+")
_KEYWORDS = {b"function": "a function", b"new": "a `new` expression", b"class": "a class"}


def _construct_detail(text: bytes, pos: int) -> str:
    """Name what a JSON5 parser stopped at (``pos``, near the failing byte): the thing that would
    need evaluation, and its line."""
    while pos > 0 and (text[pos - 1 : pos].isalnum() or text[pos - 1] in b"_$"):
        pos -= 1  # back to the start of the identifier the error fell in
    line = line_of(text, pos)
    rest = text[pos : pos + 80]
    word = _IDENT_AT.match(rest)
    if word and word.group() in _KEYWORDS:
        what = _KEYWORDS[word.group()]
    elif found := _MEMBER.match(rest):
        what = f"`{_squeeze(found.group())}` (a member expression such as an enum)"
    elif found := _CALL.match(rest):
        what = f"`{_squeeze(found.group())}...)` (a call)"
    elif found := _OPERATION.match(rest):
        what = f"`{_squeeze(found.group())}` (arithmetic)"
    elif word:
        what = f"`{word.group().decode()}` (an identifier, not a value)"
    elif rest.startswith(b"..."):
        what = "a spread `...`"
    elif rest.startswith(b"`"):
        what = "a template literal"
    elif rest.startswith(b"=>"):
        what = "an arrow function"
    elif rest[:1] and rest[0] in b"+-*/%":
        what = f"an operator `{chr(rest[0])}` (arithmetic)"
    elif rest[:1] == b"(":
        what = "a parenthesised expression or call"
    elif not rest.strip():
        what = "the end of the file inside the data literal (cut short?)"
    else:
        what = f"unexpected {_first_line(rest[:12])!r}"
    return f"{what} at line {line}: JS/TS data is read, never evaluated"


def _first_line(code: bytes) -> str:
    return code.split(b"\n")[0].decode(errors="replace")


def _squeeze(code: bytes) -> str:
    return " ".join(code.decode(errors="replace").split())


def _has_non_finite(value: object) -> bool:
    """Whether a float NaN or infinity is anywhere in ``value`` (iterative: nesting is deep)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is float and (item != item or item in (float("inf"), float("-inf"))):
            return True
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
    return False
