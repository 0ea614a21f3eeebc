"""Message templates: one Jinja2 file per rule and step, in French and English.

Each template defines blocks: ``subject`` (one line), ``text`` (the plain
body) and optionally ``html``. A template is looked up as
``LANG/RULE/STEP.j2``, then ``LANG/RULE/default.j2``, first in the user's
template directories (an owner's, then ``[templates]``'s), then in the
shipped ones, so a user can override any message. A user's templates run in
Jinja2's sandbox: a template can format the values it is given, not reach into
Python. The shipped ones are followupd's own code and run without its checks,
in an environment that loads nothing but them.

Jinja2, the sandbox and babel are loaded when a template is first looked up or
a helper first made, not when this module is: a pass that renders nothing new
(most ticks) never loads them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import nullcontext
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property, lru_cache
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary, WeakSet

from followupd.config.owners import OwnerEntry
from followupd.config.settings import Settings
from followupd.errors import FollowupdError

if TYPE_CHECKING:
    from babel import Locale
    from jinja2 import Environment, FileSystemLoader, Template
    from jinja2.runtime import Context

    from followupd.templates.sandbox import BoundedSandbox

SHIPPED = Path(__file__).parent
# line breaks of any kind and runs of plain spaces; not the no-break spaces of
# French typography ("12 000,00 €")
_DOUBLE_STOP = re.compile(r"(?<!\.)\.\.(?!\.)")
_ONE_LINE = re.compile(r"[\r\n\t\v\f\x1c-\x1f\x85\u2028\u2029 ]+")
LOCALES = {"fr": "fr_FR", "en": "en_US"}
# the day with its weekday and without the year, as each language writes it
WEEKDAY_PATTERNS = {"fr": "EEEE d MMMM", "en": "EEEE, MMMM d"}


class TemplateProblem(FollowupdError):
    """A template could not be rendered; the message names the file and the line."""

    def __init__(self, file: str, line: int | None, detail: str) -> None:
        self.file, self.line, self.detail = file, line, detail
        where = f"{file}, line {line}" if line else file
        super().__init__(f"template {where}: {detail}")

    @classmethod
    def of(
        cls,
        error: Exception,
        template: Template | None,
        name: str = "",
        paused: Iterator[str] | None = None,
    ) -> TemplateProblem:
        """The problem `error` is, at the innermost template line it went through.

        `paused` is the block being rendered, when the error was raised
        between two of its chunks (by `written`): its line is where it stopped.
        """
        from jinja2 import Template, TemplateError, TemplateSyntaxError

        file = (template.filename if template else None) or name
        line = None
        if isinstance(error, TemplateSyntaxError):
            file, line = error.filename or file, error.lineno
            return cls(file, line, error.message or str(error))
        frames = [(trace.tb_frame, trace.tb_lineno) for trace in _traceback(error)]
        frames += [(frame, frame.f_lineno) for frame in _paused_frames(paused)]
        for frame, number in frames:  # Jinja's frames know their template and map their lines
            found = frame.f_globals.get("__jinja_template__")
            if isinstance(found, Template):
                file = found.filename or file
                line = found.get_corresponding_lineno(number)
        if isinstance(error, TemplateError):
            return cls(file, line, str(error))
        return cls(file, line, f"{type(error).__name__}: {error}")


def _traceback(error: BaseException) -> Iterator[TracebackType]:
    trace = error.__traceback__
    while trace is not None:
        yield trace
        trace = trace.tb_next


def _paused_frames(generator: Any) -> Iterator[FrameType]:
    """The frames of a paused generator and of those it delegates to, outermost first."""
    while generator is not None and getattr(generator, "gi_frame", None) is not None:
        yield generator.gi_frame
        generator = generator.gi_yieldfrom


class Templates:
    """Renders the blocks of the template for a rule, a step and a language."""

    def __init__(self, *user_dirs: Path | None) -> None:
        """Templates found in `user_dirs` (the first that has one wins), else the shipped ones."""
        self._dirs = [path for path in user_dirs if path]
        self._found: dict[tuple[str, str, str], Template] = {}
        self._globals: dict[int, dict[str, Any]] = {}  # by id(template): its globals, as a dict
        self._helpers: dict[str, dict[str, Any]] = {}  # by language: `helpers`, trusted

    @cached_property
    def env(self) -> BoundedSandbox:
        """The sandbox the user's templates run in, made (and Jinja2 loaded) when one is used.

        It loads from the user's directories, then the shipped ones: a user template
        may include a shipped one, which then runs in the sandbox too.
        """
        from jinja2 import ChoiceLoader, FileSystemLoader

        from followupd.templates.sandbox import BoundedSandbox

        loaders = [FileSystemLoader(str(path)) for path in [*self._dirs, SHIPPED]]
        sandbox = BoundedSandbox(loader=ChoiceLoader(loaders), **_options())
        for made in self._helpers.values():
            sandbox.trust(made.values())
        return sandbox

    @cached_property
    def shipped(self) -> Environment:
        """The environment followupd's own templates run in, not sandboxed: they are our code.

        The sandbox's checks of what they are known to do were a quarter of their
        rendering, 5 % of a first pass. It loads from the shipped directory only,
        so that nothing of the user's runs outside the sandbox; what they write is
        capped all the same (`written`), what they make on the way is not counted.
        """
        from jinja2 import Environment, FileSystemLoader

        # autoescape off as in the sandbox: the blocks are plain text, the html ones escape
        return Environment(loader=FileSystemLoader(str(SHIPPED)), **_options())  # noqa: S701

    @cached_property
    def _user_loaders(self) -> list[FileSystemLoader]:
        from jinja2 import FileSystemLoader

        return [FileSystemLoader(str(path)) for path in self._dirs]

    def template(self, language: str, rule: str, step: str) -> Template:
        found = self._found.get((language, rule, step))
        if found is None:
            from jinja2 import TemplateNotFound, TemplateSyntaxError

            names = [f"{language}/{rule}/{step}.j2", f"{language}/{rule}/default.j2"]
            try:
                found = self._select(names)
            except TemplateNotFound:
                raise LookupError(f"no template {' or '.join(names)}") from None
            except TemplateSyntaxError as error:
                raise TemplateProblem.of(error, None, names[0]) from error
            self._found[(language, rule, step)] = found
        return found

    def _select(self, names: list[str]) -> Template:
        """The first of `names` found, a user's first (in the sandbox), else a shipped one."""
        from jinja2 import TemplateNotFound, TemplatesNotFound

        for name in names:
            if any(_holds(loader, self.shipped, name) for loader in self._user_loaders):
                return self.env.get_template(name)
            try:
                return self.shipped.get_template(name)
            except TemplateNotFound:
                continue
        raise TemplatesNotFound(names)

    def _globals_of(self, template: Template) -> dict[str, Any]:
        found = self._globals.get(id(template))
        if found is None:
            found = self._globals[id(template)] = dict(template.globals)
        return found

    def _helpers_of(self, language: str) -> dict[str, Any]:
        found = self._helpers.get(language)
        if found is None:
            found = self._helpers[language] = helpers(language)
            if "env" in self.__dict__:  # else trusted when the sandbox is made
                self.env.trust(found.values())
        return found

    def render(
        self, language: str, rule: str, step: str, block: str, values: Mapping[str, Any]
    ) -> str:
        return self.render_in(self.context(language, rule, step, values), block)

    def context(
        self, language: str, rule: str, step: str, values: Mapping[str, Any]
    ) -> tuple[Template, Context]:
        """The template for `rule` and `step` in `language`, and a context of `values` for it:
        each of its blocks can be rendered in that context (`render_in`), as a block
        only reads the context it is given."""
        template = self.template(language, rule, step)
        # the template's globals, the values and the helpers in one dict, made here: Jinja's
        # own merge (a ChainMap walked for each new context) cost a third of a short render
        from jinja2.runtime import new_context

        template_globals = self._globals_of(template)
        shared = {**template_globals, **values, **self._helpers_of(language)}
        # as `template.new_context(shared, shared=True)`, given the globals as the dict
        # made once: Jinja's own, a ChainMap, is walked for each new context
        context = new_context(
            template.environment, template.name, template.blocks, shared, True, template_globals
        )
        return template, context

    @staticmethod
    def render_in(made: tuple[Template, Context], block: str) -> str:
        """`block` of a template, rendered in a context made for it (`context`)."""
        template, context = made
        if template.environment.sandboxed and _extends(template) and context not in _INHERITED:
            _inherit(template, context)
        # Jinja's blocks of the context: for each name, the block and those it overrides
        render_block = context.blocks.get(block)
        if not render_block:
            return ""
        text = _written_by(template, render_block[0](context)).strip()
        # "… Inc." at the end of a sentence: one full stop, not two (an ellipsis has three)
        return _DOUBLE_STOP.sub(".", text) if ".." in text else text

    def subject(
        self, language: str, rule: str, step: str, values: Mapping[str, Any]
    ) -> LazySubject:
        """The subject line, rendered when first needed: most intents of a pass are
        already recorded and never need it."""
        return LazySubject(self, language, rule, step, values)


