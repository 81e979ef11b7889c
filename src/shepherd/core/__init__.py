"""Pure domain: statuses and transitions, timeouts, ids, classification, decisions.

Nothing in this package performs I/O or reads the clock; callers pass ``now``.
"""
