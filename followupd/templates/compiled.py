"""Compiled templates kept between processes, so that a command does not compile them again.

Jinja2 parses a template and compiles it to Python code on first use in each
process: about 6 ms of CPU a template, a tenth of a second of `followupd plan`.
Jinja2's bytecode cache keeps that code in files; a file is used again only
for the same template source (its checksum), and here also only for the same
compiler: the loader's and the sandbox's source and Jinja2's version are part
of the checksum, since the sandbox changes the code the compiler writes. The
shipped templates, run outside the sandbox, compile to other code than the
user's: each environment's kind is part of the file's name.

The command line turns the cache on for its own process (`followupd run`
included) with `cache_place.keep_in`, which loads no Jinja2 (a command that
renders nothing, such as `sync`, never loads it), in the state directory
(mode 0700), beside the database: whoever can write there can change
followupd's data already. Elsewhere (the tests, a main(argv) inside another
program) templates are compiled as before. A cache that cannot be read or
written is no cache: the template is compiled.
"""

from __future__ import annotations

import hashlib
from contextlib import suppress
from functools import cache
from pathlib import Path

import jinja2
from jinja2 import Environment, FileSystemBytecodeCache
from jinja2.bccache import Bucket

from followupd.templates import cache_place

_COMPILER_SOURCES = ("loader.py", "sandbox.py")  # of this package: the environment's options


class CompiledTemplates(FileSystemBytecodeCache):
    """Jinja2's file cache of compiled templates, tied to this compiler, never failing a render."""

    def __init__(self, directory: Path) -> None:
        super().__init__(str(directory))
        self.path = directory

    def get_bucket(
        self, environment: Environment, name: str, filename: str | None, source: str
    ) -> Bucket:
        """The file of `name` compiled by `environment`: a sandbox's and a plain one's differ."""
        kind = "sandboxed" if environment.sandboxed else "plain"
        return super().get_bucket(environment, f"{kind}:{name}", filename, source)

    def get_source_checksum(self, source: str) -> str:
        return f"{_compiler()}-{super().get_source_checksum(source)}"

    def load_bytecode(self, bucket: Bucket) -> None:
        with suppress(OSError):  # not a directory, unreadable: compiled as without a cache
            super().load_bytecode(bucket)

    def dump_bytecode(self, bucket: Bucket) -> None:
        with suppress(OSError):  # no state directory yet, a read-only or full disk
            self.path.mkdir(exist_ok=True, mode=0o700)  # never the state directory: `init`'s
            super().dump_bytecode(bucket)


@cache
def _compiler() -> str:
    """What the compiled code depends on besides the template: Jinja2, the sandbox, options."""
    digest = hashlib.sha1(jinja2.__version__.encode(), usedforsecurity=False)
    for name in _COMPILER_SOURCES:
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()


def kept() -> CompiledTemplates | None:
    """The cache of this process, if the command line turned it on (`cache_place.keep_in`)."""
    directory = cache_place.directory()
    return None if directory is None else _cache_in(directory)


@cache
def _cache_in(directory: Path) -> CompiledTemplates:
    return CompiledTemplates(directory)
