#!/usr/bin/python3
"""An RFC 8628 authorization server nobody in printbridge wrote: Authlib's AuthorizationServer
(Flask) with its DeviceAuthorizationEndpoint and DeviceCodeGrant, RFC 8414 metadata, in-memory
storage. tests/registration_authlib.rs runs it as a foreign cloud for the registration agent.

Usage: authlib_server.py ADMIN_SECRET
Binds 127.0.0.1 on a free port and prints "listening on PORT" once it accepts.

Its own administrator API (what "the administrator signs in and approves" is on this server):
  POST /admin/approve  Authorization: Bearer ADMIN_SECRET, form user_code=..., decision=approve|deny
  GET  /admin/issued   Authorization: Bearer ADMIN_SECRET: the access tokens issued, and counts
Nothing else of printbridge's cloud exists here (no printer registry, no access requests, no
administrator notification endpoint).
"""

import os
import sys
import threading
import time

# Loopback-only test server: Authlib refuses plain http unless told this is deliberate.
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"

from flask import Flask, jsonify, request  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402
from authlib.integrations.flask_oauth2 import AuthorizationServer  # noqa: E402
from authlib.oauth2.rfc6749 import ClientMixin  # noqa: E402
from authlib.oauth2.rfc8628 import (  # noqa: E402
    DeviceAuthorizationEndpoint,
    DeviceCodeGrant,
    DeviceCredentialDict,
)

CLIENT_ID = "printbridge-appliance"
INTERVAL = 1  # seconds between token polls (RFC 8628 §3.2 "interval"); short for the test

lock = threading.Lock()
credentials = {}  # device_code -> DeviceCredentialDict
grants = {}  # user_code -> (user, approved)
last_poll = {}  # device_code -> time of the last token request
issued = []  # token dicts handed out
counts = {"device_authorizations": 0, "token_polls": 0, "slow_down": 0, "approvals": 0}


class Client(ClientMixin):
    """The one public client: the appliance (no secret, RFC 6749 §2.1)."""

    def get_client_id(self):
        return CLIENT_ID

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        return scope

    def check_redirect_uri(self, redirect_uri):
        return False

    def check_client_secret(self, client_secret):
        return False

    def check_endpoint_auth_method(self, method, endpoint):
        return method == "none"

    def check_response_type(self, response_type):
        return False

    def check_grant_type(self, grant_type):
        return grant_type in (DeviceCodeGrant.GRANT_TYPE, "refresh_token")


def query_client(client_id):
    return Client() if client_id == CLIENT_ID else None


def save_token(token, req):
    with lock:
        issued.append(dict(token))


app = Flask(__name__)
# Refresh tokens too, as a real deployment issues them (the agent stores both).
app.config["OAUTH2_REFRESH_TOKEN_GENERATOR"] = True
server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
base = None  # http://127.0.0.1:PORT, set once bound


class DeviceAuthorization(DeviceAuthorizationEndpoint):
    INTERVAL = INTERVAL
    EXPIRES_IN = 600

    def get_verification_uri(self):
        return base + "/device"

    def save_device_credential(self, client_id, scope, data):
        with lock:
            counts["device_authorizations"] += 1
            # The interval counts from the code's issue too: a first poll sooner is early.
            last_poll[data["device_code"]] = time.time()
            credentials[data["device_code"]] = DeviceCredentialDict(
                client_id=client_id,
                scope=scope,
                expires_at=time.time() + data["expires_in"],
                **data,
            )


def log_early(gap):
    print("slow_down: a poll %.3f s after the previous one (interval %d s)" % (gap, INTERVAL),
          file=sys.stderr, flush=True)


class DeviceCode(DeviceCodeGrant):
    def query_device_credential(self, device_code):
        with lock:
            counts["token_polls"] += 1
            return credentials.get(device_code)

    def query_user_grant(self, user_code):
        with lock:
            return grants.get(user_code)

    def should_slow_down(self, credential):
        # RFC 8628 §3.5: a poll sooner than the interval after the previous one.
        now = time.time()
        with lock:
            previous = last_poll.get(credential["device_code"])
            last_poll[credential["device_code"]] = now
            early = previous is not None and now - previous < INTERVAL - 0.05
            if early:
                log_early(now - previous)
            if early:
                counts["slow_down"] += 1
            return early


server.register_endpoint(DeviceAuthorization)
server.register_grant(DeviceCode)


@app.get("/.well-known/oauth-authorization-server")
def metadata():
    # RFC 8414 §2 (device_authorization_endpoint: RFC 8628 §4).
    return jsonify(
        issuer=base,
        token_endpoint=base + "/oauth/token",
        device_authorization_endpoint=base + "/oauth/device_authorization",
        grant_types_supported=[DeviceCodeGrant.GRANT_TYPE],
        token_endpoint_auth_methods_supported=["none"],
        response_types_supported=[],
    )


@app.post("/oauth/device_authorization")
def device_authorization():
    return server.create_endpoint_response("device_authorization")


@app.post("/oauth/token")
def token():
    return server.create_token_response()


def administrator():
    return request.headers.get("Authorization") == "Bearer " + ADMIN_SECRET


@app.post("/admin/approve")
def approve():
    if not administrator():
        return jsonify(error="not signed in"), 401
    user_code = request.form.get("user_code", "")
    decision = request.form.get("decision", "")
    with lock:
        known = any(c["user_code"] == user_code for c in credentials.values())
        if not known or decision not in ("approve", "deny"):
            return jsonify(error="unknown user_code or decision"), 400
        grants[user_code] = ("administrator", decision == "approve")
        counts["approvals"] += 1
    return jsonify(user_code=user_code, decision=decision)


@app.get("/admin/issued")
def issued_tokens():
    if not administrator():
        return jsonify(error="not signed in"), 401
    with lock:
        return jsonify(
            access_tokens=[t["access_token"] for t in issued],
            refresh_tokens=[t.get("refresh_token") for t in issued],
            **counts,
        )


if __name__ == "__main__":
    ADMIN_SECRET = sys.argv[1]
    http = make_server("127.0.0.1", 0, app, threaded=True)
    base = "http://127.0.0.1:%d" % http.server_port
    print("listening on %d" % http.server_port, flush=True)
    http.serve_forever()
