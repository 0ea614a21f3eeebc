"""The sandbox templates run in: no reach into Python, and no runaway message.

A user template is run for every follow-up of its rule and step, inside a
pass. Jinja2's sandbox keeps it from reaching into Python; this one also
keeps it from making a message no one would read at a cost the pass would
pay (``{{ 'x' * 100000000 }}`` took 52 s and hundreds of megabytes, at every
retry). What a template writes is capped at `MAX_RENDERED_CHARS`, and the
strings it makes on the way at `MAX_MADE_CHARS`: the operators and calls
that can turn a short template into a long string are checked before they
run where their size shows in their operands (``*``, ``**``, ``%``, widths,
``replace``, ``join``), and every value they make is counted. Over a cap,
`TooLong` is raised at once, and the follow-up fails with that reason.

This bounds mistakes, not a determined adversary: a template can still loop
for a while over the values it is given (Jinja's own `MAX_RANGE` bounds
``range``, and its items count as made). Only a separate process could
bound that too; the templates are the user's own files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sized
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import wraps
from typing import Any

from jinja2 import StrictUndefined
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import TemplateRuntimeError
from jinja2.nodes import Concat
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment, safe_range

MAX_RENDERED_CHARS = 256 * 1024
"""The most characters one block of a template (a subject, a body) may write: 262,144.

