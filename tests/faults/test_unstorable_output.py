"""A child that writes NUL and invalid UTF-8, under a live ``shepherd up`` on PostgreSQL (whose
text columns cannot hold NUL): every run ends, with the output stored under the documented rule,
and nothing stays ``finalizing``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.fleet import running_fleet, wait_until
from tests.fixtures.sql import reset_postgres

MANIFEST = r"""
agents:
  - name: dirty
    command: ["sh", "-c", "cat >/dev/null; printf 'a\\000b\\n'; printf '\\377 end\\n'"]
    max_parallel: 2
"""


@pytest.mark.postgres
async def test_nul_output_on_postgresql_never_leaves_a_run_finalizing(
    tmp_path: Path, postgres_database: str
) -> None:
    await reset_postgres(postgres_database)
    env = {"SHEPHERD_DATABASE_URL": postgres_database}
    with running_fleet(tmp_path, MANIFEST, env) as fleet, fleet.api() as api:
        ids = [api.post("/api/executions", json={"agent": "dirty"}).json()["id"]
               for _ in range(3)]

        def done() -> list[dict[str, object]] | None:
            rows = [api.get(f"/api/executions/{eid}").json() for eid in ids]
            return rows if all(r["status"] in ("success", "failed") for r in rows) else None

        rows = wait_until(done, 60, "every run to end")
    assert [r["status"] for r in rows] == ["success"] * 3
    assert all(r["output_tail"] == "a\ufffdb\n\ufffd end\n" for r in rows)
