"""A small HTTP server on 127.0.0.1 for tests of blueprint HTTP and OpenAPI calls.

Tests talk to a real server instead of mocking ``httpx``, so status handling, redirects,
authentication handshakes and content types are exercised end to end without the network.
:class:`LocalServer` serves, at ``server.url``:

* a pet store: ``GET /v2/pet/{id}`` (pets 1 and 2 exist), ``GET /v2/pet/findByStatus?status=``,
  ``GET /v2/pet/getPetByName/{name}`` (always 404), ``POST /v2/pet`` (echoes the pet);
  its descriptions ``GET /v2/swagger.json`` (Swagger 2.0) and ``GET /v3/openapi.yaml`` (3.0);
* authentication: ``/basic-auth/{user}/{passwd}``, ``/bearer`` (any token),
  ``/digest-auth/auth/{user}/{passwd}``, an OAuth2 token endpoint ``POST /oauth2/token`` with
  ``GET /oauth2/resource`` that accepts only tokens it issued, and OpenID Connect discovery at
  ``/.well-known/openid-configuration`` (pointing to ``POST /oidc/token``);
* odds and ends: ``/anything`` (echoes the request), ``/redirect`` (302 to ``/target``),
  ``/status/{code}``, ``/text``, ``/bytes``, ``/empty`` (204) and ``/delay/{seconds}``.

``server.hits[path]`` counts the requests per path (without the query string).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import secrets
import threading
import time
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import yaml

PETS: dict[int, dict[str, Any]] = {
    1: {
        "id": 1,
        "name": "milou",
        "status": "available",
        "category": {"id": 1, "name": "dogs"},
        "tags": [{"id": 1, "name": "white"}],
        "photoUrls": [],
    },
    2: {
        "id": 2,
        "name": "garfield",
        "status": "pending",
        "category": {"id": 2, "name": "cats"},
        "tags": [],
        "photoUrls": [],
    },
}


class LocalServer:
    """A threaded HTTP server on a free port of 127.0.0.1; use it as a context manager."""

    oauth_client = ("legato-client", "client-secret-1")
    oauth_user = ("alice", "wonderland")

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.tokens: set[str] = set()
        self._lock = threading.Lock()
        self._nonces: set[str] = set()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.app = self  # type: ignore[attr-defined]
        self.host = f"127.0.0.1:{self._httpd.server_address[1]}"
        self.url = f"http://{self.host}"
        # A short poll interval makes shutdown quick, so each test can have its own server.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def revoke_tokens(self) -> None:
        """Make every OAuth2 token issued so far invalid (clients must fetch new ones)."""
        with self._lock:
            self.tokens.clear()

    def issue_token(self) -> str:
        token = "tok-" + secrets.token_hex(8)
        with self._lock:
            self.tokens.add(token)
        return token

    def new_nonce(self) -> str:
        nonce = secrets.token_hex(12)
        with self._lock:
            self._nonces.add(nonce)
        return nonce

    def known_nonce(self, nonce: str) -> bool:
        with self._lock:
            return nonce in self._nonces

    def count(self, path: str) -> None:
        with self._lock:
            self.hits[path] += 1

    def swagger(self) -> dict[str, Any]:
        """The pet store described in Swagger 2.0, with this server as its host."""
        return {
            "swagger": "2.0",
            "info": {"title": "Local pet store", "version": "1.0.0"},
            "host": self.host,
            "basePath": "/v2",
            "schemes": ["http"],
            "consumes": ["application/json"],
            "produces": ["application/json"],
            "paths": {
                "/pet": {
                    "post": {
                        "operationId": "addPet",
                        "parameters": [
                            {
                                "in": "body",
                                "name": "body",
                                "required": True,
                                "schema": {"$ref": "#/definitions/Pet"},
                            }
                        ],
                        "responses": {"200": {"description": "the pet"}},
                    }
                },
                "/pet/findByStatus": {
                    "get": {
                        "operationId": "findPetsByStatus",
                        "parameters": [
                            {
                                "name": "status",
                                "in": "query",
                                "required": True,
                                "type": "array",
                                "items": {"type": "string"},
                                "collectionFormat": "multi",
                            }
                        ],
                        "responses": {"200": {"description": "matching pets"}},
                    }
                },
                "/pet/{petId}": {
                    "get": {
                        "operationId": "getPetById",
                        "parameters": [
                            {"name": "petId", "in": "path", "required": True, "type": "integer"}
                        ],
                        "responses": {"200": {"description": "a pet"}},
                    }
                },
            },
            "definitions": {"Pet": {"type": "object", "required": ["name"]}},
        }

    def openapi(self) -> dict[str, Any]:
        """The same pet store in OpenAPI 3.0, with a relative server URL."""
        ok = {"200": {"description": "ok"}}
        return {
            "openapi": "3.0.3",
            "info": {"title": "Local pet store", "version": "1.0.0"},
            "servers": [{"url": "/v2"}],
            "paths": {
                "/pet": {
                    "post": {
                        "operationId": "addPet",
                        "requestBody": {"$ref": "#/components/requestBodies/Pet"},
                        "responses": ok,
                    }
                },
                "/pet/findByStatus": {
                    "get": {
                        "operationId": "findPetsByStatus",
                        "parameters": [
                            {
                                "name": "status",
                                "in": "query",
                                "required": True,
                                "schema": {"type": "array", "items": {"type": "string"}},
                            }
                        ],
                        "responses": ok,
                    }
                },
                "/pet/{petId}": {
                    "parameters": [{"$ref": "#/components/parameters/PetId"}],
                    "get": {"operationId": "getPetById", "responses": ok},
                },
            },
            "components": {
                "parameters": {
                    "PetId": {
                        "name": "petId",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    }
                },
                "requestBodies": {
                    "Pet": {
                        "required": True,
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            },
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def app(self) -> LocalServer:
        app: LocalServer = self.server.app  # type: ignore[attr-defined]
        return app

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        path = parts.path
        self.query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        self.app.count(path)
        for pattern, route in _ROUTES:
            match = re.fullmatch(pattern, path)
            if match:
                route(self, *(urllib.parse.unquote(g) if g else g for g in match.groups()))
                return
        self._json(404, {"error": f"no route for {path}"})

    # -- answers ---------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        if body or status != 204:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any, **headers: str) -> None:
        self._send(status, json.dumps(data).encode(), "application/json", **headers)

    # -- pet store -------------------------------------------------------------

    def pet(self, pet_id: str) -> None:
        if pet_id.isdigit() and int(pet_id) in PETS:
            self._json(200, PETS[int(pet_id)])
        else:
            self._json(404, {"code": 1, "type": "error", "message": "Pet not found"})

    def find_by_status(self) -> None:
        wanted = {s for value in self.query.get("status", []) for s in value.split(",")}
        self._json(200, [pet for pet in PETS.values() if pet["status"] in wanted])

    def pet_by_name(self, name: str) -> None:
        self._json(404, {"code": 1, "type": "error", "message": f"no pet named {name}"})

    def add_pet(self) -> None:
        if self.command != "POST":
            self._json(405, {"error": "POST a pet"})
            return
        pet = json.loads(self.body or b"{}")
        self._json(200, {"id": 3, **pet})

    def swagger(self) -> None:
        self._json(200, self.app.swagger())

    def openapi(self) -> None:
        text = yaml.safe_dump(self.app.openapi(), sort_keys=False).encode()
        self._send(200, text, "application/yaml")

    # -- authentication --------------------------------------------------------

    def basic_auth(self, user: str, passwd: str) -> None:
        expected = "Basic " + base64.b64encode(f"{user}:{passwd}".encode()).decode()
        if self.headers.get("Authorization") == expected:
            self._json(200, {"authenticated": True, "user": user})
        else:
            self._json(401, {"authenticated": False}, WWW_Authenticate='Basic realm="legato"')

    def bearer(self) -> None:
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and token:
            self._json(200, {"authenticated": True, "token": token})
        else:
            self._json(401, {"authenticated": False}, WWW_Authenticate="Bearer")

    def digest_auth(self, user: str, passwd: str) -> None:
        header = self.headers.get("Authorization") or ""
        fields = dict(re.findall(r'(\w+)="?([^",]*)"?', header.removeprefix("Digest ")))
        if header.startswith("Digest ") and self.app.known_nonce(fields.get("nonce", "")):

            def md5(text: str) -> str:
                return hashlib.md5(text.encode()).hexdigest()

            ha1 = md5(f"{user}:legato:{passwd}")
            ha2 = md5(f"{self.command}:{fields.get('uri')}")
            expected = md5(
                f"{ha1}:{fields['nonce']}:{fields.get('nc')}:{fields.get('cnonce')}:auth:{ha2}"
            )
            if fields.get("username") == user and fields.get("response") == expected:
                self._json(200, {"authenticated": True, "user": user})
                return
        challenge = (
            f'Digest realm="legato", qop="auth", nonce="{self.app.new_nonce()}", '
            'opaque="0000", algorithm=MD5'
        )
        self._json(401, {"authenticated": False}, WWW_Authenticate=challenge)

    def token(self) -> None:
        if "json" in (self.headers.get("Content-Type") or ""):
            form = {k: str(v) for k, v in json.loads(self.body).items()}
        else:
            form = {k: v[0] for k, v in urllib.parse.parse_qs(self.body.decode()).items()}
        client = (form.get("client_id"), form.get("client_secret"))
        scheme, _, encoded = (self.headers.get("Authorization") or "").partition(" ")
        if scheme == "Basic":
            user, _, password = base64.b64decode(encoded).decode().partition(":")
            client = (urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password))
        if client != self.app.oauth_client:
            self._json(401, {"error": "invalid_client"})
            return
        grant = form.get("grant_type")
        user_ok = (form.get("username"), form.get("password")) == self.app.oauth_user
        if grant == "client_credentials" or (grant == "password" and user_ok):
            token = self.app.issue_token()
            self._json(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})
        else:
            self._json(400, {"error": "invalid_grant"})

    def discovery(self) -> None:
        self._json(200, {"issuer": self.app.url, "token_endpoint": self.app.url + "/oidc/token"})

    def protected(self) -> None:
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        if token in self.app.tokens:
            self._json(200, {"ok": True})
        else:
            self._json(401, {"error": "invalid_token"})

    # -- odds and ends ---------------------------------------------------------

    def anything(self, _rest: str | None = None) -> None:
        try:
            parsed = json.loads(self.body) if self.body else None
        except ValueError:
            parsed = None
        self._json(
            200,
            {
                "method": self.command,
                "path": urllib.parse.urlsplit(self.path).path,
                "query": self.query,
                "headers": dict(self.headers.items()),
                "body": self.body.decode("utf-8", errors="replace"),
                "json": parsed,
            },
        )

    def redirect(self) -> None:
        self._send(302, b"", "text/plain", Location="/target")

    def target(self) -> None:
        self._json(200, {"redirected": True})

    def status(self, code: str) -> None:
        self._send(int(code), f"status {code}".encode(), "text/plain")

    def text(self) -> None:
        self._send(200, b"hello, legato", "text/plain; charset=utf-8")

    def bytes(self) -> None:
        self._send(200, b"\x00\x01\x02\xff", "application/octet-stream")

    def empty(self) -> None:
        self._send(204, b"", "text/plain")

    def delay(self, seconds: str) -> None:
        time.sleep(float(seconds))
        self._json(200, {"delayed": float(seconds)})


_ROUTES: list[tuple[str, Any]] = [
    (r"/v2/pet/findByStatus", _Handler.find_by_status),
    (r"/v2/pet/getPetByName/([^/]+)", _Handler.pet_by_name),
    (r"/v2/pet/([^/]+)", _Handler.pet),
    (r"/v2/pet", _Handler.add_pet),
    (r"/v2/swagger\.json", _Handler.swagger),
    (r"/v3/openapi\.yaml", _Handler.openapi),
    (r"/basic-auth/([^/]+)/([^/]+)", _Handler.basic_auth),
    (r"/bearer", _Handler.bearer),
    (r"/digest-auth/auth/([^/]+)/([^/]+)", _Handler.digest_auth),
    (r"/oauth2/token|/oidc/token", _Handler.token),
    (r"/\.well-known/openid-configuration", _Handler.discovery),
    (r"/oauth2/resource", _Handler.protected),
    (r"/anything(/.*)?", _Handler.anything),
    (r"/redirect", _Handler.redirect),
    (r"/target", _Handler.target),
    (r"/status/(\d{3})", _Handler.status),
    (r"/text", _Handler.text),
    (r"/bytes", _Handler.bytes),
    (r"/empty", _Handler.empty),
    (r"/delay/([\d.]+)", _Handler.delay),
]


class TcpProxy:
    """A TCP relay on 127.0.0.1 to ``target``: ``cut()`` makes the target unreachable
    (every relayed connection reset, new ones refused), ``restore()`` ends the outage.

    For outage tests against a real server that other tests share: the server keeps
    running, only the connections that go through the proxy see it go away.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        import socket

        self._socket = socket
        self.target = (target_host, target_port)
        self._lock = threading.Lock()
        self._open: set[Any] = set()
        self._cut = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._serving = threading.Thread(target=self._accept, args=(self._listener,), daemon=True)
        self._serving.start()

    def _accept(self, listener: Any) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut: the listener was closed
            if self._cut:
                client.close()
                return
            try:
                upstream = self._socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: Any, sink: Any) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                self._close(s)

    def _close(self, sock: Any) -> None:
        with self._lock:
            self._open.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(self._socket.SHUT_RDWR)
        sock.close()

    def cut(self) -> None:
        self._cut = True
        with contextlib.suppress(OSError):  # wakes the accept() blocked on it (Linux)
            self._listener.shutdown(self._socket.SHUT_RDWR)
        self._listener.close()
        self._serving.join(timeout=10)
        with self._lock:
            live = list(self._open)
        for sock in live:
            self._close(sock)

    def restore(self) -> None:
        self._cut = False
        self._listener = self._socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._serving = threading.Thread(target=self._accept, args=(self._listener,), daemon=True)
        self._serving.start()

    def close(self) -> None:
        self.cut()