The shipped bodies run to a few hundred characters (under 700 for the
demo's), a line more per invoice when a nudge lists a client's overdue
invoices: this is hundreds of times that, yet far below what mail servers
(10 MB and more) and calendar servers accept, and small enough to be
written, stored and sent in milliseconds.
"""

MAX_MADE_CHARS = 16 * MAX_RENDERED_CHARS
"""The most characters (or items) the values a template makes along the way may add up to.

Strings built and thrown away (``{% set %}`` blocks, filters, ``~``) never
reach the output but cost as much; sixteen messages' worth is far more than
formatting a message needs, and still a few milliseconds of work.
"""

MAX_POWER_BITS = 64 * 1024
"""The largest integer ``**`` may make, in bits (about 20,000 digits)."""

# the widths of a %-format ("%10s", "%-*.3f") and of a str.format field ("{:>10}")
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\d+|\*)?(?:\.(\d+|\*))?")
_FORMAT_SPEC = re.compile(r"\{[^{}]*:([^{}]*)\}")
_DIGITS = re.compile(r"\d+")
_SIZED = (str, bytes, list, tuple, dict, set, frozenset)
# the values a template reads most (a row's fields): never a `str.format` the sandbox must wrap
_PLAIN = frozenset({str, int, float, bool, Decimal, date, datetime, type(None)})


class TooLong(TemplateRuntimeError):
    """A template would write, or make, more than its caps allow."""


@dataclass
class _Budget:
    """What one rendering has made so far."""

    made: int = 0


_BUDGET: ContextVar[_Budget | None] = ContextVar("followupd_template_budget", default=None)


class budget:  # lower case: used as the function it was, `with budget():`
    """Count what the templates rendered inside this block make, against `MAX_MADE_CHARS`.

    A class rather than a generator made a context manager: a pass enters it
    for every block it renders, tens of thousands of times.
    """

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _BUDGET.set(_Budget())

    def __exit__(self, *_: object) -> None:
        _BUDGET.reset(self._token)


def written(chunks: Iterator[str]) -> str:
    """The chunks a block renders, joined, stopping at once when they pass
    `MAX_RENDERED_CHARS` (the block is left paused where it stopped)."""
    parts: list[str] = []
    append, size, most = parts.append, 0, MAX_RENDERED_CHARS  # locals: 20 chunks a block
    for chunk in chunks:
        size += len(chunk)
        if size > most:
            raise TooLong(
                f"the message is longer than {MAX_RENDERED_CHARS:,} characters, the most a "
                "template may write"
            )
        append(chunk)
    return "".join(parts)


def _refuse(size: int, what: str, tense: str = "would make") -> None:
    if size > MAX_RENDERED_CHARS:
        raise TooLong(
            f"{what} {tense} {size:,} characters, over the {MAX_RENDERED_CHARS:,} "
            "a message may hold"
        )


def _spend(size: int, what: str) -> None:
    spent = _BUDGET.get()
    if spent is not None:
        spent.made += size
        if spent.made > MAX_MADE_CHARS:
            raise TooLong(f"the template made over {MAX_MADE_CHARS:,} {what} on the way")


def _made(value: Any) -> Any:
    """Count a value a template made; refuse one longer than a message may be."""
    if isinstance(value, _SIZED):
        _refuse(len(value), "a value", "of")
        _spend(len(value), "characters")
    return value


# -- the sizes of what a call would make, where its arguments show them ----------------


def _format_size(spec: Any, *args: Any, **kwargs: Any) -> int:
    """The widest field of a %-format or str.format string (0 when none is given)."""
    if not isinstance(spec, str):
        return 0
    widths = [int(number) for match in _PERCENT_SPEC.finditer(spec)
              for number in match.groups() if number and number != "*"]  # fmt: skip
    if "*" in spec:  # widths taken from the arguments
        widths += [arg for arg in (*args, *kwargs.values()) if type(arg) is int]
    for match in _FORMAT_SPEC.finditer(spec):
        widths += [int(number) for number in _DIGITS.findall(match.group(1))]
    return max(widths, default=0)


def _width_size(value: Any, width: Any = 0, *_: Any, **__: Any) -> int:
    return width if type(width) is int else 0


def _count_size(value: Any, count: Any = 0, *_: Any, **__: Any) -> int:
    """``batch(n)``, ``slice(n)``: n lists, or lists of n items."""
    return count if type(count) is int else 0


def _indent_size(value: Any, width: Any = 4, *_: Any, **__: Any) -> int:
    lines = str(value).count("\n") + 1
    step = width if type(width) is int else len(str(width))
    return len(str(value)) + step * lines


def _replace_size(value: Any, old: Any = "", new: Any = "", *_: Any, **__: Any) -> int:
    text, old, new = str(value), str(old), str(new)
    found = text.count(old) if old else len(text) + 1
    return len(text) + found * (len(new) - len(old))


def _expandtabs_size(value: Any, tabsize: Any = 8, *_: Any, **__: Any) -> int:
    return len(str(value)) + str(value).count("\t") * (tabsize if type(tabsize) is int else 8)


def _join_filter_size(value: Any, separator: Any = "", *_: Any, **__: Any) -> int:
    return len(value) * len(str(separator)) if isinstance(value, Sized) else 0


def _join_method_size(separator: Any, items: Any = (), *_: Any, **__: Any) -> int:
    return len(items) * len(str(separator)) if isinstance(items, Sized) else 0


_FILTER_SIZES: dict[str, Callable[..., int]] = {
    "center": _width_size,
    "indent": _indent_size,
    "batch": _count_size,
    "slice": _count_size,
    "format": _format_size,
    "replace": _replace_size,
    "join": _join_filter_size,
}
_STR_METHOD_SIZES: dict[str, Callable[..., int]] = {
    "center": _width_size,
    "ljust": _width_size,
    "rjust": _width_size,
    "zfill": _width_size,
    "expandtabs": _expandtabs_size,
    "format": _format_size,
    "replace": _replace_size,
    "join": _join_method_size,
}


def _size_of(measure: Callable[..., int] | None, *args: Any, **kwargs: Any) -> int:
    if measure is None:
        return 0
    try:
        return measure(*args, **kwargs)
    except (TypeError, ValueError, AttributeError):  # let the call itself say what is wrong
        return 0


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` (a Jinja filter) refusing to make more than a message may hold."""
    measure = _FILTER_SIZES.get(name)
    passes = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0

    @wraps(function)  # keeps Jinja's pass_context/pass_eval_context marks
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _refuse(_size_of(measure, *args[passes:], **kwargs), f"the filter {name!r}")
        return _made(function(*args, **kwargs))

    return bounded


def _bounded_range(*args: int) -> range:
    """Jinja's `safe_range` (at most `MAX_RANGE` items), its items counted as made."""
    numbers = safe_range(*args)
    _spend(len(numbers), "loop items")
    return numbers


class _CountedConcat(CodeGenerator):
    """Compiles ``a ~ b`` to count what it makes, like the other operators."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        self.write("environment.made(")
        super().visit_Concat(node, frame)
        self.write(")")


class FieldsUndefined(StrictUndefined):
    """An error for a missing field that names the fields there are."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        fields = getattr(self._undefined_obj, "_fields", None)  # a row, a named tuple
        name = self._undefined_name
        if isinstance(name, str) and isinstance(fields, tuple) and not self._undefined_hint:
            return f"no field {name!r} here; there are: {', '.join(fields)}"
        return super()._undefined_message


class BoundedSandbox(SandboxedEnvironment):
    """Jinja2's sandbox, with the caps of this module on what a template writes and makes."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _CountedConcat

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.globals["range"] = _bounded_range
        self._safe: dict[tuple[type, str], bool] = {}
        self._trusted: dict[int, Callable[..., Any]] = {}  # by id: kept, so no id is reused

    def trust(self, functions: Iterable[Callable[..., Any]]) -> None:
        """Let templates call `functions` (followupd's own helpers, which format a value)
        without the sandbox's checks of each call, as they are known safe; what they make is
        still counted."""
        self._trusted.update((id(function), function) for function in functions)

    def getattr(self, obj: Any, attribute: str) -> Any:
        """The sandbox's ``obj.attribute``, its safety decided once per type and name.

        Jinja's `is_safe_attribute` looks at the object's type and the name only
        (not the value), and a pass reads the same few fields of thousands of
        rows: deciding it again each time was most of what the sandbox cost.
        Values other than plain data (a method: perhaps a ``str.format`` to
        wrap) take Jinja's own path.
        """
        try:
            value = getattr(obj, attribute)
        except AttributeError:
            return super().getattr(obj, attribute)  # an item, or undefined
        if type(value) not in _PLAIN:
            return super().getattr(obj, attribute)
        kind = (type(obj), attribute)
        safe = self._safe.get(kind)
        if safe is None:
            safe = self._safe[kind] = self.is_safe_attribute(obj, attribute, value)
        return value if safe else self.unsafe_undefined(obj, attribute)

    @staticmethod
    def made(value: Any) -> Any:
        """What ``a ~ b`` made, counted (see `_CountedConcat`)."""
        return _made(value)

    @staticmethod
    def concat(parts: Iterable[str]) -> str:
        """Joins what ``{% set %}`` blocks, macros and filter blocks wrote, counted."""
        return str(_made("".join(parts)))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, _SIZED) and type(times) is int:
                    _refuse(len(sequence) * times, "this multiplication")
        elif operator == "**" and type(left) is int and type(right) is int:
            bits = right * max(abs(left).bit_length() - 1, 0)
            if bits > MAX_POWER_BITS:
                raise TooLong(f"{left} ** {right} would have over {MAX_POWER_BITS:,} bits")
        elif operator == "%" and isinstance(left, str):
            arguments = right if isinstance(right, tuple) else (right,)
            _refuse(_format_size(left, *arguments), "this format")
        return _made(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        helper = __self._trusted.get(id(__obj))
        if helper is not None and helper is __obj:  # `money(...)`, `day(...)`
            kwargs.pop("_block_vars", None)  # what Jinja passes along for a context function
            kwargs.pop("_loop_vars", None)
            return _made(helper(*args, **kwargs))
        method = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        if isinstance(getattr(method, "__self__", None), str):
            measure = _STR_METHOD_SIZES.get(getattr(method, "__name__", ""))
            size = _size_of(measure, method.__self__, *args, **kwargs)
            _refuse(size, f"str.{method.__name__}")
        return _made(super().call(__context, __obj, *args, **kwargs))
