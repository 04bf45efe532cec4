"""A party's settings: one ``party.toml`` per party process, read with the standard library.

Each operator (the bank's, the data partner's) keeps one file naming the party's role, where it
listens, where its peer is, its TLS files, its data and how patient the runtime is with the
network. The file is the whole contract between the operator and ``puhui federated``: every
command of the group takes ``--config party.toml``, so the same file drives alignment,
training and serving.

Relative paths are resolved against the directory of the TOML file, not the working
directory, so a party's folder (config, certificates, data) can be moved or started from
anywhere. Every problem is reported at once, each as ``party.toml: peer.url: must start with
https://`` — file, field, rule — because an operator fixing a file by hand should not have to
run the command once per typo. Unknown settings are errors too: a misspelt ``timeout.mesage``
silently falling back to the default would be worse than refusing to start.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from puhui.federated.errors import FederatedError
from puhui.federated.pki import ROLES, PartyFiles, other_role

__all__ = [
    "ConfigError",
    "DataSettings",
    "NetworkSettings",
    "PartyConfig",
    "config_example",
    "load_config",
]

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_MIB = 1024 * 1024


class ConfigError(FederatedError):
    """``party.toml`` is missing, not TOML, or breaks rules; ``problems`` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class NetworkSettings:
    """How patient a party is with the network and its peer (seconds unless stated).

    * ``connect_timeout``: one TCP connect, TLS handshake or socket read/write.
    * ``message_timeout``: the longest :meth:`recv` waits for a message — long enough for the
      slowest step of the peer's computation (a Paillier batch, a tree level).
    * ``startup_timeout``: how long a starting party waits for its peer to come up, since the
      two operators start their processes by hand at different moments.
    * ``heartbeat``: while waiting for a message, check this often that the peer still
      answers, so a dead peer is noticed in about ``heartbeat * retries`` seconds rather than
      ``message_timeout``; 0 turns the check off.
    * ``retries``, ``backoff``, ``backoff_max``: attempts to deliver one message, with an
      exponential pause (``backoff``, doubled each time, at most ``backoff_max``) between them.
    * ``max_message_bytes``: the largest message accepted from the peer.
    """

    connect_timeout: float = 10.0
    message_timeout: float = 600.0
    startup_timeout: float = 300.0
    heartbeat: float = 5.0
    retries: int = 6
    backoff: float = 0.25
    backoff_max: float = 8.0
    max_message_bytes: int = 2048 * _MIB

    def backoff_delay(self, attempt: int) -> float:
        """The pause after failed attempt number ``attempt`` (0-based)."""
        return float(min(self.backoff_max, self.backoff * (2**attempt)))


@dataclass(frozen=True)
class DataSettings:
    """The party's own data: a CSV file, its id column and (guest only) its label column."""

    file: Path
    id_column: str
    label_column: str | None = None


@dataclass(frozen=True)
class PartyConfig:
    """One party's settings as loaded from ``party.toml`` (see :func:`config_example`)."""

    role: str
    listen_host: str
    listen_port: int
    peer_url: str
    tls: PartyFiles
    data: DataSettings
    network: NetworkSettings = field(default_factory=NetworkSettings)
    name: str | None = None
    run_id: str | None = None
    source: Path | None = None

    @property
    def peer_role(self) -> str:
        return other_role(self.role)

    @classmethod
    def load(cls, path: Path, *, check_files: bool = True) -> PartyConfig:
        """Read and validate ``path``; see :func:`load_config`."""
        return load_config(path, check_files=check_files)


# The schema: section -> key -> (kind, required). Kinds are checked by _Reader below.
_SCHEMA: dict[str | None, dict[str, tuple[str, bool]]] = {
    None: {"role": ("role", True), "name": ("text", False), "run_id": ("run_id", False)},
    "listen": {"host": ("text", False), "port": ("port", True)},
    "peer": {"url": ("url", True)},
    "tls": {"ca_cert": ("file", True), "cert": ("file", True), "key": ("file", True)},
    "data": {
        "file": ("file", True),
        "id_column": ("text", True),
        "label_column": ("text", False),
    },
    "timeouts": {
        "connect": ("positive", False),
        "message": ("positive", False),
        "startup": ("positive", False),
        "heartbeat": ("non_negative", False),
    },
    "retry": {
        "attempts": ("count", False),
        "backoff": ("positive", False),
        "backoff_max": ("positive", False),
    },
    "limits": {"max_message_mb": ("count", False)},
}


