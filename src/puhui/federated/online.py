"""Online federated scoring: the host answers for its part of a model, one application at a time.

Training is a long conversation (:mod:`puhui.federated.transport`); scoring a live application
is a short request: the guest's decision needs, within a few milliseconds, the host's part of
the model for one business. The host runs :class:`ScoringServer` (``puhui federated serve
--role host``); the guest's platform calls it through :class:`ScoringClient`.

One request, one answer, over HTTPS with the same mutual TLS as training (the federation CA;
the client must hold a *guest* certificate, the server a *host* one)::

    guest → host   POST /v1/federated/score   {"model": id, "keys": [uscc, ...], "ask": {...}}
    host  → guest  200                        {"model": id, "answers": [answer | None, ...]}

``ask`` is model-specific and so is each answer (:mod:`puhui.federated.scoring`): for
SecureBoost the guest asks for its host split ids and gets one bit per split (left or right);
for vertical LR it gets the host's partial score. ``None`` means the host holds no data for
that key. Bodies are the federation's msgpack codec.

What crosses: the business key (the host must know *which* business to look up — so the
partner learns that the bank scored it, which the applicant's joint-modelling consent must
cover), and the host's answer about its own features. The host's feature values and
thresholds never cross; neither does anything of the bank's.

Failure is expected and bounded: the client waits at most ``timeout`` (default 0.5 s) with
one retry on a dropped connection, then raises :class:`PartnerUnavailable`, and the caller
falls back (``origination.credit_model``).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import urlsplit

from puhui.federated.channel import decode, encode
from puhui.federated.errors import FederatedError
from puhui.federated.pki import PartyFiles, check_party_files, role_of_peer_cert, tls_context
from puhui.federated.transport import LiveConnections

log = logging.getLogger(__name__)

PATH = "/v1/federated/score"
MAX_KEYS = 100
MAX_REQUEST_BYTES = 1 << 20


class PartnerUnavailable(FederatedError):
    """The partner did not answer in time, refused us, or answered nonsense."""


Answerer = Callable[[Sequence[str], Mapping[str, Any]], list[Any]]
"""A host model's answer for some keys: (keys, ask) -> one answer (or None) per key."""


@dataclass
class ServedModels:
    """The host models a scoring server answers for, by model id (swappable while serving)."""

    answerers: dict[str, Answerer] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, model_id: str, answerer: Answerer) -> None:
        with self._lock:
            self.answerers[model_id] = answerer

    def get(self, model_id: str) -> Answerer | None:
        with self._lock:
            return self.answerers.get(model_id)


