"""Helpers shared by app.py (Flask-Session 0.8) and app_legacy.py (Flask Unchained 0.9)."""

import base64
import os
import sys


def env_bool(name, default):
    """A true/false environment variable; unset or empty gives `default`."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value and value.strip() else default


def memcached_client(address):
    """A pymemcache client for "host:port" whose writes wait for memcached's answer.

    pymemcache sends set and delete with `noreply` by default, so the HTTP answer could
    reach the test before memcached applied the write. `default_noreply=False` makes
    every write a round trip that has finished when the view returns. No serde: both
    Flask-Session versions hand it bytes and take bytes back.
    """
    from pymemcache.client.base import Client

    host, _, port = address.rpartition(":")
    return Client((host or "127.0.0.1", int(port)), default_noreply=False,
                  connect_timeout=5, timeout=5)


def to_json(value):
    """A session value as JSON for /dump.

    JSON's own types stay themselves; bytes become {"$bytes": standard base64}; anything
    else (datetimes, tuples, dicts with non-string keys, ...) becomes {"$python": repr}.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if type(value) is list:
        return [to_json(v) for v in value]
    if type(value) is dict and all(isinstance(k, str) for k in value):
        return {k: to_json(v) for k, v in value.items()}
    return {"$python": repr(value)}


def from_json(value):
    """A request body for /set: as JSON gives it, but {"$bytes": base64} becomes bytes."""
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return base64.b64decode(value["$bytes"])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def serve(app):
    """Serve on 127.0.0.1:$PORT, threaded, without reloader or debugger, and say so on
    stdout once the socket is bound (the test waits for that line)."""
    from werkzeug.serving import make_server

    port = env_int("PORT", 5080)
    server = make_server("127.0.0.1", port, app, threaded=True)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)