class LazySubject:
    """A subject line rendered on first use, always one line (no header injection).

    Its body is rendered in the context made for the subject, which is then let go.
    """

    __slots__ = ("_args", "_blocks", "_made", "_text")

    def __init__(
        self, templates: Templates, language: str, rule: str, step: str, values: Mapping[str, Any]
    ) -> None:
        self._args = (templates, language, rule, step, values)
        self._text: str | None = None
        self._blocks: dict[str, str] = {}  # other blocks, rendered
        self._made: tuple[Template, Context] | None = None  # the template and its context

    def _rendered(self, block: str, keep: bool) -> str:
        """`block`, rendered in the context made for the subject, kept after if `keep`."""
        templates, language, rule, step, values = self._args
        made = self._made or templates.context(language, rule, step, values)
        self._made = made if keep else None  # not held by an intent kept for long (a plan)
        try:
            return templates.render_in(made, block)
        except BaseException:  # a block stopped midway may leave its context changed
            self._made = None
            raise

    def __str__(self) -> str:
        if self._text is None:
            self._text = one_line(self._rendered("subject", keep=True))
        return self._text

    @property
    def source(self) -> tuple[str, str, Mapping[str, Any]]:
        """The rule, the step its template is looked up by, and the values it is given."""
        _, _, rule, step, values = self._args
        return rule, step, values

    def text(self, block: str = "text") -> str:
        """Another block of the same template, with the same values (the body), rendered once:
        a rule gives one subject to the follow-ups that differ only by period or step."""
        found = self._blocks.get(block)
        if found is None:
            found = self._blocks[block] = self._rendered(block, keep=False)
        return found

    def __repr__(self) -> str:
        return repr(str(self))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazySubject | str):
            return str(self) == str(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))


