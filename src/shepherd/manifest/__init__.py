"""The fleet manifest: a YAML file that declares agents and schedules, applied idempotently."""
