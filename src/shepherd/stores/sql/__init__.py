"""SQL: the source of truth. Tables, migrations and repositories; the only place with SQL."""
