"""The alert engine: signals in, decisions (``core.alerting``) persisted in SQL, messages out
through the outbox to Slack, Alertmanager, a JSON webhook and the log.

``AlertService.evaluate(source, active_signals)`` is the one entry point every alerting source
calls; ``sinks`` renders and configures the destinations. This package sits below the
controllers and the API (either may call it) and above the stores; it never sends anything
itself: the outbox sender does.
"""