class _Reader:
    """Walks the parsed TOML against :data:`_SCHEMA`, collecting every problem."""

    def __init__(self, doc: Mapping[str, Any], base: Path, label: str, check_files: bool) -> None:
        self.doc = doc
        self.base = base
        self.label = label
        self.check_files = check_files
        self.problems: list[str] = []
        self.values: dict[str, Any] = {}

    def problem(self, name: str, rule: str) -> None:
        self.problems.append(f"{self.label}: {name}: {rule}")

    def run(self) -> None:
        sections = {k for k in _SCHEMA if k is not None}
        for key, value in self.doc.items():
            if key in sections:
                if not isinstance(value, dict):
                    self.problem(key, "must be a [section]")
            elif key not in _SCHEMA[None]:
                self.problem(key, "unknown setting")
        for section, keys in _SCHEMA.items():
            table = self.doc if section is None else self.doc.get(section, {})
            if not isinstance(table, dict):
                continue
            for key in table:
                if section is not None and key not in keys:
                    self.problem(f"{section}.{key}", "unknown setting")
            for key, (kind, required) in keys.items():
                name = key if section is None else f"{section}.{key}"
                if key not in table:
                    if required:
                        self.problem(name, "required")
                    continue
                checked = self.check(name, kind, table[key])
                if checked is not None:
                    self.values[name] = checked

    def check(self, name: str, kind: str, value: Any) -> Any:
        """The checked (and converted) value, or None after recording the problem."""
        if kind in ("text", "role", "run_id", "url", "file"):
            return self.check_text(name, kind, value)
        integer = isinstance(value, int) and not isinstance(value, bool)
        if kind == "port":
            if integer and 1 <= value <= 65535:
                return value
            self.problem(name, "must be a whole number from 1 to 65535")
            return None
        if kind == "count":
            if integer and 1 <= value <= 100_000:
                return value
            self.problem(name, "must be a whole number of at least 1")
            return None
        if not (integer or isinstance(value, float)) or not math.isfinite(value):
            self.problem(name, "must be a number of seconds")
            return None
        if kind == "positive" and value <= 0:
            self.problem(name, "must be greater than 0")
            return None
        if value < 0:
            self.problem(name, "must be 0 or more")
            return None
        return float(value)

    def check_text(self, name: str, kind: str, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            self.problem(name, "must be a non-empty string")
            return None
        if kind == "role" and value not in ROLES:
            self.problem(name, f"must be 'guest' or 'host', not {value!r}")
            return None
        if kind == "run_id" and not _RUN_ID.fullmatch(value):
            self.problem(name, "must be 1-128 letters, digits, '.', '_', ':' or '-'")
            return None
        if kind == "url":
            return self.check_url(name, value)
        if kind == "file":
            path = Path(value).expanduser()
            path = path if path.is_absolute() else self.base / path
            if self.check_files and not path.is_file():
                self.problem(name, f"file not found: {path}")
                return None
            return path
        return value

    def check_url(self, name: str, value: str) -> str | None:
        if not value.startswith("https://"):
            self.problem(name, "must start with https:// (the parties talk over mutual TLS only)")
            return None
        parts = urlsplit(value)
        try:
            port = parts.port
        except ValueError:
            self.problem(name, "has an invalid port")
            return None
        if not parts.hostname:
            self.problem(name, "must name a host, e.g. https://partner.example.com:9443")
            return None
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            self.problem(name, "must be https://HOST:PORT only (no path, query or user)")
            return None
        return f"https://{parts.netloc}" if port else f"https://{parts.netloc}:443"


def load_config(path: Path, *, check_files: bool = True) -> PartyConfig:
    """Read ``party.toml`` at ``path``, resolve its paths, and validate every setting.

    Raises :class:`ConfigError` listing each problem as ``FILE: FIELD: RULE``. With
    ``check_files`` (the default) the TLS and data files must exist; tests and
    ``config-example`` checks may turn that off.
    """
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{label}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{label}: cannot read: {exc}"]) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{label}: not valid TOML: {exc}"]) from None
    return config_from_mapping(
        doc, base=path.parent, label=label, check_files=check_files, source=path
    )


