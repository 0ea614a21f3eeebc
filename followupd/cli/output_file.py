"""A file a command writes (`invoice letter --out`, `report --png`): its directory is checked
when the command line is read, so a typo says so at once instead of failing after the work."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click


class OutputFile(click.Path):
    """A path to a file to write, whose directory exists and is writable."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False, writable=True, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        assert isinstance(path, Path)  # path_type=Path
        folder = path.parent
        if not folder.is_dir():
            self.fail(f"{str(path)!r}: the directory {str(folder)!r} does not exist", param, ctx)
        if not os.access(folder, os.W_OK):
            self.fail(f"{str(path)!r}: the directory {str(folder)!r} is not writable", param, ctx)
        return path
