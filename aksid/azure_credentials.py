"""A TokenCredential that reads a bearer token from a file.

The sandbox (and any environment that mints tokens out of band) hands the Azure SDK clients this
instead of DefaultAzureCredential. Live code imports it, so it must not depend on aksid.sandbox.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

if TYPE_CHECKING:  # azure-core >= 1.31; the project allows 1.30, whose policy never calls get_token_info
    from azure.core.credentials import AccessTokenInfo, TokenRequestOptions

# The file carries no expiry; claim an hour so the SDK's bearer policy caches the token between
# requests instead of re-reading the file for every call.
_LIFETIME_SECONDS = 3600


class StaticTokenCredential:
    """Implements TokenCredential and SupportsTokenInfo over a token file.

    The file is read on every token request (not at construction) so that a token rotated in
    place is picked up once the SDK's cached one is discarded (after a 401, or after an hour).
    """

    def __init__(self, token_file: str | Path) -> None:
        self.token_file = Path(token_file) if str(token_file) else None

    def __repr__(self) -> str:  # never the token itself
        return f"{type(self).__name__}(token_file={str(self.token_file or '')!r})"

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """The token from the file; scopes, claims and tenant are accepted but cannot change it."""
        _require_scope(scopes)
        return AccessToken(self._read(), int(time.time()) + _LIFETIME_SECONDS)

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        # azure-core >= 1.31 prefers this method over get_token when a credential has it.
        from azure.core.credentials import AccessTokenInfo

        _require_scope(scopes)
        return AccessTokenInfo(self._read(), int(time.time()) + _LIFETIME_SECONDS, token_type="Bearer")

    def _read(self) -> str:
        if self.token_file is None:
            raise ClientAuthenticationError(message="StaticTokenCredential: no token file is configured")
        try:
            token = self.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ClientAuthenticationError(
                message=f"StaticTokenCredential: cannot read the token file {self.token_file}: {exc.strerror or exc}"
            ) from None
        if not token:
            raise ClientAuthenticationError(message=f"StaticTokenCredential: the token file {self.token_file} is empty")
        return token

    def close(self) -> None:
        """Nothing to release; present because SupportsTokenInfo requires it."""

    def __enter__(self) -> StaticTokenCredential:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _require_scope(scopes: tuple[str, ...]) -> None:
    # Same contract as azure-identity's credentials: an empty scope list is a programming error.
    if not scopes:
        raise ValueError("get_token requires at least one scope")
