"""The party runtime's network: a :class:`~puhui.federated.channel.Channel` over mutual TLS.

Each party process runs a small HTTPS server that accepts the peer's messages into per-tag
mailboxes, and sends its own messages by POSTing them to the peer's server. The protocol
code (PSI, SecureBoost, vertical LR) is the same as with :func:`~puhui.federated.channel.
local_pair`; only the channel changes.

Why plain HTTP/1.1 on the standard library: two parties exchange a few thousand messages per
training run, one at a time, so one persistent connection each way is enough; the standard
library gives mutual TLS with exactly the checks we need and no framework between us and the
socket. Bodies are the codec's bytes as they are (``application/msgpack``) — a message of
30,000 Paillier ciphertexts is tens of MB and is neither base64-encoded nor copied per chunk.

What makes a run either correct or loudly failed:

* **Mutual authentication.** Both directions use only the federation CA (never the system's
  roots) and require a certificate; the server refuses clients from another CA during the TLS
  handshake, and both sides then check that the peer's certificate carries the *expected
  role* (see :mod:`puhui.federated.pki`), so a guest never talks to another guest.
* **Exactly-once delivery.** A message carries (run id, sender role, sender epoch, tag,
  sequence number). A POST whose answer was lost is sent again; the receiver keeps the last
  sequence number per tag and acknowledges a repeat without delivering it twice. A gap in the
  numbers cannot happen with synchronous sends, so one fails the run rather than going on.
* **Bounded retries.** Connection refused, reset or timed out is retried with exponential
  back-off (``retry`` settings); after the budget :meth:`HttpChannel.send` raises naming the
  peer's URL, the tag and the last error. Certificate problems are never retried.
* **Restarts are detected, never absorbed.** Each channel draws a random *epoch* when it is
  created and sends it with every request, along with the epoch it believes the peer has. A
  peer that restarted (new process, new epoch, empty memory of the run) therefore cannot
  receive the rest of an old conversation as if it were a new one, and the surviving side
  learns of it on its next exchange. Resuming is not attempted: both sides must start again.
* **A dead peer is noticed.** While :meth:`HttpChannel.recv` waits — up to the long
  ``message_timeout`` a slow training step may need — it checks every ``heartbeat`` seconds that
  the peer still answers, and gives up after ``retries`` failed checks with a clear error.
* **A closing peer says so.** :meth:`HttpChannel.close` tells the peer (best effort), so a
  party that fails mid-protocol makes the other side fail at once instead of timing out.

The server reports certificate problems to its own side too: if the peer's first connections
are refused (another CA, wrong role), this party's :meth:`~HttpChannel.recv` and
:meth:`~HttpChannel.connect` fail with that reason instead of waiting for a timeout. Once the
peer has authenticated, a stray refused connection no longer aborts the run (an outsider
without a certificate must not be able to stop it); it only appears in the timeout error.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import secrets
import socket
import ssl
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast
from urllib.parse import quote, unquote, urlsplit

from puhui.federated.channel import ChannelStats, MessageLog, decode, encode
from puhui.federated.config import NetworkSettings, PartyConfig
from puhui.federated.errors import FederatedError, PeerTimeout, ProtocolMismatch
from puhui.federated.pki import (
    PartyFiles,
    PkiError,
    check_party_files,
    name_of_peer_cert,
    other_role,
    role_of_peer_cert,
    tls_context,
)

__all__ = [
    "HttpChannel",
    "LiveConnections",
    "PeerClosed",
    "PeerRejected",
    "PeerRestarted",
    "PeerUnreachable",
    "open_channel",
]

log = logging.getLogger(__name__)

_PATHS = {"/v1/hello": "hello", "/v1/message": "message", "/v1/bye": "bye"}
# Header names; the server looks them up in lower case.
_H_RUN, _H_ROLE, _H_EPOCH = "x-puhui-run", "x-puhui-role", "x-puhui-epoch"
_H_TO_EPOCH, _H_TAG, _H_SEQ = "x-puhui-to-epoch", "x-puhui-tag", "x-puhui-seq"
_H_REASON, _H_MAX = "x-puhui-reason", "x-puhui-max-bytes"
_SERVER_IDLE = 60.0  # seconds a kept-alive connection may sit idle on the server
_CLIENT_REUSE = 30.0  # reconnect rather than reuse a connection idle for longer than this
_SMALL_BODY = 1024 * 1024  # a refused request's body up to this size is read, not cut off


class PeerRejected(FederatedError):
    """The peer's certificate is not from our CA or not for the expected role (or it refused
    ours). Retrying cannot help: the operators must fix the certificates or the URL."""


class PeerRestarted(FederatedError):
    """The peer is not the process this run started with; the run must start again."""


class PeerUnreachable(FederatedError):
    """The peer did not answer within the retry budget (stopped, or the network is down)."""


class PeerClosed(FederatedError):
    """The peer closed its channel (it finished or stopped with an error)."""


class _Retryable(Exception):
    """A transient network failure: connection refused, reset or timed out."""


class _Refused(Exception):
    """A non-200 answer from the peer's server: status, reason code and the server's text."""

    def __init__(self, status: int, reason: str, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.reason = reason
        self.text = text


def _new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(4)


def _tls_reason(exc: ssl.SSLError) -> str:
    return str(getattr(exc, "reason", None) or exc)


class LiveConnections:
    """The open connections of a party's server, so closing it can cut them: a kept-alive
    connection's handler thread would otherwise go on serving after the server stops."""

    def __init__(self) -> None:
        self._sockets: set[ssl.SSLSocket] = set()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def serving(self, sock: ssl.SSLSocket) -> Iterator[None]:
        """Track ``sock`` while its requests are handled."""
        with self._lock:
            self._sockets.add(sock)
        try:
            yield
        finally:
            with self._lock:
                self._sockets.discard(sock)

    def drop(self) -> None:
        """Shut every tracked connection down."""
        with self._lock:
            live = list(self._sockets)
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Server(ThreadingHTTPServer):
    """The party's HTTPS server: TLS handshakes happen in the per-connection thread.

    Wrapping the listening socket (the usual recipe) would run every handshake in the accept
    loop, so one slow or hostile client could stall the server, and a failed handshake would
    vanish inside ``accept``. Here each accepted socket is wrapped in its own thread, and a
    refused handshake is reported to the channel before the connection is closed.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], channel: HttpChannel) -> None:
        self.channel = channel
        self.live = LiveConnections()
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        channel = self.channel
        raw = cast(socket.socket, request)
        raw.settimeout(channel.network.connect_timeout)
        # A second descriptor on the connection, so that after a refused handshake the TLS
        # alert can reach the client before the socket closes (closing with unread client
        # data would send a TCP reset, and the client would see "connection reset" instead
        # of "unknown CA").
        spare = raw.dup()
        handshaken = False
        try:
            tls = channel._server_ctx.wrap_socket(
                raw, server_side=True, do_handshake_on_connect=False
            )
            try:
                tls.do_handshake()
            except ssl.SSLError as exc:
                tls.close()
                channel._note_handshake_failure(client_address, exc)
                _linger(spare)
                return
            except OSError:
                tls.close()
                return
            spare.close()
            handshaken = True
            tls.settimeout(max(_SERVER_IDLE, channel.network.connect_timeout))
            try:
                with self.live.serving(tls):
                    _Handler(tls, client_address, self)
            finally:
                tls.close()
        finally:
            if not handshaken:
                spare.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A peer that vanishes mid-request is the runtime's business, not a traceback on stderr.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def drop_connections(self) -> None:
        """Cut every open connection (on close: handler threads must not linger)."""
        self.live.drop()


def _linger(sock: socket.socket, seconds: float = 1.0) -> None:
    """Half-close, then read until the client hangs up (or ``seconds``), then close."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(seconds)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and sock.recv(65536):
            pass
    except OSError:
        pass


