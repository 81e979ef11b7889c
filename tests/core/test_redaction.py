"""The one secret-redaction rule: what it hides, what it leaves readable."""

from __future__ import annotations

import secrets

import pytest

from shepherd.core.redaction import REDACTED, find_secrets, holds_credential, redact, redact_argv

R = REDACTED


@pytest.mark.parametrize(("text", "expected"), [
    ("API_KEY=abc123 run", f"API_KEY={R} run"),
    ("GITHUB_TOKEN=short", f"GITHUB_TOKEN={R}"),
    ("--password=hunter2 --db-password=x", f"--password={R} --db-password={R}"),
    ("client_secret: s3", f"client_secret: {R}"),
    ("pytest --token abc -v", f"pytest --token {R} -v"),
    ("https://u:pw@host/x?token=zzz&a=1", f"https://u:{R}@host/x?token={R}&a=1"),
    ("redis://:s3cret@localhost:6379/0", f"redis://:{R}@localhost:6379/0"),
    ("Authorization: Bearer abcdefghijkl", f"Authorization: {R} {R}"),
    ("curl -H 'Bearer abcdefghijkl'", f"curl -H 'Bearer {R}'"),
    ("ghp_abcdefghijklmnopqrstuvwxyz0123", R),
    ("xoxb-1234567890-abcdefghij", R),
    ("sk-ant-abcdefghijklmnopqrstu", R),
    ("glpat-abcdefghijklmnopqrst", R),
    ("AKIAABCDEFGHIJKLMNOP", R),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig", R),
    ("0123456789abcdef0123456789abcdef0123", R),  # long, random-looking
])
def test_secret_looking_values_are_hidden(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert find_secrets(text)


@pytest.mark.parametrize("text", [
    "python3 -m pytest tests/ -x -q",
    "tokenizer=bert author=me PWD=/home/alice",
    "pytest tests/test_a_very_long_module_name_made_of_words_only.py",
    "sleep 60",
    "unix:///run/redis.sock",
    "https://example.com/path?page=2",
    "-p 8080",
    "--api-key -v",  # the next word is a flag, not a value
])
def test_ordinary_command_lines_stay_readable(text: str) -> None:
    assert redact(text) == text
    assert not find_secrets(text)


def test_a_generated_token_is_hidden_wherever_it_sits() -> None:
    token = secrets.token_urlsafe(32)
    assert token not in redact(f"run --header=x-{token} and {token}")


def test_a_command_line_hides_the_word_after_a_secret_flag_whatever_it_looks_like() -> None:
    argv = ["app", "--token", "x", "--password", "y y", "-p", "8080", "--verbose"]
    assert redact_argv(argv) == f"app --token {R} --password {R} -p 8080 --verbose"


def test_an_empty_command_line_is_empty() -> None:
    assert redact_argv([]) == ""


@pytest.mark.parametrize("run", ["x", "ab1.", "a" * 40 + "://"])
def test_a_long_output_is_searched_in_one_pass(run: str) -> None:
    """A 1 MB output of one long run (an input of 'x's echoed back): every rule scans it in
    linear time. The URL rule used to rescan the run from every position (a control plane stuck
    for minutes on a 256 KB output); this would not end within the suite's time."""
    text = run * (1_048_576 // len(run))
    assert not holds_credential(text)
    assert redact(text).count(REDACTED) == 0


def test_a_url_password_behind_a_long_glued_run_is_still_hidden() -> None:
    text = "see " + "a" * 40 + "https://user:hunter22@host/x"
    assert redact(text) == f"see {'a' * 40}https://user:{REDACTED}@host/x"
