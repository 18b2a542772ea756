"""A reference Flask application on Flask-Session 0.8, sharing sessions with Satchel.

The interop tests start it beside `satchel`, point both at one backend and drive them
over HTTP. It is configured from the environment only (README.md beside this file lists
the variables and routes); requirements-0.8.txt pins its packages.

    SESSION_TYPE=redis SESSION_REDIS=redis://127.0.0.1:6379/15 PORT=5080 python app.py

Prints `listening on 127.0.0.1:PORT` once the socket is bound.
"""

import os
from datetime import datetime, timedelta, timezone

from flask import Flask, flash, get_flashed_messages, jsonify, request, session
from flask_session import Session

from fixture_common import env_bool, env_int, from_json, memcached_client, serve, to_json


def configure(app):
    """Flask and Flask-Session settings, all from the environment."""
    c = app.config
    c["SECRET_KEY"] = os.environ.get("SECRET_KEY", "satchel-interop-secret")
    c["SESSION_TYPE"] = kind = os.environ.get("SESSION_TYPE", "redis")
    c["SESSION_USE_SIGNER"] = env_bool("SESSION_USE_SIGNER", False)
    c["SESSION_KEY_PREFIX"] = os.environ.get("SESSION_KEY_PREFIX", "session:")
    c["SESSION_PERMANENT"] = env_bool("SESSION_PERMANENT", True)
    c["SESSION_COOKIE_NAME"] = os.environ.get("SESSION_COOKIE_NAME", "session")
    c["PERMANENT_SESSION_LIFETIME"] = timedelta(
        seconds=env_int("PERMANENT_SESSION_LIFETIME", 31 * 24 * 3600))

    if kind == "redis":
        import redis

        # Bytes in, bytes out: no decode_responses.
        c["SESSION_REDIS"] = redis.Redis.from_url(
            os.environ.get("SESSION_REDIS", "redis://127.0.0.1:6379/0"))
    elif kind == "memcached":
        c["SESSION_MEMCACHED"] = memcached_client(
            os.environ.get("SESSION_MEMCACHED", "127.0.0.1:11211"))
    elif kind == "sqlalchemy":
        from flask_sqlalchemy import SQLAlchemy

        c["SQLALCHEMY_DATABASE_URI"] = os.environ["SQLALCHEMY_DATABASE_URI"]
        c["SESSION_SQLALCHEMY_TABLE"] = os.environ.get("SESSION_SQLALCHEMY_TABLE", "sessions")
        # Flask-Session creates the table (CREATE TABLE, checkfirst) in Session(app).
        c["SESSION_SQLALCHEMY"] = SQLAlchemy(app)
    elif kind == "mongodb":
        import pymongo

        c["SESSION_MONGODB"] = pymongo.MongoClient(
            os.environ.get("SESSION_MONGODB", "mongodb://127.0.0.1:27017"))
        c["SESSION_MONGODB_DB"] = os.environ.get("SESSION_MONGODB_DB", "flask_session")
        c["SESSION_MONGODB_COLLECT"] = os.environ.get("SESSION_MONGODB_COLLECT", "sessions")
    else:
        raise SystemExit(f"SESSION_TYPE must be redis, memcached, sqlalchemy or mongodb, not {kind!r}")


app = Flask(__name__)
configure(app)
Session(app)


@app.get("/dump")
def dump():
    response = jsonify(to_json(dict(session)))
    response.headers["X-Session-Permanent"] = "true" if session.permanent else "false"
    return response


@app.post("/set/<key>")
def set_key(key):
    session[key] = from_json(request.get_json(force=True))
    return "ok"


@app.post("/write")
def write():
    session["n"] = session.get("n", 0) + 1
    return jsonify(session["n"])


# Values Satchel cannot represent: stored here, checked again on a later request.
AWARE = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
NAIVE = datetime(2024, 1, 2, 3, 4, 5)


@app.post("/types")
def types_store():
    session["dt"] = AWARE
    session["tup"] = (1, 2)
    session["b"] = b"\x00\xffbin"
    session["naive"] = NAIVE
    return "ok"


@app.get("/types")
def types_check():
    # What msgspec's msgpack gives back: the aware datetime as an aware datetime in UTC
    # and bytes as bytes, but the tuple as a list and the naive datetime as its ISO
    # string. Each entry is true when the value came back in that form.
    dt, tup, b, naive = (session.get(k) for k in ("dt", "tup", "b", "naive"))
    return jsonify({
        "dt": type(dt) is datetime and dt == AWARE and dt.utcoffset() == timedelta(0),
        "tup": type(tup) is list and tup == [1, 2],
        "b": type(b) is bytes and b == b"\x00\xffbin",
        "naive": type(naive) is str and naive == "2024-01-02T03:04:05",
    })


@app.post("/flash")
def flash_message():
    flash("hello", "info")
    return "ok"


@app.get("/flashes")
def flashes():
    return jsonify(get_flashed_messages(with_categories=True))


@app.post("/clear")
@app.post("/logout", endpoint="logout")
def clear():
    # An emptied session is deleted from the backend and its cookie removed.
    session.clear()
    return "ok"


@app.post("/regenerate")
def regenerate():
    # Deletes the stored entry and gives the session a new id (a no-op when empty).
    app.session_interface.regenerate(session)
    return "ok"


@app.post("/permanent/<flag>")
def permanent(flag):
    if flag not in ("true", "false"):
        return "permanent must be true or false", 400
    session.permanent = flag == "true"
    return "ok"


@app.post("/login")
def login():
    session["_user_id"] = str(int(request.args["uid"]))
    app.session_interface.regenerate(session)
    return "ok"


if __name__ == "__main__":
    serve(app)