class _ScoringHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], context: ssl.SSLContext, models: ServedModels
    ) -> None:
        self.context = context
        self.models = models
        self.requests_answered = 0
        self.live = LiveConnections()
        super().__init__(address, _ScoringHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Handshake in the connection's own thread (a slow client cannot stall accepts)."""
        raw = cast(socket.socket, request)
        raw.settimeout(10.0)
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.warning("refused a scoring connection from %s: %s", client_address, exc)
            raw.close()
            return
        try:
            with self.live.serving(tls):
                _ScoringHandler(tls, client_address, self)
        finally:
            with contextlib.suppress(OSError):
                tls.close()


class _ScoringHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "puhui-federated-scoring/1"
    sys_version = ""
    disable_nagle_algorithm = True
    server: _ScoringHTTPServer

    def do_POST(self) -> None:
        if self.path != PATH:
            self._reply(404, {"error": f"unknown path {self.path}"})
            return
        role = role_of_peer_cert(cast(ssl.SSLSocket, self.connection).getpeercert())
        if role != "guest":
            self._reply(403, {"error": f"only the guest may ask for scores (this is {role})"})
            return
        try:
            length = int(self.headers.get("Content-Length", "-1"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_REQUEST_BYTES:
            self._reply(413, {"error": f"a request must be 0..{MAX_REQUEST_BYTES} bytes"})
            self.close_connection = True
            return
        try:
            status, answer = 200, self._answer(decode(self.rfile.read(length)))
        except (FederatedError, ValueError, KeyError, TypeError) as exc:
            status, answer = 400, {"error": str(exc)}
        self._reply(status, answer)

    def _answer(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            raise ValueError("the request must be a map")
        model_id, keys, ask = request.get("model"), request.get("keys"), request.get("ask", {})
        if not isinstance(model_id, str) or not isinstance(ask, dict):
            raise ValueError("model must be a string and ask a map")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ValueError("keys must be a list of strings")
        if not 1 <= len(keys) <= MAX_KEYS:
            raise ValueError(f"between 1 and {MAX_KEYS} keys per request")
        answerer = self.server.models.get(model_id)
        if answerer is None:
            raise FederatedError(f"this partner does not serve model {model_id}")
        answers = answerer(keys, ask)
        self.server.requests_answered += 1
        return {"model": model_id, "answers": answers}

    def do_GET(self) -> None:
        self._reply(405, {"error": "only POST is served"})

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        body = encode(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/msgpack")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s: " + format, self.address_string(), *args)


class ScoringServer:
    """The host's scoring endpoint (a background thread); a context manager."""

    def __init__(
        self, files: PartyFiles, models: ServedModels, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        check_party_files(files, "host")
        self.models = models
        self._server = _ScoringHTTPServer(
            (host, port), tls_context(files, server_side=True), models
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="puhui-federated-scoring",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def requests_answered(self) -> int:
        return self._server.requests_answered

    def start(self) -> ScoringServer:
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (the CLI's `serve` command)."""
        self._server.serve_forever(poll_interval=0.2)

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        self._server.live.drop()

    def __enter__(self) -> ScoringServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class ScoringClient:
    """The guest's side: ask the partner for its part of a model, or fail fast.

    One persistent connection per thread (API workers score concurrently). ``timeout`` bounds
    each attempt; a connection the server dropped is retried once on a fresh one.

    After the partner fails to answer in time, it is not asked again for ``cooldown`` seconds:
    the calls in between fail at once, so the fallback decides without waiting. Without this
    a hanging partner would hold each decision for the whole timeout, and with an API
    process's few threads (``PUHUI_API_THREADS``) that caps the process at a handful of
    decisions a second. A partner that answers — even with a refusal — is asked every time.
    """

    def __init__(
        self, url: str, files: PartyFiles, timeout: float = 0.5, cooldown: float = 5.0
    ) -> None:
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme != "https" or not parts.hostname:
            raise FederatedError(f"partner URL must be https://HOST:PORT, not {url!r}")
        if cooldown < 0:
            raise FederatedError(f"cooldown must be >= 0 seconds, not {cooldown}")
        check_party_files(files, "guest")
        self.url = url
        self.timeout = timeout
        self.cooldown = cooldown
        self._host, self._port = parts.hostname, parts.port or 443
        self._context = tls_context(files, server_side=False)
        self._local = threading.local()
        self._silent_since: float | None = None  # monotonic time of the last unanswered call

    def _connection(self) -> http.client.HTTPSConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=self.timeout, context=self._context
            )
            self._local.conn = conn
        return cast(http.client.HTTPSConnection, conn)

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def ask(self, model_id: str, keys: Sequence[str], ask: Mapping[str, Any]) -> list[Any]:
        """One answer (or None: unknown key) per key; raises PartnerUnavailable."""
        started = time.monotonic()
        silent_since = self._silent_since
        if silent_since is not None and started - silent_since < self.cooldown:
            raise PartnerUnavailable(
                f"the partner at {self.url} did not answer {started - silent_since:.1f} s ago; "
                f"not asked again for {self.cooldown:g} s after that"
            )
        body = encode({"model": model_id, "keys": list(keys), "ask": dict(ask)})
        last: Exception | None = None
        for _attempt in range(2):
            try:
                conn = self._connection()
                conn.request(
                    "POST", PATH, body=body, headers={"Content-Type": "application/msgpack"}
                )
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                last = exc
                if time.monotonic() - started > self.timeout:
                    break
                continue
            try:
                payload = decode(data)
            except FederatedError as exc:
                raise PartnerUnavailable(f"the partner at {self.url} sent {exc}") from None
            if response.status != 200 or not isinstance(payload, dict):
                error = payload.get("error") if isinstance(payload, dict) else payload
                raise PartnerUnavailable(
                    f"the partner at {self.url} refused the scoring request "
                    f"({response.status}): {error}"
                )
            self._silent_since = None
            answers = payload.get("answers")
            if payload.get("model") != model_id or not isinstance(answers, list):
                raise PartnerUnavailable(f"the partner at {self.url} answered for another model")
            if len(answers) != len(keys):
                raise PartnerUnavailable(f"the partner at {self.url} answered the wrong count")
            return answers
        self._silent_since = time.monotonic()
        raise PartnerUnavailable(
            f"the partner at {self.url} did not answer within {self.timeout:g} s: {last}"
        )

    def close(self) -> None:
        self._drop()