# the contexts of templates that extend another whose blocks have been linked to their parents'
_INHERITED: WeakSet[Context] = WeakSet()
_EXTENDING: WeakKeyDictionary[Template, bool] = WeakKeyDictionary()


def _extends(template: Template) -> bool:
    """Whether a user's template extends another (``{% extends %}``); a shipped one never does."""
    found = _EXTENDING.get(template)
    if found is None:
        from jinja2 import nodes

        environment, name = template.environment, template.name
        if environment.loader is None or name is None:
            found = False
        else:
            source = environment.loader.get_source(environment, name)[0]
            found = bool(environment.parse(source).find(nodes.Extends))
        _EXTENDING[template] = found
    return found


def _inherit(template: Template, context: Context) -> None:
    """Link the blocks of a template that extends another to those of its parents, in
    `context`, as Jinja does when it renders the whole template: a block it does not
    define is its parent's, and ``super()`` finds the parent's. The whole template is
    rendered once for that, what it writes left aside, within the sandbox's bounds."""
    _written_by(template, template.root_render_func(context))
    _INHERITED.add(context)


def _written_by(template: Template, chunks: Iterator[str]) -> str:
    """What `template` writes as `chunks`, within the sandbox's bounds if it runs in it (a
    shipped template's is capped, what it makes along the way not counted); what goes wrong
    as a TemplateProblem naming the template and the line."""
    from followupd.templates.sandbox import TooLong, budget, written

    try:
        with budget() if template.environment.sandboxed else nullcontext():
            return written(chunks)
    except TooLong as error:  # perhaps between two chunks: where the block stopped
        raise TemplateProblem.of(error, template, paused=chunks) from error
    except Exception as error:  # a user template that fails, runs away or reaches too far
        raise TemplateProblem.of(error, template) from error