class _Handler(BaseHTTPRequestHandler):
    """One connection from the peer: each POST is a hello, a message or a bye."""

    protocol_version = "HTTP/1.1"  # keep-alive: one connection carries a whole run
    server_version = "puhui-federated/1"
    sys_version = ""
    disable_nagle_algorithm = True
    server: _Server

    def do_POST(self) -> None:
        channel = self.server.channel
        kind = _PATHS.get(self.path)
        if kind is None:
            self._reply(404, "bad-request", f"unknown path {self.path}", close=True)
            return
        cert = cast(ssl.SSLSocket, self.connection).getpeercert()
        role = role_of_peer_cert(cert)
        if role != channel.peer:
            text = channel._note_wrong_role(self.client_address, cert, role)
            self._reply(403, "wrong-role", text, close=True)
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
            if length < 0:
                raise ValueError
        except ValueError:
            self._reply(400, "bad-request", "Content-Length is required", close=True)
            return
        if length > channel.network.max_message_bytes:
            self._reply(
                413,
                "too-large",
                f"a message of {length} bytes is over this party's limit of "
                f"{channel.network.max_message_bytes} (limits.max_message_mb)",
                close=length > _SMALL_BODY,
            )
            if length <= _SMALL_BODY:
                self.rfile.read(length)
            return
        body = self.rfile.read(length)
        if len(body) != length:  # the peer went away mid-message: nothing is delivered
            self.close_connection = True
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        status, reason, text = channel._handle(kind, headers, body)
        self._reply(status, reason, text)

    def do_GET(self) -> None:
        self._reply(405, "bad-request", "only POST is served", close=True)

    def _reply(self, status: int, reason: str, text: str, close: bool = False) -> None:
        channel = self.server.channel
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header(_H_ROLE, channel.role)
        self.send_header(_H_EPOCH, channel.epoch)
        self.send_header(_H_MAX, str(channel.network.max_message_bytes))
        run = channel.run_id
        if run:
            self.send_header(_H_RUN, run)
        if reason:
            self.send_header(_H_REASON, reason)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s: " + format, self.address_string(), *args)


