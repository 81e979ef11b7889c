"""``shepherd --help`` and every help below it are written for the person at the terminal: every
command, group, argument and option says what it is for, and no text is an internal docstring
(reST markup, class names, notes to maintainers)."""

from __future__ import annotations

from collections.abc import Iterator

import click
import typer.main

from shepherd.app.commands import register
from shepherd.cli.commands import app

# What an internal docstring looks like: reST literals, code names, notes about the code.
INTERNAL_MARKS = ("``", "Remote", "Typer", "docstring", "self.", "module", ":class:", "TODO")


def _tree() -> Iterator[tuple[str, click.Command]]:
    register(app)
    root = typer.main.get_command(app)

    def walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
        yield path, command
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, f"{path} {name}")

    yield from walk(root, "shepherd")


def test_every_command_and_group_says_what_it_does() -> None:
    missing = [path for path, command in _tree() if not (command.help or "").strip()]
    assert missing == []


def test_every_argument_and_option_has_a_help_text() -> None:
    missing = [
        f"{path} {param.name}"
        for path, command in _tree()
        for param in command.params
        if not param.hidden and not (getattr(param, "help", None) or "").strip()
    ]
    assert missing == []


def test_no_help_text_is_an_internal_docstring() -> None:
    texts = [
        (path, text)
        for path, command in _tree()
        for text in [command.help or "", *(getattr(p, "help", None) or "" for p in command.params)]
    ]
    internal = [(path, text) for path, text in texts if any(m in text for m in INTERNAL_MARKS)]
    assert internal == []
