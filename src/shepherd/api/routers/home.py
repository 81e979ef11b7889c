"""``/``: a plain landing page with the links that matter, until the dashboard arrives."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

import shepherd

router = APIRouter(tags=["home"])

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shepherd</title>
<style>body{{font-family:system-ui,sans-serif;max-width:42rem;margin:3rem auto;line-height:1.5}}
code{{background:#f3f3f3;padding:0 .3em}}</style></head>
<body><h1>Shepherd {version}</h1>
<p>The control plane is running. The dashboard is not built yet; until it is:</p>
<ul>
<li><a href="/docs">REST API (OpenAPI)</a> &mdash; authorize with the token in
<code>admin.token</code> under the data dir</li>
<li><a href="/metrics">Prometheus metrics</a></li>
<li><a href="/readyz">Readiness</a></li>
<li>On this machine: <code>shepherd agents ls</code>, <code>shepherd executions ls</code></li>
</ul></body></html>
"""


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def home() -> HTMLResponse:
    return HTMLResponse(PAGE.format(version=shepherd.__version__))
