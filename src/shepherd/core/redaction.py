"""The one rule for what looks like a secret in free text, and how it is hidden.

Used wherever text that may carry credentials leaves its owner: a command line the sentinel
reports (it goes to Slack, Alertmanager, another host), a URL in an error message, and any check
that scans stored text for leaked tokens (``find_secrets``). One rule, so what one place hides
another cannot show.

What counts as a secret:

- the value of a flag or assignment whose name says so (``--token X``, ``--password=X``,
  ``API_KEY=X``, ``Authorization: X``; ``-p`` is not one: too common to mean a password);
- the password of a URL's credentials (``scheme://user:PASSWORD@host``) and the value of a query
  parameter whose name says so (``?token=X``);
- an ``Authorization``-style ``Bearer X`` / ``Basic X``;
- a token with a well-known issuer prefix (GitHub, Slack, OpenAI/Anthropic-style ``sk-``, GitLab,
  AWS access keys, JSON Web Tokens);
- any long random-looking run of ``[A-Za-z0-9_-]`` (at least ``RANDOM_TOKEN_MIN_CHARS``, mixing
  letters and digits): generated tokens (``secrets.token_urlsafe``) look like that.

Pure: no I/O. It errs towards hiding (a 40-character commit hash is hidden too): a redacted line
costs a reader a little, a leaked token costs a rotation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"
# 32 characters of mixed letters and digits: shorter runs are ids and words, not secrets.
RANDOM_TOKEN_MIN_CHARS = 32

# A name that says its value is secret: ``GITHUB_TOKEN``, ``--db-password``, ``api_key``. Not
# ``PWD`` (the working directory) nor ``tokenizer`` / ``author``: a keyword ends the name or is
# followed by a separator.
_SECRET_NAME = (r"[A-Za-z0-9_.-]*(?:token|secret|passw(?:or)?d|api[_-]?key|apikey|access[_-]?key"
                r"|private[_-]?key|auth|authorization|credentials?|session[_-]?key)"
                r"(?:[_.-][A-Za-z0-9_.-]*)?")
# ``--token=X``, ``API_KEY=X``, ``password: X`` (the value runs to the next blank, quote or &).
_ASSIGNED = re.compile(rf"(?i)(?<![A-Za-z0-9_.-])(?P<name>-{{0,2}}{_SECRET_NAME})"
                       rf"(?P<sep>=|:[ \t]*)(?P<value>[^\s'\"&]+)")
# ``--token X``: as two words of a command line, and inside a line of text.
_FLAG = re.compile(rf"(?i)^-{{1,2}}{_SECRET_NAME}$")
_FLAG_SPACED = re.compile(rf"(?i)(?<![A-Za-z0-9_.-])(?P<name>-{{1,2}}{_SECRET_NAME})"
                          rf"(?P<sep>[ \t]+)(?P<value>[^\s'\"&-][^\s'\"&]*)")
# A scheme is short: bounding its run keeps a search linear in the text (unbounded, a long run of
# letters without "://" costs a rescan from every position: minutes for a 256 KB output).
_URL_PASSWORD = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.-]{0,31}://[^/\s:@]*:)(?P<value>[^@\s/]+)@")
_BEARER = re.compile(r"(?i)\b(?P<head>(?:bearer|basic)\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})")
_ISSUED = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|sk-[A-Za-z0-9_-]{16,}|glpat-[A-Za-z0-9_-]{16,}|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)"
)
_RANDOM = re.compile(rf"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{{{RANDOM_TOKEN_MIN_CHARS},}}"
                     rf"(?![A-Za-z0-9_-])")


def looks_random(token: str) -> bool:
    """A long run of letters and digits, both present: what a generated credential looks like."""
    return (len(token) >= RANDOM_TOKEN_MIN_CHARS and any(c.isdigit() for c in token)
            and any(c.isalpha() for c in token))


def redact(text: str) -> str:
    """``text`` with every secret-looking value replaced by ``[redacted]``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{REDACTED}@", text)
    text = _BEARER.sub(lambda m: f"{m['head']}{REDACTED}", text)
    for pattern in (_ASSIGNED, _FLAG_SPACED):
        text = pattern.sub(_hide_value, text)
    text = _ISSUED.sub(REDACTED, text)
    return _RANDOM.sub(lambda m: REDACTED if looks_random(m[0]) else m[0], text)


def _hide_value(match: re.Match[str]) -> str:
    return f"{match['name']}{match['sep']}{REDACTED}"


def redact_argv(argv: Iterable[str]) -> str:
    """A command line as one redacted string: each word redacted, and the word after a flag that
    names a secret (``--token X``) hidden whatever it looks like."""
    words: list[str] = []
    hide_next = False
    for word in argv:
        words.append(REDACTED if hide_next and word else redact(word))
        hide_next = bool(_FLAG.match(word))
    return " ".join(words)


def find_secrets(text: str) -> bool:
    """True when ``text`` holds something ``redact`` would hide."""
    return redact(text) != text


def holds_credential(text: str) -> bool:
    """True when ``text`` holds an unmistakable credential: a token with an issuer's prefix, a
    URL's password or a ``Bearer``/``Basic`` value. Narrower than ``find_secrets`` (no random-run
    rule): a stored output full of commit hashes is not a leak worth a page."""
    return any(p.search(text) for p in (_ISSUED, _URL_PASSWORD, _BEARER))
