"""The service layer: everything below the HTTP API. The API talks to it only (the import-linter
contracts in pyproject.toml say so), through these names."""

from gateway.cache.entry import LoginResult
from gateway.providers.base import Inputs
from gateway.providers.kind import Kind
from gateway.providers.registry import Provider, installed_kinds
from gateway.service.auth import AuthService
from gateway.service.limits import CallerBudget
from gateway.service.parts import ANONYMOUS, CacheOptions
from gateway.store.factory import StoreHealth

__all__ = [
    "ANONYMOUS",
    "AuthService",
    "CacheOptions",
    "CallerBudget",
    "Inputs",
    "Kind",
    "LoginResult",
    "Provider",
    "StoreHealth",
    "installed_kinds",
]
