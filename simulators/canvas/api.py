"""The common start of every simulated API call: read parameters, authenticate, check permission."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from simulators.canvas.auth import Principal, TokenRegistry, bearer_token
from simulators.canvas.params import read_params


@dataclass(frozen=True)
class ApiCall:
    """The authenticated caller and the merged query/body parameters of one request."""

    principal: Principal
    params: dict[str, Any]


async def begin(request: Request, tokens: TokenRegistry, *, manage: bool = False) -> ApiCall:
    """Authenticate the request (header, query or body token); ``manage`` also requires admin rights."""
    params = await read_params(request)
    token = bearer_token(request.headers, request.query_params)
    if token is None and isinstance(params.get("access_token"), str):
        token = params["access_token"]
    principal = tokens.authenticate(token)
    if manage:
        tokens.require_manage(principal)
    return ApiCall(principal, params)


def style_param(params: dict[str, Any], name: str) -> str:
    """``full`` or ``abbrev`` (the documented default) for outcome_style / outcome_group_style."""
    return "full" if params.get(name) == "full" else "abbrev"
