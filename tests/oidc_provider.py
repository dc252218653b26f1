"""A small OpenID Connect provider on loopback for the sign-in tests: discovery, JWKS, an
auto-approving authorize endpoint, token endpoint. `mode` makes it misbehave on purpose."""

from __future__ import annotations

import secrets
import threading
import time
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

CLIENT_ID = "cmoc-test-client"
CLIENT_SECRET = "cmoc-test-secret"


class OidcProvider:
    def __init__(self):
        self.key = RSAKey.generate_key(2048, parameters={"kid": "good"})
        self.other_key = RSAKey.generate_key(2048, parameters={"kid": "good"})
        self.codes: dict[str, dict] = {}
        self.user = {"sub": "4242", "preferred_username": "grace", "email": "grace@example.com",
                     "groups": ["gitlab-com/support/cmoc"]}
        self.mode = "ok"   # ok | forged | expired | wrong_nonce | wrong_audience
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.issuer = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> OidcProvider:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)

    def config(self) -> dict:
        return {"OIDC_ISSUER": self.issuer, "OIDC_CLIENT_ID": CLIENT_ID,
                "OIDC_CLIENT_SECRET": CLIENT_SECRET}

    def wsgi(self, environ, start_response):
        request = Request(environ)
        handler = {
            "/.well-known/openid-configuration": self.discovery, "/jwks": self.jwks,
            "/authorize": self.authorize, "/token": self.token,
        }.get(request.path)
        response = handler(request) if handler else Response("not found", 404)
        return response(environ, start_response)

    def discovery(self, request):
        return _json({
            "issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                      "client_secret_post"],
        })

    def jwks(self, request):
        return _json({"keys": [self.key.as_dict(private=False) | {"use": "sig",
                                                                  "alg": "RS256"}]})

    def authorize(self, request):
        """Approves at once (the user is already signed in at the provider)."""
        args = request.args
        if args.get("client_id") != CLIENT_ID or args.get("response_type") != "code":
            return Response("bad request", 400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"nonce": args.get("nonce"), "redirect_uri": args["redirect_uri"]}
        target = args["redirect_uri"] + "?" + urlencode({"code": code,
                                                          "state": args.get("state", "")})
        return Response(status=302, headers={"Location": target})

    def token(self, request):
        grant = self.codes.pop(request.form.get("code", ""), None)
        if grant is None:
            return _json({"error": "invalid_grant"}, 400)
        now = int(time.time())
        claims = {**self.user, "iss": self.issuer, "aud": CLIENT_ID, "iat": now,
                  "exp": now + 300, "nonce": grant["nonce"]}
        if self.mode == "expired":
            claims.update(iat=now - 7200, exp=now - 3600)
        elif self.mode == "wrong_nonce":
            claims["nonce"] = "not-the-nonce"
        elif self.mode == "wrong_audience":
            claims["aud"] = "someone-else"
        key = self.other_key if self.mode == "forged" else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "good"}, claims, key)
        return _json({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                      "expires_in": 300, "id_token": id_token})


def _json(body, status=200):
    import json

    return Response(json.dumps(body), status=status, content_type="application/json")
