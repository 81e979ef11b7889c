"""``shepherd --help`` and every help below it are written for the person at the terminal: every
command, group, argument and option says what it is for, and no text is an internal docstring
(reST markup, class names, notes to maintainers)."""

from __future__ import annotations

import re
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


def _rendered_help(path: str, command: click.Command) -> str:
    """The help ``shepherd ... --help`` prints for ``command``, on one line."""
    with click.Context(command, info_name=path, terminal_width=200) as ctx:
        return " ".join(command.get_help(ctx).split())


def test_help_keeps_bracketed_text_and_shows_flags_bare() -> None:
    """Help texts are printed as written: "[the agent's timeout]" is not eaten as markup, a flag
    takes no value, and arguments read as upper-case placeholders."""
    lost, typed_flags, lower_args = [], [], []
    for path, command in _tree():
        shown = _rendered_help(path, command)
        for param in command.params:
            bracketed = re.findall(r"\[[^\]]+\]", getattr(param, "help", None) or "")
            lost += [(path, text) for text in bracketed if text not in shown]
            if isinstance(param, click.Argument) and not (param.metavar or "").isupper():
                lower_args.append(f"{path} {param.name}")
        if "<bool>" in shown:
            typed_flags.append(path)
    assert (lost, typed_flags, lower_args) == ([], [], [])
