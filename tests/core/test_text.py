"""The storage rule for text from children and runtimes, and the input check: table-driven."""

from __future__ import annotations

import pytest

from shepherd.core.text import REPLACEMENT, check_input_text, storable_or_none, storable_text

R = REPLACEMENT


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("plain", "plain"),
        ("", ""),
        ("a\x00b", f"a{R}b"),
        ("\x00\x00", R + R),
        ("lone \udc80 low", f"lone {R} low"),
        ("lone \ud800 high", f"lone {R} high"),
        ("pair 😀 kept", "pair 😀 kept"),
        (f"already {R}", f"already {R}"),
        ("tab\tnewline\n\x01 kept", "tab\tnewline\n\x01 kept"),
    ],
)
def test_storable_text_replaces_only_nul_and_lone_surrogates(raw: str, stored: str) -> None:
    assert storable_text(raw) == stored
    storable_text(raw).encode("utf-8")  # always encodable


def test_a_bounded_column_keeps_the_first_characters_after_replacement() -> None:
    assert storable_text("\x00" + "x" * 100, 4) == R + "xxx"
    assert storable_or_none(None, 4) is None
    assert storable_or_none("abcdef", 4) == "abcd"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("a\x00b", "NUL characters (first at character 1)"),
        ("ok \udc80", "lone surrogate at character 3"),
    ],
)
def test_an_input_that_cannot_be_stored_as_sent_is_refused_naming_where(
    raw: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_input_text(raw)


def test_a_storable_input_is_returned_unchanged() -> None:
    assert check_input_text("héllo\n😀") == "héllo\n😀"
