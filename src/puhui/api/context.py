"""What an API handler knows about its caller, and how it reaches the platform.

Authentication (``api.auth``) runs before any ``/v1`` handler and leaves a ``PartnerContext``
on ``request.state.partner``; handlers take it with ``Depends(current_partner)`` and pass its
``institution_id`` to every use case, which is how tenant isolation reaches the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from puhui.bootstrap import Platform


@dataclass(frozen=True)
class PartnerContext:
    """The authenticated partner institution behind a request."""

    institution_id: str
    institution_code: str
    client_id: str

    @property
    def actor(self) -> str:
        """How this caller appears in the audit log."""
        return f"partner:{self.client_id}"


async def current_partner(request: Request) -> PartnerContext:
    # async: a trivial lookup should not cost a thread-pool hand-off on every request
    partner = getattr(request.state, "partner", None)
    if not isinstance(partner, PartnerContext):
        # Reaching a handler unauthenticated is a wiring bug, never a client error.
        raise RuntimeError("no authenticated partner on this request: is the router protected?")
    return partner


def platform_of(request: Request) -> Platform:
    platform = request.app.state.platform
    assert isinstance(platform, Platform)
    return platform


Partner = Annotated[PartnerContext, Depends(current_partner)]
"""A handler parameter of this type receives the authenticated partner."""