def config_from_mapping(
    doc: Mapping[str, Any],
    *,
    base: Path,
    label: str = "party.toml",
    check_files: bool = True,
    source: Path | None = None,
) -> PartyConfig:
    """Validate an already parsed document (what :func:`load_config` does after reading)."""
    reader = _Reader(doc, base, label, check_files)
    reader.run()
    v = reader.values
    role = v.get("role")
    if role == "host" and "data.label_column" in v:
        reader.problem(
            "data.label_column",
            "only the guest holds labels; remove it from the host's file",
        )
    defaults = NetworkSettings()
    backoff = v.get("retry.backoff", defaults.backoff)
    backoff_max = v.get("retry.backoff_max", max(defaults.backoff_max, backoff))
    if backoff_max < backoff:
        reader.problem("retry.backoff_max", "must be at least retry.backoff")
    if reader.problems:
        raise ConfigError(reader.problems)
    network = NetworkSettings(
        connect_timeout=v.get("timeouts.connect", defaults.connect_timeout),
        message_timeout=v.get("timeouts.message", defaults.message_timeout),
        startup_timeout=v.get("timeouts.startup", defaults.startup_timeout),
        heartbeat=v.get("timeouts.heartbeat", defaults.heartbeat),
        retries=v.get("retry.attempts", defaults.retries),
        backoff=backoff,
        backoff_max=backoff_max,
        max_message_bytes=v.get("limits.max_message_mb", defaults.max_message_bytes // _MIB) * _MIB,
    )
    return PartyConfig(
        role=v["role"],
        listen_host=v.get("listen.host", "0.0.0.0"),
        listen_port=v["listen.port"],
        peer_url=v["peer.url"],
        tls=PartyFiles(ca_cert=v["tls.ca_cert"], cert=v["tls.cert"], key=v["tls.key"]),
        data=DataSettings(
            file=v["data.file"],
            id_column=v["data.id_column"],
            label_column=v.get("data.label_column"),
        ),
        network=network,
        name=v.get("name"),
        run_id=v.get("run_id"),
        source=source,
    )


def config_example(role: str) -> str:
    """A commented ``party.toml`` for ``role``, ready to edit (both parties on one machine)."""
    other_role(role)  # validates the role
    guest = role == "guest"
    port, peer_port = (9443, 9444) if guest else (9444, 9443)
    label = (
        'label_column = "bad"             # guest only: 1 = defaulted, 0 = repaid'
        if guest
        else "# (no label_column: only the guest holds labels)"
    )
    data = "guest.csv" if guest else "host.csv"
    who = "the bank: holds the labels" if guest else "the data partner: holds features"
    return f"""\
# party.toml for the {role} ({who}).
# Relative paths are resolved against this file's directory.
role = "{role}"
name = "{"示范银行" if guest else "数据伙伴"}"   # shown to operators only
# run_id = "2026-06-credit-v1"   # optional; if set, the other party must set the same.
#                                # If neither sets it, the guest names the run.

[listen]                         # where this party receives the peer's messages
host = "0.0.0.0"
port = {port}

[peer]
url = "https://localhost:{peer_port}"   # host must be a name in the peer's certificate

[tls]                            # from `puhui federated ca issue --role {role} ...`
ca_cert = "pki/ca.crt"
cert = "pki/{role}.crt"
{f'key = "pki/{role}.key"':<32} # mode 0600

[data]
file = "{data}"
id_column = "uscc"               # the shared business id (e.g. unified social credit code)
{label}

[timeouts]                       # seconds
connect = 10                     # one connect, TLS handshake or socket read/write
message = 600                    # longest wait for one message from the peer
startup = 300                    # how long to wait for the peer to come up
heartbeat = 5                    # check the peer is alive this often while waiting; 0 = off

[retry]                          # delivering one message
attempts = 6
backoff = 0.25                   # first pause, doubled after each failure
backoff_max = 8

[limits]
max_message_mb = 2048            # the largest message accepted from the peer
"""
