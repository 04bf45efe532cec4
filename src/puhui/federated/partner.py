"""The bank's client to its data partner, built once per process from ``party.toml``.

``PUHUI_FEDERATED_CONFIG`` names the guest's party file (the same one used for training:
the partner's URL and this party's TLS files); without it no partner is configured and a
federated champion always uses its fallback, saying so in every decision.
"""

from __future__ import annotations

import threading
from pathlib import Path

from puhui.federated.config import load_config
from puhui.federated.errors import FederatedError
from puhui.federated.online import ScoringClient
from puhui.settings import get_settings

_lock = threading.Lock()
_clients: dict[tuple[Path, float, float], ScoringClient] = {}


def partner_client() -> ScoringClient | None:
    """The configured partner's scoring client, or None when no partner is configured.

    Raises FederatedError when the configuration cannot be used (the caller falls back)."""
    settings = get_settings()
    path = settings.federated_config
    if path is None:
        return None
    key = (path, settings.federated_timeout_seconds, settings.federated_cooldown_seconds)
    with _lock:
        client = _clients.get(key)
        if client is None:
            config = load_config(path)
            if config.role != "guest":
                raise FederatedError(
                    f"{path}: the platform is the guest; this file is for the {config.role}"
                )
            client = _clients[key] = ScoringClient(
                config.peer_url,
                config.tls,
                timeout=settings.federated_timeout_seconds,
                cooldown=settings.federated_cooldown_seconds,
            )
        return client


def forget_partner_clients() -> None:
    """Drop cached clients (tests that change the settings need this)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
