"""Typed Python client of the auth aggregation gateway.

`Gateway` / `AsyncGateway` are the hand-written layer (problems raised as `GatewayProblem`, retries
on `Retry-After`); the models and every operation are generated from the gateway's OpenAPI document
into `auth_gateway_client.generated` by `make client`.
"""

from auth_gateway_client.gateway import AsyncGateway, Gateway, GatewayProblem, RetryPolicy
from auth_gateway_client.generated.models import LoginResult, Problem, ProblemCode

__all__ = [
    "AsyncGateway",
    "Gateway",
    "GatewayProblem",
    "LoginResult",
    "Problem",
    "ProblemCode",
    "RetryPolicy",
]
