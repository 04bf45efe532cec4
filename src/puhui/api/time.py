"""The time a request acts at.

Production always uses the server's clock. The simulator (``puhui simulate``) plays months of
business in minutes, so a server started for it with ``PUHUI_SIMULATION=1`` honours an
``X-Puhui-Simulated-Time`` header (ISO 8601 with offset). The header is ignored — not
rejected — everywhere else, so it can never move a real loan's clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from puhui.api.context import platform_of
from puhui.domain.clock import now_utc, require_aware

SIMULATED_TIME_HEADER = "X-Puhui-Simulated-Time"


async def request_time(request: Request) -> datetime:
    if platform_of(request).settings.simulation:
        raw = request.headers.get(SIMULATED_TIME_HEADER)
        if raw:
            try:
                return require_aware(datetime.fromisoformat(raw), SIMULATED_TIME_HEADER)
            except ValueError:
                pass
    return now_utc()


Now = Annotated[datetime, Depends(request_time)]
"""A handler parameter of this type receives the time the request acts at."""
