"""Registries that need credentials, with real parts: Debian's docker-registry with
``auth.htpasswd`` (Basic), with ``auth.token`` and a token issuer run here on loopback
(RS256 JWTs whose ``x5c`` header carries a self-signed certificate the registry trusts
through ``rootcertbundle``), and with TLS from a test CA.

All of them serve ONE storage directory, together with an open registry (no auth) that
tests use to push source images and to read what tagger wrote: distribution scales
horizontally over shared storage, so what one instance writes the others serve.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import itertools
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from support.listen import serve
from support.registry import Registry, need_binary, start_registry, stop

SERVICE = "tagger-test-registry"
ISSUER = "tagger-test-issuer"
TLS_NAME = "registry.tagger.test"  # resolved to 127.0.0.1 by the tests that use it


# --- keys and certificates (cryptography) ------------------------------------------
def _key() -> object:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: object) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _cert(
    subject: str,
    key: object,
    *,
    issuer: tuple[str, object, object] | None = None,  # (name, key, cert) of a CA
    ca: bool = False,
    dns: tuple[str, ...] = (),
) -> object:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key, issuer_cert = (
        (name, key, None)
        if issuer is None
        else (x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer[0])]), issuer[1], issuer[2])
    )
    public = key.public_key()  # type: ignore[attr-defined]
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    if issuer_cert is not None:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),  # type: ignore[attr-defined]
            critical=False,
        )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if dns:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False
        )
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
    return b.sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]


def _pem_cert(cert: object) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)  # type: ignore[attr-defined, no-any-return]


@dataclass
class TlsFiles:
    ca: Path  # the CA certificate: what --ca-cert names
    cert: Path  # the server certificate, for TLS_NAME
    key: Path


def make_tls(root: Path) -> TlsFiles:
    """A test CA and a server certificate for TLS_NAME signed by it."""
    ca_key = _key()
    ca_cert = _cert("tagger test CA", ca_key, ca=True)
    key = _key()
    cert = _cert(TLS_NAME, key, issuer=("tagger test CA", ca_key, ca_cert), dns=(TLS_NAME,))
    out = TlsFiles(root / "ca.pem", root / "server.pem", root / "server-key.pem")
    out.ca.write_bytes(_pem_cert(ca_cert))
    out.cert.write_bytes(_pem_cert(cert))
    out.key.write_bytes(_pem_key(key))
    return out


# --- the token issuer -----------------------------------------------------------------
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class User:
    password: str
    actions: tuple[str, ...]  # what the user may do in any repository: ("pull",) or both


@dataclass
class TokenRequest:
    method: str  # GET (Basic login or anonymous) or POST (refresh token)
    user: str | None  # None: anonymous
    scopes: tuple[str, ...]  # in the order the request named them
    user_agent: str = ""


@dataclass
class TokenIssuer:
    """A Docker token server (distribution's token auth spec) on 127.0.0.1.

    GET  /token?service=&scope=…  with Basic credentials, or none (anonymous: no access);
    POST /token  grant_type=refresh_token (an identity token) or password.
    Grants each user its ``actions`` on the requested repositories; answers 401 to
    wrong credentials. A token lives ``lifetime`` seconds, or what ``lifetime_for`` says
    for its request (negative is fine: the registry allows 60 s of clock skew).
    ``leeway``: the ``exp`` claim is that much earlier than ``expires_in`` says (60: the
    registry refuses a token when ``expires_in`` says it expires). ``post_status``: answer
    every POST with it (a token server without OAuth2: 404 or 405); a GET then logs in
    with Basic credentials whose password may be an identity token (as ACR's does)."""

    key: object
    cert_der: bytes
    users: dict[str, User]
    refresh_tokens: dict[str, str]  # identity token -> user
    lifetime: float = 300.0
    lifetime_for: Callable[[TokenRequest], float] | None = None
    leeway: float = 0.0
    post_status: int | None = None
    log: list[TokenRequest] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    expiry: dict[str, float] = field(default_factory=dict)  # token -> exp
    server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def reset(self) -> None:
        with self._lock:
            self.log.clear()
            self.lifetime_for = None
            self.leeway = 0.0
            self.post_status = None

    def sign(
        self, user: str | None, access: list[dict[str, object]], lifetime: float, leeway: float = 0
    ) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = time.time()
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self.cert_der).decode()]}
        claims = {
            "iss": ISSUER,
            "sub": user or "",
            "aud": SERVICE,
            "exp": int(now + lifetime - leeway),
            "nbf": int(now) - 1,
            "iat": int(now),
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        signature = self.key.sign(  # type: ignore[attr-defined]
            signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        token = signing_input + "." + _b64url(signature)
        self.issued.append(token)
        self.expiry[token] = float(claims["exp"])  # type: ignore[arg-type]
        return token

    def grant(self, user: str | None, scopes: tuple[str, ...]) -> list[dict[str, object]]:
        allowed = self.users[user].actions if user else ()
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            given = [a for a in actions.split(",") if a in allowed]
            access.append({"type": kind, "name": name, "actions": given})
        return access

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlsplit(h.path)
        user: str | None = None
        agent = h.headers.get("User-Agent", "")
        if h.command == "POST" and self.post_status is not None:
            length = int(h.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(h.rfile.read(length).decode()))
            scopes = tuple(s for s in form.get("scope", "").split(" ") if s)
            with self._lock:
                self.log.append(TokenRequest(h.command, None, scopes, agent))
            return self._answer(h, self.post_status, {"error": "not found"})
        if h.command == "POST":
            length = int(h.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(h.rfile.read(length).decode()))
            scopes = tuple(s for s in form.get("scope", "").split(" ") if s)
            if form.get("grant_type") == "refresh_token":
                user = self.refresh_tokens.get(form.get("refresh_token", ""))
            elif form.get("grant_type") == "password":
                u = self.users.get(form.get("username", ""))
                user = form["username"] if u and u.password == form.get("password") else None
            if user is None:
                return self._answer(h, 401, {"error": "invalid_grant"})
        else:
            query = urllib.parse.parse_qs(parsed.query)
            scopes = tuple(query.get("scope", []))
            header = h.headers.get("Authorization", "")
            if header.startswith("Basic "):
                name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                user = self.refresh_tokens.get(password)
                if user is None and name in self.users and self.users[name].password == password:
                    user = name
                if user is None:
                    with self._lock:
                        self.log.append(TokenRequest(h.command, name, scopes, agent))
                    return self._answer(h, 401, {"errors": [{"code": "UNAUTHORIZED"}]})
        with self._lock:
            req = TokenRequest(h.command, user, scopes, agent)
            self.log.append(req)
            lifetime = self.lifetime_for(req) if self.lifetime_for else self.lifetime
            token = self.sign(user, self.grant(user, scopes), lifetime, self.leeway)
        body: dict[str, object] = {"access_token": token, "expires_in": int(lifetime)}
        if h.command == "GET":
            body["token"] = token
        self._answer(h, 200, body)

    @staticmethod
    def _answer(h: BaseHTTPRequestHandler, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def start(self) -> None:
        self.server = serve(self.handle, methods=("GET", "POST"))

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def scope_sets(self) -> list[frozenset[str]]:
        """The scope sets tokens were asked for, in order (empty sets from pings left out)."""
        return [frozenset(r.scopes) for r in self.log if r.scopes]


# --- the registries -------------------------------------------------------------------
def htpasswd(path: Path, users: dict[str, User]) -> Path:
    binary = need_binary("htpasswd")
    lines = [
        subprocess.run(
            [binary, "-Bbn", name, u.password], check=True, capture_output=True, text=True
        ).stdout.strip()
        for name, u in users.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class AuthRegistries:
    open: Registry  # no auth: push sources and read results here
    basic: str  # 127.0.0.1:PORT, htpasswd
    token: str  # 127.0.0.1:PORT, token auth through ``issuer``
    tls: str  # TLS_NAME:PORT, htpasswd over TLS from the test CA (port on 127.0.0.1)
    tls_port: int
    issuer: TokenIssuer
    ca: TlsFiles
    users: dict[str, User]
    identity_token: str  # alice's refresh token

    def host(self, kind: str) -> str:
        return {"basic": self.basic, "bearer": self.token, "tls": self.tls}[kind]


@contextlib.contextmanager
def serve_auth_registries(root: Path) -> Iterator[AuthRegistries]:
    """Start the open, Basic, token and TLS registries over one storage directory."""
    data = root / "data"
    data.mkdir()
    users = {
        "alice": User("al-" + secrets.token_urlsafe(18), ("pull", "push")),
        "bob": User("bo-" + secrets.token_urlsafe(18), ("pull",)),
    }
    identity_token = "it-" + secrets.token_urlsafe(24)
    signing_key = _key()
    signing_cert = _cert("tagger test token signer", signing_key)
    (root / "token-signer.pem").write_bytes(_pem_cert(signing_cert))
    from cryptography.hazmat.primitives import serialization

    issuer = TokenIssuer(
        signing_key,
        signing_cert.public_bytes(serialization.Encoding.DER),  # type: ignore[attr-defined]
        users,
        {identity_token: "alice"},
    )
    issuer.start()
    ca = make_tls(root)
    pw = htpasswd(root / "htpasswd", users)
    basic_auth = f"auth:\n  htpasswd: {{realm: basic-realm, path: {pw}}}\n"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        proc, open_host = start_registry(root, name="open", data=data)
        procs.append(proc)
        proc, basic = start_registry(root, basic_auth, name="basic", data=data)
        procs.append(proc)
        proc, token = start_registry(
            root,
            name="token",
            data=data,
            extra=(
                f"auth:\n  token: {{realm: {issuer.url}, service: {SERVICE}, issuer: {ISSUER},"
                f" rootcertbundle: {root / 'token-signer.pem'}}}\n"
            ),
        )
        procs.append(proc)
        proc, tls_addr = start_registry(
            root,
            name="tls",
            data=data,
            http_extra=f"  tls: {{certificate: {ca.cert}, key: {ca.key}}}\n",
            extra=basic_auth,
        )
        procs.append(proc)
        port = int(tls_addr.rsplit(":", 1)[1])
        yield AuthRegistries(
            Registry(open_host, root, itertools.count()),  # its own names: others' stay put
            basic,
            token,
            f"{TLS_NAME}:{port}",
            port,
            issuer,
            ca,
            users,
            identity_token,
        )
    finally:
        for p in procs:
            stop(p)
        issuer.close()


def resolve_to_loopback(monkeypatch: pytest.MonkeyPatch, names: tuple[str, ...]) -> None:
    """Make ``names`` resolve to 127.0.0.1 in this process (what an /etc/hosts entry or a
    DNS record would do; neither can be added by a test)."""
    import socket

    real: Callable[..., object] = socket.getaddrinfo

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        return real("127.0.0.1" if host in names else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# --- credential helpers -----------------------------------------------------------------
HELPER = """#!{python}
# a credential helper speaking docker's protocol: `get` reads a server URL on stdin
import json, sys
store = json.load(open({store!r}))
with open({calls!r}, "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
server = sys.stdin.read().strip()
with open({calls!r}, "a") as f:
    f.write(server + "\\n")
if sys.argv[1:] != ["get"]:
    sys.exit("only get is implemented")
if server not in store:
    print("credentials not found in native keychain")
    sys.exit(1)
json.dump(store[server], sys.stdout)
"""


def write_helper(
    tmp_path: Path, name: str, store: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Put ``docker-credential-NAME`` on PATH; returns the file its calls are logged to."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    (tmp_path / f"{name}.json").write_text(json.dumps(store))
    calls = tmp_path / f"{name}.calls"
    helper = bindir / f"docker-credential-{name}"
    helper.write_text(
        HELPER.format(python=sys.executable, store=str(tmp_path / f"{name}.json"), calls=str(calls))
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return calls
