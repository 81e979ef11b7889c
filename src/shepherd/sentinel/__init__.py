"""The host sentinel (``shepherd sentinel``): a read-only observer of one host's process table.

It alerts on processes that live too long — those matching configured command-line patterns, and
those left behind by executions that already finished — through the alert engine, with its own
small SQLite store so it runs where the control plane's stores do not. ``collector`` reads the
process table (and nothing can signal a process from there), ``footprints`` reads the local
runtimes' records, ``config`` its lenient settings, ``forward`` the control plane seam,
``service`` the scan and its loop. The decisions are pure, in ``core.footprints`` and
``core.sentinel``.
"""
