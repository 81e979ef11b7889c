"""``/api/tokens``: API tokens, for unscoped admins only. A secret is shown once, at creation."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from shepherd.api.auth import FleetAdmin
from shepherd.api.bodies import TokenCreate
from shepherd.api.context import Ctx
from shepherd.api.views import TokenCreated, TokenView
from shepherd.core.ids import AgentName
from shepherd.services import tokens as service

router = APIRouter(prefix="/api/tokens", tags=["tokens"])


@router.post("", response_model=TokenCreated, status_code=status.HTTP_201_CREATED,
             summary="Create a token; the response holds its secret, shown this once")
async def create_token(ctx: Ctx, principal: FleetAdmin, body: TokenCreate) -> TokenCreated:
    created = await service.create_token(
        ctx.db, name=body.name, role=body.role,
        agent=AgentName(body.agent) if body.agent else None, now_ms=ctx.clock.now_ms(),
    )
    return TokenCreated(**TokenView.of(created.token).model_dump(), token=created.secret)


@router.get("", response_model=list[TokenView], summary="Tokens, without their secrets")
async def list_tokens(ctx: Ctx, principal: FleetAdmin) -> list[TokenView]:
    return [TokenView.of(t) for t in await service.list_tokens(ctx.db)]


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               summary="Revoke a token; it never verifies again")
async def revoke_token(ctx: Ctx, principal: FleetAdmin, token_id: str) -> Response:
    await service.revoke_token(ctx.db, token_id, ctx.clock.now_ms())
    return Response(status_code=status.HTTP_204_NO_CONTENT)
