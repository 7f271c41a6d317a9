"""Reading an `Authorization: Bearer <token>` header, the way every API here takes
its tokens (the chat session's, an agent's)."""
from __future__ import annotations


def bearer_token(authorization: str | None) -> str | None:
    """The token of a Bearer header, or None for anything else (missing, another scheme, empty)."""
    if authorization and authorization.startswith("Bearer "):
        return authorization[len("Bearer "):].strip() or None
    return None