def _options() -> dict[str, Any]:
    """The options of both environments, the sandbox and the shipped templates'."""
    from followupd.templates.compiled import kept
    from followupd.templates.sandbox import FieldsUndefined

    return {
        "undefined": FieldsUndefined,
        "autoescape": False,
        "keep_trailing_newline": False,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "auto_reload": False,  # a new Templates is made when the config is reloaded
        "bytecode_cache": kept(),  # the command line's, between its processes
    }


def _holds(loader: FileSystemLoader, environment: Environment, name: str) -> bool:
    """Whether the user's directory of `loader` has a template `name`, as the sandbox's
    loader would find it there."""
    from jinja2 import TemplateNotFound

    try:
        loader.get_source(environment, name)
    except TemplateNotFound:
        return False
    return True


def one_line(text: str) -> str:
    """`text` on one line: its line breaks and runs of spaces made one space, then stripped.

    Most subjects have none: printable (no line break nor control character) and without
    two spaces in a row, they are left as they are without a regular expression's pass.
    """
    if not text.isprintable() or "  " in text:
        text = _ONE_LINE.sub(" ", text)
    return text.strip()


ELIDING = frozenset("AEIOUYÀÂÆÉÈÊËÎÏÔŒÙÛÜaeiouyàâæéèêëîïôœùûü")


def de(name: str) -> str:
    """French "de" before a name, elided before a vowel: "d'Atelier Lumen", "de Globex"."""
    return f"d'{name}" if name[:1] in ELIDING else f"de {name}"


@lru_cache(maxsize=16)
def babel_locale(name: str) -> Locale:
    """Babel's locale `name` ("fr_FR"), made once: given its name, each formatting call parses
    it into a new Locale (thousands a first pass). Not kept when it fails: an unknown name
    raises at each call, as it did."""
    from babel import Locale

    return Locale.parse(name)


@lru_cache(maxsize=16)
def helpers(language: str) -> dict[str, Any]:
    """The formatting helpers of a language (`day`, `weekday`, `moment`, `money`, `de`), which the
    templates are given and the formal letters use; memoised, as the same dates and amounts
    recur."""
    from babel.dates import format_date, format_datetime
    from babel.numbers import format_currency

    name = LOCALES.get(language, language)  # its Locale made on first use (`babel_locale`)

    @lru_cache(maxsize=8192)
    def day(value: date | datetime) -> str:
        text = format_date(value, format="long", locale=babel_locale(name))
        if language == "fr" and value.day == 1:
            text = "1er" + text.removeprefix("1")  # « 1er septembre », the French ordinal
        return text

    @lru_cache(maxsize=1024)
    def weekday(value: date | datetime) -> str:
        """The day with its weekday, without the year: "lundi 7 décembre", "Monday, December 7"."""
        text = format_date(
            value, WEEKDAY_PATTERNS.get(language, "EEEE d MMMM"), locale=babel_locale(name)
        )
        if language == "fr" and value.day == 1:
            text = text.replace(" 1 ", " 1er ", 1)
        return text

    def moment(value: datetime) -> str:
        return format_datetime(value, format="long", locale=babel_locale(name))

    @lru_cache(maxsize=8192)
    def money(amount: Decimal | float | int, currency: str) -> str:
        return format_currency(amount, currency, locale=babel_locale(name))

    return {"day": day, "weekday": weekday, "moment": moment, "money": money, "de": de}


def templates_of(settings: Settings, entry: OwnerEntry) -> Templates:
    """The owner's templates directory first, then ``[templates]``, then the shipped ones."""
    return Templates(entry.templates, settings.templates.directory)
