"""The services' shared-token scheme, in one place for the rollout server and the reward service.

A service takes its token from its `--token` flag or an environment variable (`resolve_token`). A client
sends `Authorization: Bearer <token>` (`bearer_header`); the service compares the whole header with the
expected one in constant time (`bearer_refusal`), so the comparison's duration says nothing about the token.
A service bound beyond loopback without a token is refused at start-up (`check_exposure`) unless the
operator says `--insecure-no-token`, which only warns.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from dataclasses import dataclass

from rft.errors import RftError, short_repr


class ExposedWithoutToken(RftError):
    """A service would listen beyond loopback with nobody's token required."""


@dataclass(frozen=True)
class Refusal:
    """Why a request's credentials were refused: 401 without any, 403 with the wrong ones."""

    status: int
    message: str


def resolve_token(flag: str | None, env_var: str) -> str | None:
    """The token from the command line, else from `env_var`; None when neither holds a non-empty one."""
    return flag or os.environ.get(env_var) or None


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps a server on this machine: 'localhost', 127.0.0.0/8 or ::1. Anything else
    (0.0.0.0, ::, a host name, an interface's address) is reachable from elsewhere."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False


def bearer_header(token: str | None) -> dict[str, str]:
    """The header that carries `token` (none without one)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def bearer_refusal(authorization: str | None, token: str) -> Refusal | None:
    """None when the `Authorization` header is exactly 'Bearer <token>' (compared in constant time)."""
    if not authorization:
        return Refusal(401, "this endpoint needs the service's token: send 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode()):
        return Refusal(403, "wrong token in the Authorization header")
    return None


def check_exposure(host: str, token: str | None, *, env_var: str, insecure: bool) -> str | None:
    """Refuse (ExposedWithoutToken) to listen on `host` beyond loopback without a token, unless `insecure`;
    then return the warning to print. None when there is nothing to say."""
    if token or is_loopback(host):
        return None
    if not insecure:
        raise ExposedWithoutToken(
            f"refusing to listen on {short_repr(host)} without a token: pass --token or set ${env_var} "
            "(or bind 127.0.0.1, or pass --insecure-no-token to accept anyone who can reach the port)"
        )
    return f"WARNING: listening on {short_repr(host)} without a token: anyone who reaches the port may use it"