class HttpChannel:
    """This party's end of the conversation with its peer, over HTTPS with mutual TLS.

    Use it as a context manager, or through :func:`open_channel` from a ``party.toml``::

        with open_channel(PartyConfig.load(path)) as channel:   # started and connected
            rows = align_as_guest(channel, ids)

    ``role`` is this party's role; the peer must present a certificate for the other one.
    ``run_id`` names the run: if given, the peer must use the same; if not, the guest draws
    one and the host adopts the guest's. ``log`` (a :class:`MessageLog`) records the exact
    bytes of every message sent, as :class:`~puhui.federated.channel.LocalChannel` does;
    ``stats`` counts bytes and waiting time.
    """

    def __init__(
        self,
        role: str,
        *,
        peer_url: str,
        tls: PartyFiles,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        network: NetworkSettings | None = None,
        run_id: str | None = None,
        log: MessageLog | None = None,
    ) -> None:
        self.role = role
        self.peer = other_role(role)
        self.peer_url = peer_url.rstrip("/")
        parts = urlsplit(self.peer_url)
        if parts.scheme != "https" or not parts.hostname:
            raise FederatedError(f"peer URL must be https://HOST:PORT, not {peer_url!r}")
        self._peer_host = parts.hostname
        self._peer_port = parts.port or 443
        self.tls = tls
        self.network = network or NetworkSettings()
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.epoch = secrets.token_hex(8)
        self._run_id = (
            run_id if run_id is not None else (_new_run_id() if role == "guest" else None)
        )
        self._log = log
        self.stats = ChannelStats()

        check_party_files(tls, role)  # a mix-up is named here, not as an opaque TLS alert
        self._server_ctx = self._context(ssl.PROTOCOL_TLS_SERVER)
        self._client_ctx = self._context(ssl.PROTOCOL_TLS_CLIENT)

        self._cond = threading.Condition()
        self._mail: dict[str, deque[bytes]] = defaultdict(deque)
        self._last_seq: dict[str, int] = {}
        self._peer_epoch: str | None = None
        self._peer_seen = False
        self._peer_closed: str | None = None
        self._failure: FederatedError | None = None
        self._rejections: list[str] = []

        self._send_lock = threading.Lock()
        self._next_seq: dict[str, int] = {}
        self._conn: http.client.HTTPSConnection | None = None
        self._conn_used = 0.0
        self._peer_max: int | None = None  # the largest message the peer accepts (its hello)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    @classmethod
    def from_config(cls, config: PartyConfig, log: MessageLog | None = None) -> HttpChannel:
        """A channel (not yet started) with the settings of a ``party.toml``."""
        return cls(
            config.role,
            peer_url=config.peer_url,
            tls=config.tls,
            listen_host=config.listen_host,
            listen_port=config.listen_port,
            network=config.network,
            run_id=config.run_id,
            log=log,
        )

    def _context(self, protocol: int) -> ssl.SSLContext:
        """Our CA only (no system roots), a certificate required from the peer, TLS >= 1.2."""
        try:
            return tls_context(self.tls, server_side=protocol == ssl.PROTOCOL_TLS_SERVER)
        except PkiError as exc:
            raise PeerRejected(str(exc)) from None

    # ----------------------------------------------------------------- life cycle

    @property
    def run_id(self) -> str | None:
        """The run this channel belongs to (None on a host until the guest has named it)."""
        return self._run_id

    @property
    def port(self) -> int:
        """The port the server listens on (the real one when started with port 0)."""
        if self._server is None:
            return self.listen_port
        return int(self._server.server_address[1])

    def start(self) -> HttpChannel:
        """Listen for the peer's messages (in a background thread); returns ``self``."""
        if self._server is not None:
            return self
        try:
            self._server = _Server((self.listen_host, self.listen_port), self)
        except OSError as exc:
            raise FederatedError(
                f"cannot listen on {self.listen_host}:{self.listen_port}: {exc.strerror or exc}"
                " (is another party process still running? check listen.host/listen.port)"
            ) from None
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"puhui-{self.role}-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def connect(self, timeout: float | None = None) -> None:
        """Wait until the peer answers (up to ``startup_timeout``) and both sides accepted
        each other's certificates; raise at once on a certificate problem."""
        limit = self.network.startup_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        attempt = 0
        last = "no attempt"
        while True:
            if self._failure is not None:
                raise self._failure
            try:
                with self._send_lock:
                    self._ensure_connection()
                return
            except _Retryable as exc:
                last = str(exc)
            # Our own attempt gave no verdict; has our server refused the peer meanwhile?
            self._raise_if_failed()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PeerUnreachable(
                    f"the {self.peer} at {self.peer_url} did not answer within {limit:g} s "
                    f"(last error: {last}); is it started, and is peer.url right?"
                )
            self._sleep(min(remaining, self.network.backoff_delay(attempt)))
            attempt += 1

    def close(self, reason: str | None = None) -> None:
        """Tell the peer we are done (best effort), stop the server, drop connections."""
        if self._closed.is_set():
            return
        if self._peer_seen and self._peer_epoch is not None:
            self._say_bye(reason or "finished")
        self._closed.set()
        with self._cond:
            self._cond.notify_all()
        with self._send_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.drop_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HttpChannel:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Only the error's class crosses: its text may name local files or data.
        self.close(None if exc_type is None else f"stopped with an error ({exc_type.__name__})")

    # ------------------------------------------------------------------ messages

    def send(self, tag: str, payload: Any) -> None:
        """Deliver ``payload`` under ``tag`` exactly once, or raise (and fail the run)."""
        if not isinstance(tag, str) or not tag:
            raise FederatedError("a message tag must be a non-empty string")
        self._raise_if_failed()
        if self._peer_closed is not None:
            raise PeerClosed(
                f"the {self.peer} has closed the channel ({self._peer_closed}); cannot send '{tag}'"
            )
        data = encode(payload)
        if self._log is not None:
            self._log.record(self.role, tag, data)
        with self._send_lock:
            seq = self._next_seq.get(tag, 0) + 1
            self._next_seq[tag] = seq
            try:
                self._deliver(tag, seq, data)
            except FederatedError as exc:
                self._fail(exc)  # a lost message breaks the sequence: the run cannot go on
                raise
        self.stats.bytes_sent += len(data)

    def recv(self, tag: str, timeout: float | None = None) -> Any:
        """The next payload the peer sent under ``tag``.

        Waits at most ``timeout`` (default ``message_timeout``) and raises
        :class:`PeerTimeout`; fails sooner if the peer restarted, closed, stopped answering
        the heartbeat, or was refused for its certificate before it ever authenticated.
        """
        limit = self.network.message_timeout if timeout is None else timeout
        started = time.monotonic()
        deadline = started + limit
        beat = self.network.heartbeat
        next_beat = started + beat
        misses: list[str] = []
        try:
            while True:
                with self._cond:
                    data = self._take(tag)
                    while data is None:
                        now = time.monotonic()
                        if now >= deadline:
                            raise PeerTimeout(self.peer, tag, limit)
                        if beat > 0 and now >= next_beat:
                            if self._peer_seen:
                                break
                            next_beat = now + beat  # no peer yet: nothing to check
                        wake = deadline if beat <= 0 else min(deadline, next_beat)
                        self._cond.wait(max(0.0, wake - now))
                        data = self._take(tag)
                if data is not None:
                    break
                self._heartbeat(tag, misses, started)
                next_beat = time.monotonic() + beat
        except PeerTimeout as exc:
            if self._rejections:  # refused connections may explain the silence
                exc.args = (f"{exc} (meanwhile: {'; '.join(self._rejections[-3:])})",)
            raise
        finally:
            self.stats.seconds_waiting += time.monotonic() - started
        self.stats.bytes_received += len(data)
        return decode(data)

    def _take(self, tag: str) -> bytes | None:
        """The next queued message for ``tag``, or None; raises if the run cannot go on.
        Called with the condition held."""
        self._raise_if_failed()
        queue = self._mail.get(tag)
        if queue:
            return queue.popleft()
        if self._peer_closed is not None:
            raise PeerClosed(
                f"the {self.peer} closed the channel ({self._peer_closed}) while this "
                f"{self.role} waited for its '{tag}' message; see the {self.peer}'s log"
            )
        if self._closed.is_set():
            raise FederatedError(f"this {self.role}'s channel is closed")
        return None

    def _heartbeat(self, tag: str, misses: list[str], started: float) -> None:
        """Check the peer still answers; after ``retries`` misses in a row, give up."""
        try:
            conn = self._open()
            conn.close()
            misses.clear()
        except _Retryable as exc:
            misses.append(str(exc.__cause__ or exc))
            log.info("heartbeat to the %s failed (%d): %s", self.peer, len(misses), misses[-1])
            if len(misses) >= self.network.retries:
                error = PeerUnreachable(
                    f"the {self.peer} at {self.peer_url} stopped answering while this "
                    f"{self.role} waited for its '{tag}' message: {len(misses)} checks over "
                    f"{time.monotonic() - started:.1f} s failed (last error: {misses[-1]}); "
                    f"it has stopped or the network is down — start the run again"
                )
                self._fail(error)
                raise error from None

    # ---------------------------------------------------------------- client side

    def _deliver(self, tag: str, seq: int, data: bytes) -> None:
        """POST one message with retries; called with the send lock held."""
        headers = {
            _H_TAG: quote(tag, safe=""),
            _H_SEQ: str(seq),
            "Content-Type": "application/msgpack",
        }
        attempts = self.network.retries
        started = time.monotonic()
        last = ""
        for attempt in range(attempts):
            self._raise_if_failed()
            try:
                conn = self._ensure_connection()
                self._check_size(tag, len(data))
                self._post(conn, "/v1/message", headers, data)
                return
            except _Retryable as exc:
                last = str(exc.__cause__ or exc)
                self._drop_connection()
                log.info(
                    "sending '%s' to the %s failed (attempt %d/%d): %s",
                    tag,
                    self.peer,
                    attempt + 1,
                    attempts,
                    last,
                )
            if attempt + 1 < attempts:
                self._sleep(self.network.backoff_delay(attempt))
        raise PeerUnreachable(
            f"could not send '{tag}' to the {self.peer} at {self.peer_url}: {attempts} attempts "
            f"over {time.monotonic() - started:.1f} s failed (last error: {last}); it has "
            f"stopped or the network is down — start the run again"
        )

    def _ensure_connection(self) -> http.client.HTTPSConnection:
        """The kept-alive connection to the peer, (re)opened if needed; send lock held."""
        if self._conn is not None and time.monotonic() - self._conn_used > _CLIENT_REUSE:
            self._drop_connection()
        if self._conn is None:
            self._conn = self._open()
        self._conn_used = time.monotonic()
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _open(self, timeout: float | None = None) -> http.client.HTTPSConnection:
        """A new connection whose server proved to be our peer, opened with a hello.

        The hello on every new connection checks, before any message goes out, that the
        peer accepted our certificate (with TLS 1.3 a refusal arrives only after the
        handshake), that it is still the process this run started with, and that it is in
        the same run.
        """
        conn = http.client.HTTPSConnection(
            self._peer_host,
            self._peer_port,
            timeout=self.network.connect_timeout if timeout is None else timeout,
            context=self._client_ctx,
        )
        try:
            try:
                conn.connect()
            except (OSError, http.client.HTTPException) as exc:
                raise self._network_error(exc) from exc
            sock = cast(ssl.SSLSocket, conn.sock)
            cert = sock.getpeercert()
            role = role_of_peer_cert(cert)
            if role != self.peer:
                raise self._fail(
                    PeerRejected(
                        f"the party at {self.peer_url} presented a certificate for the "
                        f"{role or 'unknown'} role (party '{name_of_peer_cert(cert)}'), but "
                        f"this {self.role} expects the {self.peer}: check peer.url and the "
                        f"certificates each party uses"
                    )
                )
            self._post(conn, "/v1/hello", {}, b"")
            return conn
        except BaseException:
            conn.close()
            raise

    def _post(
        self, conn: http.client.HTTPSConnection, path: str, extra: Mapping[str, str], body: bytes
    ) -> None:
        """One request with this party's identity headers; interprets the answer."""
        headers = {_H_ROLE: self.role, _H_EPOCH: self.epoch, **extra}
        run = self._run_id
        if run:
            headers[_H_RUN] = run
        if self._peer_epoch is not None:
            headers[_H_TO_EPOCH] = self._peer_epoch
        tag = unquote(extra.get(_H_TAG, "")) or path.rsplit("/", 1)[-1]
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as exc:
            raise self._network_error(exc) from exc
        if response.status == 200:
            self._note_peer_answer(response.getheader(_H_EPOCH), response.getheader(_H_RUN))
            limit = response.getheader(_H_MAX)
            if limit and limit.isdigit():
                self._peer_max = int(limit)
            return
        if response.status >= 500:
            raise _Retryable(f"HTTP {response.status}: {text}")
        raise self._fail(
            self._refusal(_Refused(response.status, response.getheader(_H_REASON) or "", text), tag)
        )

    def _network_error(self, exc: OSError | http.client.HTTPException) -> Exception:
        """Sort a failed connect or request: certificate problems are final (and fail the
        run); anything else — refused, reset, timed out — is worth another attempt."""
        if isinstance(exc, ssl.SSLCertVerificationError):
            return self._fail(
                PeerRejected(
                    f"the {self.peer} at {self.peer_url} presented a certificate this "
                    f"{self.role} does not trust ({exc.verify_message}): it must be issued "
                    f"by the CA in {self.tls.ca_cert} for the host name in peer.url"
                )
            )
        if isinstance(exc, ssl.SSLError):
            reason = _tls_reason(exc)
            if "ALERT" in reason.upper():
                return self._fail(
                    PeerRejected(
                        f"the {self.peer} at {self.peer_url} refused this {self.role}'s "
                        f"certificate in the TLS handshake ({reason}): both parties' "
                        f"certificates must come from the same `puhui federated ca`"
                    )
                )
            if "WRONG_VERSION_NUMBER" in reason.upper():
                return self._fail(PeerRejected(f"{self.peer_url} does not speak TLS ({reason})"))
            return _Retryable(f"TLS error: {reason}")
        return _Retryable(str(exc) or type(exc).__name__)

    def _refusal(self, refused: _Refused, tag: str) -> FederatedError:
        """The error for a request the peer's server refused, by its reason code."""
        where = f"the {self.peer} at {self.peer_url}"
        if refused.reason == "stale":
            return PeerRestarted(
                f"{where} has restarted (a new process answered while this {self.role} was "
                f"in a run with the old one); the run must start again on both sides"
            )
        if refused.reason == "restarted":
            return PeerRestarted(
                f"{where} is still in a run with an earlier process of this {self.role}: "
                f"stop it and start both parties again ({refused.text})"
            )
        if refused.reason == "run-mismatch":
            return ProtocolMismatch(f"{where} refused '{tag}': {refused.text}")
        if refused.reason == "wrong-role":
            return PeerRejected(f"{where} refused this {self.role}: {refused.text}")
        if refused.reason == "closed":
            return PeerClosed(f"{where} has closed its channel: {refused.text}")
        return FederatedError(
            f"{where} refused '{tag}' (HTTP {refused.status}): {refused.text or 'no reason given'}"
        )

    def _check_size(self, tag: str, size: int) -> None:
        """Refuse before uploading a message the peer has announced it would refuse: a
        server cutting off a 3 GB upload shows up as "broken pipe", not as the reason."""
        if self._peer_max is not None and size > self._peer_max:
            raise FederatedError(
                f"the '{tag}' message is {size} bytes, over the {self.peer}'s limit of "
                f"{self._peer_max} (its limits.max_message_mb)"
            )

    def _note_peer_answer(self, epoch: str | None, run: str | None) -> None:
        """Record (or check) the peer's epoch and run from a successful answer."""
        with self._cond:
            if not epoch:
                raise self._fail_locked(
                    FederatedError(f"{self.peer_url} answered without a party epoch")
                )
            if self._peer_epoch is None:
                self._peer_epoch = epoch
            elif epoch != self._peer_epoch:
                raise self._fail_locked(
                    PeerRestarted(
                        f"the {self.peer} at {self.peer_url} has restarted (new process); "
                        f"the run must start again on both sides"
                    )
                )
            if run and self._run_id is None:
                self._run_id = run
            elif run and run != self._run_id:
                raise self._fail_locked(self._run_mismatch(run))
            self._peer_seen = True

    def _say_bye(self, reason: str) -> None:
        """Tell the peer we are closing, so that a recv waiting there fails at once."""
        with self._send_lock:
            for fresh in (False, True):  # the kept-alive connection may have gone stale
                try:
                    conn = None if fresh else self._conn
                    if conn is None:  # a short wait: the peer may be gone, and we are leaving
                        conn = self._conn = self._open(min(self.network.connect_timeout, 2.0))
                    self._post(conn, "/v1/bye", {}, reason.encode("utf-8"))
                    return
                except _Retryable as exc:
                    self._drop_connection()
                    log.debug("could not tell the %s we are closing: %s", self.peer, exc)
                except FederatedError as exc:
                    log.debug("could not tell the %s we are closing: %s", self.peer, exc)
                    return

    # ---------------------------------------------------------------- server side

    def _handle(self, kind: str, headers: Mapping[str, str], body: bytes) -> tuple[int, str, str]:
        """Judge one authenticated request from the peer: (status, reason code, text)."""
        epoch = headers.get(_H_EPOCH) or ""
        to_epoch = headers.get(_H_TO_EPOCH)
        run = headers.get(_H_RUN) or ""
        if headers.get(_H_ROLE) != self.peer or not epoch:
            return 400, "bad-request", f"this {self.role} expects requests from the {self.peer}"
        with self._cond:
            if self._closed.is_set():
                return 410, "closed", f"the {self.role} has closed its channel"
            if to_epoch and to_epoch != self.epoch:
                text = (
                    f"this {self.role} is a new process (it restarted): the run you are in "
                    f"was with an earlier one; start both parties again"
                )
                return 409, "stale", text
            if self._failure is not None:
                return 409, "failed", f"the {self.role}'s run has failed: {self._failure}"
            if self._peer_epoch is not None and epoch != self._peer_epoch:
                self._fail_locked(
                    PeerRestarted(
                        f"the {self.peer} restarted during the run (a new process connected); "
                        f"the run must start again on both sides"
                    )
                )
                text = f"this {self.role} was in a run with an earlier process of the {self.peer}"
                return 409, "restarted", text
            if run:
                if self._run_id is None:
                    self._run_id = run
                elif run != self._run_id:
                    mismatch = self._run_mismatch(run)
                    self._fail_locked(mismatch)
                    return 409, "run-mismatch", str(mismatch)
            elif kind == "message":
                return 400, "bad-request", "a message must name its run (X-Puhui-Run)"
            self._peer_epoch = epoch
            self._peer_seen = True
            if kind == "hello":
                return 200, "", "hello"
            if kind == "bye":
                self._peer_closed = body.decode("utf-8", "replace")[:200] or "closed"
                self._cond.notify_all()
                return 200, "", "bye"
            tag = unquote(headers.get(_H_TAG) or "")
            try:
                seq = int(headers.get(_H_SEQ) or "")
            except ValueError:
                return 400, "bad-request", "a message needs a tag and a sequence number"
            if not tag or seq < 1:
                return 400, "bad-request", "a message needs a tag and a sequence number"
            last = self._last_seq.get(tag, 0)
            if seq <= last:
                return 200, "", "duplicate"  # a retried POST whose first answer was lost
            if seq != last + 1:
                error = FederatedError(
                    f"message {last + 1} under '{tag}' from the {self.peer} never arrived "
                    f"(got {seq}); the run cannot go on"
                )
                self._fail_locked(error)
                return 409, "gap", str(error)
            self._last_seq[tag] = seq
            self._mail[tag].append(body)
            self._cond.notify_all()
            return 200, "", "ok"

    def _note_handshake_failure(self, address: Any, exc: ssl.SSLError) -> None:
        """Remember a refused TLS handshake if it was about certificates (not a port probe)."""
        who = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)
        if isinstance(exc, ssl.SSLCertVerificationError):
            text = (
                f"this {self.role} refused a connection from {who}: its certificate does not "
                f"chain to our CA {self.tls.ca_cert} ({exc.verify_message}); both parties' "
                f"certificates must come from the same `puhui federated ca`"
            )
        else:
            reason = _tls_reason(exc)
            upper = reason.upper()
            if ("CERTIFICATE" in upper and "REQUIRED" in upper) or "NO_CERTIFICATE" in upper:
                text = f"this {self.role} refused a connection from {who}: it sent no certificate"
            elif "ALERT" in upper:
                text = (
                    f"the party connecting from {who} refused this {self.role}'s certificate "
                    f"({reason}): it trusts another CA, or expects another host name"
                )
            else:
                log.debug("TLS handshake from %s failed: %s", who, reason)
                return
        self._note_rejection(text)

    def _note_wrong_role(
        self, address: Any, cert: Mapping[str, Any] | None, role: str | None
    ) -> str:
        who = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)
        name = name_of_peer_cert(cert)
        text = (
            f"this {self.role} refused a connection from {who}: its certificate (party "
            f"'{name}') is for the {role or 'unknown'} role, but this {self.role} accepts "
            f"only the {self.peer}"
        )
        self._note_rejection(text)
        return text

    def _note_rejection(self, text: str) -> None:
        """Remember a refused connection. Before the peer has authenticated, the next
        ``recv``/``connect``/``send`` raises it (the operator's setup is wrong); afterwards it
        only goes to the log, since a stranger's connection must not end the run."""
        with self._cond:
            self._rejections.append(text)
            if self._peer_seen:
                log.warning("%s", text)
            self._cond.notify_all()

    # ------------------------------------------------------------------- failures

    def _run_mismatch(self, theirs: str) -> ProtocolMismatch:
        return ProtocolMismatch(
            f"run id mismatch: this {self.role} is in run '{self._run_id}', the {self.peer} "
            f"in run '{theirs}'; set the same run_id in both party.toml files, or in neither "
            f"(the guest then names the run)"
        )

    def _fail(self, error: FederatedError) -> FederatedError:
        with self._cond:
            return self._fail_locked(error)

    def _fail_locked(self, error: FederatedError) -> FederatedError:
        """Make ``error`` the run's failure (the first one wins) and wake any waiting recv."""
        if self._failure is None:
            self._failure = error
            log.info("run failed: %s", error)  # the caller raises it; no second report
        self._cond.notify_all()
        return error

    def _raise_if_failed(self) -> None:
        failure = self._failure
        if failure is not None:
            raise failure
        if self._rejections and not self._peer_seen:
            raise PeerRejected(self._rejections[-1])
        if self._closed.is_set():
            raise FederatedError(f"this {self.role}'s channel is closed")

    def _sleep(self, seconds: float) -> None:
        if self._closed.wait(seconds):
            raise FederatedError(f"this {self.role}'s channel was closed")


def open_channel(config: PartyConfig, log: MessageLog | None = None) -> HttpChannel:
    """Start this party's server and wait for the peer; the caller closes (``with`` block).

    This is how every ``puhui federated`` command gets its channel::

        with open_channel(config) as channel:
            ...
    """
    channel = HttpChannel.from_config(config, log=log).start()
    try:
        channel.connect()
    except BaseException as exc:
        channel.close(f"stopped while connecting ({type(exc).__name__})")
        raise
    return channel
