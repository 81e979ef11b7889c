"""The one backoff formula. Pure: the caller passes the random draw used for jitter."""

from __future__ import annotations


def compute_backoff(attempt: int, base_s: float, max_s: float, jitter: float, draw: float) -> float:
    """Exponential backoff for ``attempt`` (0-based), capped at ``max_s``.

    ``jitter`` is the fraction of the delay that is randomised (0 = none, 1 = full jitter);
    ``draw`` is a number in [0, 1) from the caller's random source.
    """
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    delay: float = min(max_s, base_s * 2.0**attempt)
    return delay * (1 - jitter) + delay * jitter * draw
