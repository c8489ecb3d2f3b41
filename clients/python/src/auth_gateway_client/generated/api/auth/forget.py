from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.ai_cloud_login_inputs import AiCloudLoginInputs
from ...models.bind_check_inputs import BindCheckInputs
from ...models.jscode_2_session_inputs import Jscode2SessionInputs
from ...models.mini_app_auth_inputs import MiniAppAuthInputs
from ...models.problem import Problem
from ...models.token_create_inputs import TokenCreateInputs
from ...models.we_chat_login_inputs import WeChatLoginInputs
from ...types import UNSET, Response, Unset


def _get_kwargs(
    provider: str,
    *,
    body: AiCloudLoginInputs
    | BindCheckInputs
    | Jscode2SessionInputs
    | MiniAppAuthInputs
    | TokenCreateInputs
    | WeChatLoginInputs,
    x_request_id: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(x_request_id, Unset):
        headers["X-Request-ID"] = x_request_id

    _kwargs: dict[str, Any] = {
        "method": "delete",
        "url": "/auth/{provider}".format(
            provider=quote(str(provider), safe=""),
        ),
    }

    if isinstance(body, WeChatLoginInputs):
        _kwargs["json"] = body.to_dict()
    elif isinstance(body, BindCheckInputs):
        _kwargs["json"] = body.to_dict()
    elif isinstance(body, AiCloudLoginInputs):
        _kwargs["json"] = body.to_dict()
    elif isinstance(body, TokenCreateInputs):
        _kwargs["json"] = body.to_dict()
    elif isinstance(body, MiniAppAuthInputs):
        _kwargs["json"] = body.to_dict()
    else:
        _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Any | Problem | None:
    if response.status_code == 204:
        response_204 = cast(Any, None)
        return response_204

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

    if response.status_code == 405:
        response_405 = Problem.from_dict(response.json())

        return response_405

    if response.status_code == 408:
        response_408 = Problem.from_dict(response.json())

        return response_408

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())

        return response_413

    if response.status_code == 415:
        response_415 = Problem.from_dict(response.json())

        return response_415

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())

        return response_429

    if response.status_code == 500:
        response_500 = Problem.from_dict(response.json())

        return response_500

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Any | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    provider: str,
    *,
    client: AuthenticatedClient,
    body: AiCloudLoginInputs
    | BindCheckInputs
    | Jscode2SessionInputs
    | MiniAppAuthInputs
    | TokenCreateInputs
    | WeChatLoginInputs,
    x_request_id: str | Unset = UNSET,
) -> Response[Any | Problem]:
    """Forget the cached credential through any provider (the body is that provider's kind's input)

    Args:
        provider (str):
        x_request_id (str | Unset):
        body (AiCloudLoginInputs | BindCheckInputs | Jscode2SessionInputs | MiniAppAuthInputs |
            TokenCreateInputs | WeChatLoginInputs):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Problem]
    """

    kwargs = _get_kwargs(
        provider=provider,
        body=body,
        x_request_id=x_request_id,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    provider: str,
    *,
    client: AuthenticatedClient,
    body: AiCloudLoginInputs
    | BindCheckInputs
    | Jscode2SessionInputs
    | MiniAppAuthInputs
    | TokenCreateInputs
    | WeChatLoginInputs,
    x_request_id: str | Unset = UNSET,
) -> Any | Problem | None:
    """Forget the cached credential through any provider (the body is that provider's kind's input)

    Args:
        provider (str):
        x_request_id (str | Unset):
        body (AiCloudLoginInputs | BindCheckInputs | Jscode2SessionInputs | MiniAppAuthInputs |
            TokenCreateInputs | WeChatLoginInputs):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Problem
    """

    return sync_detailed(
        provider=provider,
        client=client,
        body=body,
        x_request_id=x_request_id,
    ).parsed


async def asyncio_detailed(
    provider: str,
    *,
    client: AuthenticatedClient,
    body: AiCloudLoginInputs
    | BindCheckInputs
    | Jscode2SessionInputs
    | MiniAppAuthInputs
    | TokenCreateInputs
    | WeChatLoginInputs,
    x_request_id: str | Unset = UNSET,
) -> Response[Any | Problem]:
    """Forget the cached credential through any provider (the body is that provider's kind's input)

    Args:
        provider (str):
        x_request_id (str | Unset):
        body (AiCloudLoginInputs | BindCheckInputs | Jscode2SessionInputs | MiniAppAuthInputs |
            TokenCreateInputs | WeChatLoginInputs):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Problem]
    """

    kwargs = _get_kwargs(
        provider=provider,
        body=body,
        x_request_id=x_request_id,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    provider: str,
    *,
    client: AuthenticatedClient,
    body: AiCloudLoginInputs
    | BindCheckInputs
    | Jscode2SessionInputs
    | MiniAppAuthInputs
    | TokenCreateInputs
    | WeChatLoginInputs,
    x_request_id: str | Unset = UNSET,
) -> Any | Problem | None:
    """Forget the cached credential through any provider (the body is that provider's kind's input)

    Args:
        provider (str):
        x_request_id (str | Unset):
        body (AiCloudLoginInputs | BindCheckInputs | Jscode2SessionInputs | MiniAppAuthInputs |
            TokenCreateInputs | WeChatLoginInputs):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Problem
    """

    return (
        await asyncio_detailed(
            provider=provider,
            client=client,
            body=body,
            x_request_id=x_request_id,
        )
    ).parsed
