"""A small OpenID Connect provider on loopback for the sign-in tests: discovery, JWKS, an
auto-approving authorize endpoint, token and userinfo endpoints. `mode` makes it misbehave on
purpose; `layout = "gitlab"` releases claims as GitLab's doorkeeper config does: `groups` only
in the userinfo answer, `groups_direct` only in the ID token."""

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
        # ok | forged | expired | wrong_nonce | wrong_audience | deny | token_down |
        # userinfo_down | other_subject
        self.mode = "ok"
        self.layout = "plain"   # plain (groups in the ID token) | gitlab
        self.id_token_omits: set[str] = set()   # user claims left out of the ID token
        self.access_tokens: set[str] = set()
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
            "/authorize": self.authorize, "/token": self.token, "/userinfo": self.userinfo,
        }.get(request.path)
        response = handler(request) if handler else Response("not found", 404)
        return response(environ, start_response)

    def discovery(self, request):
        return _json({
            "issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
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
        if self.mode == "deny":
            target = args["redirect_uri"] + "?" + urlencode({
                "error": "access_denied", "state": args.get("state", ""),
                "error_description": "The resource owner or authorization server denied the "
                                     "request."})
            return Response(status=302, headers={"Location": target})
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"nonce": args.get("nonce"), "redirect_uri": args["redirect_uri"]}
        target = args["redirect_uri"] + "?" + urlencode({"code": code,
                                                          "state": args.get("state", "")})
        return Response(status=302, headers={"Location": target})

    def token(self, request):
        if self.mode == "token_down":
            return Response("<html>502 Bad Gateway</html>", status=502, content_type="text/html")
        grant = self.codes.pop(request.form.get("code", ""), None)
        if grant is None:
            return _json({"error": "invalid_grant"}, 400)
        now = int(time.time())
        released = {k: v for k, v in self.user.items() if k not in self.id_token_omits}
        if self.layout == "gitlab":
            released.pop("groups", None)
            released["groups_direct"] = list(self.user.get("groups_direct",
                                                            self.user.get("groups", [])))
        claims = {**released, "iss": self.issuer, "aud": CLIENT_ID, "iat": now,
                  "exp": now + 300, "nonce": grant["nonce"]}
        if self.mode == "expired":
            claims.update(iat=now - 7200, exp=now - 3600)
        elif self.mode == "wrong_nonce":
            claims["nonce"] = "not-the-nonce"
        elif self.mode == "wrong_audience":
            claims["aud"] = "someone-else"
        key = self.other_key if self.mode == "forged" else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "good"}, claims, key)
        access = secrets.token_urlsafe(16)
        self.access_tokens.add(access)
        return _json({"access_token": access, "token_type": "Bearer",
                      "expires_in": 300, "id_token": id_token})

    def userinfo(self, request):
        if self.mode == "userinfo_down":
            return Response("<html>502 Bad Gateway</html>", status=502, content_type="text/html")
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.access_tokens:
            return _json({"error": "invalid_token"}, 401)
        info = {k: v for k, v in self.user.items() if k != "groups_direct"}
        if self.layout != "gitlab":
            info.pop("groups", None)   # plain: groups are in the ID token only
        if self.mode == "other_subject":
            info["sub"] = "someone-else"
        return _json(info)


def _json(body, status=200):
    import json

    return Response(json.dumps(body), status=status, content_type="application/json")
