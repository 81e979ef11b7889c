"""The one rule for text Shepherd stores but does not control: make it storable, or refuse it.

Children write arbitrary bytes, and a runtime (another version, a broken one, a hostile one) can
send any JSON string. PostgreSQL ``text`` cannot hold NUL, and neither backend can encode a lone
surrogate (``"\\udc80"``, legal in JSON and in a Python ``str``) as UTF-8; either one made a
result unstorable and left its run ``finalizing`` forever. The rule, the same on every backend:

- **What a child or a runtime produced** (output tail, error, error class, boot id, the reason of
  a transition) is *stored with replacements*: every NUL and every lone surrogate becomes U+FFFD
  (REPLACEMENT CHARACTER), and a bounded column keeps its first ``max_chars`` characters. The
  runtime already decodes child output as UTF-8 with each invalid byte sequence replaced by
  U+FFFD, so U+FFFD always means "something here was not storable text".
- **What a person or a client sends as input** is *refused*, never rewritten: an input is what
  the child will read, so it must arrive exactly as sent or not at all (HTTP 422 naming the
  field, a manifest error naming the path, a one-line CLI error naming the byte offset).

Pure: no I/O. Must not: guess encodings, or strip anything but the characters above.
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
# NUL, and the UTF-16 surrogate range: a str holding one of these cannot be stored as UTF-8 text.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(value: str, max_chars: int | None = None) -> str:
    """``value`` with every NUL and lone surrogate replaced by U+FFFD, cut to ``max_chars``."""
    cleaned = _UNSTORABLE.sub(REPLACEMENT, value)
    return cleaned if max_chars is None else cleaned[:max_chars]


def storable_or_none(value: str | None, max_chars: int | None = None) -> str | None:
    return None if value is None else storable_text(value, max_chars)


def check_input_text(value: str) -> str:
    """``value`` unchanged, or ``ValueError`` saying why it cannot be an input."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return value
    if found.group() == "\x00":
        raise ValueError(f"must not contain NUL characters (first at character {found.start()})")
    raise ValueError(
        f"must be valid Unicode text (a lone surrogate at character {found.start()})"
    )

