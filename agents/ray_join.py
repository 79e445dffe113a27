"""Joining a Ray cluster at ``host:port``: one clear line instead of 20 s of retries.

Ray (2.52 and later) may start a cluster with token authentication: ``ray start --head`` turns
it on when a token exists on the head (``~/.ray/auth_token``), and Ray 2.59 makes a token for a
local cluster by default. A driver given an explicit address authenticates only with
``RAY_AUTH_MODE=token`` set, and then reads its token, in Ray's order, from ``RAY_AUTH_TOKEN``,
the file ``RAY_AUTH_TOKEN_PATH`` names, or ``~/.ray/auth_token``. Without it ``ray.init`` retries
for 20 s and ends in a ``ConnectionError`` traceback; with token mode and no token at all, Ray
aborts the process. :func:`check_can_join` asks the cluster once, before ``ray.init``: it turns
token mode on when the cluster asks for a token and one is available (as ``ray.init`` does for
``address="auto"``), and otherwise raises ``ValueError`` saying what to set.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from pathlib import Path

__all__ = ["check_can_join"]

ADVICE = (
    "set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN=<the head's token> (`ray get-auth-token` on the "
    "head machine prints it)"
)


def check_can_join(address: str) -> None:
    """Raises ``ValueError`` with what to do when this process cannot join the cluster at
    ``address``; may set ``RAY_AUTH_MODE=token`` for this process. Forms other than
    ``host:port`` (``"auto"``, ``ray://...``) are left to Ray."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return
    _check_answers(host, int(port), address)
    mode = os.environ.get("RAY_AUTH_MODE")
    if mode == "token" and _token_source() is None:  # Ray would abort the process
        raise ValueError(f"no token was found for RAY_AUTH_MODE=token: {ADVICE}")
    if _accepts(address):
        return
    source = _token_source() if mode in (None, "token") else None
    if mode is None and source:
        _enable_token_mode()
        if _accepts(address):
            return
    raise ValueError(
        f"the Ray cluster at {address} requires a token, and {_why(mode, source)}: {ADVICE}"
    )


def _why(mode: str | None, source: str | None) -> str:
    if mode not in (None, "token"):
        return f"RAY_AUTH_MODE={mode} here"
    return f"it refused the token from {source}" if source else "no token was found here"


def _check_answers(host: str, port: int, address: str) -> None:
    """A wrong address fails in 5 s rather than after Ray's minute of retries."""
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as e:
        raise ValueError(
            f"nothing answers at --ray_address {address} ({e.strerror or e}): start the head "
            f"there with `ray start --head --port={port}`, or give its address"
        ) from None


def _token_source() -> str | None:
    """Where Ray would read a token from (its order of precedence), or None."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path:  # Ray aborts on an unreadable or empty file rather than fall back
        if not _has_text(Path(path)):
            raise ValueError(
                f"RAY_AUTH_TOKEN_PATH={path}: no token in that file; point it at a file "
                "holding the head's token, or unset it"
            )
        return f"RAY_AUTH_TOKEN_PATH ({path})"
    default = Path.home() / ".ray" / "auth_token"
    return "~/.ray/auth_token" if _has_text(default) else None


def _has_text(path: Path) -> bool:
    try:
        return bool(path.read_text().strip())
    except OSError:
        return False


def _accepts(address: str) -> bool:
    """Whether the cluster's GCS accepts this process's credentials: one request, no retries.
    Any other failure is left to ``ray.init``, which reports it."""
    from ray._raylet import GcsClient
    from ray.exceptions import AuthenticationError

    try:
        with _quiet_fd2():
            GcsClient(address=address)
    except AuthenticationError:
        return False
    except Exception:  # noqa: BLE001 - not an authentication problem
        return True
    return True


def _enable_token_mode() -> None:
    """Token mode for this process, as Ray itself turns it on: the environment variable, and
    Ray's cached config re-read from it."""
    from ray._raylet import Config

    os.environ["RAY_AUTH_MODE"] = "token"
    Config.initialize("")


@contextlib.contextmanager
def _quiet_fd2():
    """Ray's C++ client logs each refused request on file descriptor 2; the caller says what
    went wrong in one line instead."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
