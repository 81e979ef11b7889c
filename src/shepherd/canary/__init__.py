"""The canary: a deterministic, continuous check that SQL, Redis, the runtimes and the process
table agree (DESIGN.md section 9). ``snapshot`` and ``invariants`` are pure; ``collect`` reads the
stores; ``service`` runs cycles, persists violations and alerts on changes."""
