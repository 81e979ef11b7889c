"""Reading an input from stdin (``shepherd run AGENT -``): as UTF-8 text, exactly as sent.

An input is what the child will read, so it is never rewritten: bytes that are not UTF-8, or a
NUL (which the store cannot keep), are refused with one line naming the byte offset, before
anything is sent. The server applies the same rule to inputs that arrive any other way.
"""

from __future__ import annotations

import sys

from shepherd.cli.remote import CliError

# Bad input, like a usage error: the command was never sent.
BAD_INPUT_EXIT_CODE = 2


def read_stdin_input() -> str:
    data = sys.stdin.buffer.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(
            f"stdin is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "an input must be sent as UTF-8", BAD_INPUT_EXIT_CODE,
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        raise CliError(f"stdin contains a NUL character (at offset {len(text[:nul].encode())}); "
                       "an input cannot hold one", BAD_INPUT_EXIT_CODE)
    return text
