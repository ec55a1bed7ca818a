#!/usr/bin/env python3
"""Minimal Docker/OCI token server for a loopback docker-registry (distribution 2.8).
Copied from the team's research lab (shared/reference/lab/tokenserver.py, written for
the OCI copy research note); adapted only to flush its request log (one line per
token request, with the scopes asked for) so tests can read it while it runs.
Mimics Control Plane: username must be the literal '<token>', password one of PASSWORDS.
Signs RS256 JWTs with `openssl dgst` (stdlib + openssl CLI only). Puts the cert in x5c.
usage: tokenserver.py PORT KEY.pem CERT.pem ISSUER SERVICE PASSWORD[,PASSWORD...]"""
import base64, json, subprocess, sys, time, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

PORT, KEY, CERT, ISSUER, SERVICE, PW = sys.argv[1:7]
PASSWORDS = set(PW.split(","))
der = subprocess.run(["openssl", "x509", "-in", CERT, "-outform", "DER"], capture_output=True, check=True).stdout
X5C = base64.b64encode(der).decode()

def b64u(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def sign(claims):
    h = b64u(json.dumps({"typ": "JWT", "alg": "RS256", "x5c": [X5C]}).encode())
    c = b64u(json.dumps(claims).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEY], input=f"{h}.{c}".encode(),
                         capture_output=True, check=True).stdout
    return f"{h}.{c}.{b64u(sig)}"

def parse_scopes(scopes):
    access = []
    for s in scopes:
        for one in s.split(" "):
            parts = one.split(":")
            if len(parts) < 3: continue
            typ, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1]
            access.append({"type": typ, "name": name, "actions": [a for a in actions.split(",") if a]})
    return access

class H(BaseHTTPRequestHandler):
    def _issue(self, user, pw, scopes, service):
        if user is None:
            access = []                      # anonymous: a token with no access
        elif user == "<token>" and pw in PASSWORDS:
            access = parse_scopes(scopes)    # grant what was asked
        else:
            self.send_response(401); self.send_header("Content-Type", "application/json"); self.end_headers()
            self.wfile.write(b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}'); return
        now = int(time.time())
        tok = sign({"iss": ISSUER, "sub": user or "", "aud": service or SERVICE, "exp": now + 300,
                    "nbf": now - 10, "iat": now, "jti": str(uuid.uuid4()), "access": access})
        body = json.dumps({"token": tok, "access_token": tok, "expires_in": 300,
                           "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def do_GET(self):
        u = urlparse(self.path); q = parse_qs(u.query)
        user = pw = None
        a = self.headers.get("Authorization", "")
        if a.startswith("Basic "):
            user, _, pw = base64.b64decode(a[6:]).decode().partition(":")
        self._issue(user, pw, q.get("scope", []), (q.get("service") or [None])[0])
    def do_POST(self):   # OAuth2 password grant form (docker/ggcr with identity tokens use this)
        n = int(self.headers.get("Content-Length", "0"))
        q = parse_qs(self.rfile.read(n).decode())
        gt = (q.get("grant_type") or [""])[0]
        if gt == "password":
            self._issue(q.get("username", [None])[0], q.get("password", [""])[0], q.get("scope", []), (q.get("service") or [None])[0])
        elif gt == "refresh_token":
            self._issue("<token>", q.get("refresh_token", [""])[0], q.get("scope", []), (q.get("service") or [None])[0])
        else:
            self.send_response(400); self.end_headers()
    def log_message(self, fmt, *args):
        sys.stderr.write("token: " + (fmt % args) + "\n")
        sys.stderr.flush()

ThreadingHTTPServer(("127.0.0.1", int(PORT)), H).serve_forever()
