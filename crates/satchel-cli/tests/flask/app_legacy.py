"""A reference Flask Unchained 0.9 application (its session bundle, on Flask-Session 0.6),
sharing sessions with Satchel.

The same routes as app.py, built the Flask Unchained way: this module is a single-module
app bundle (BUNDLES, an AppBundle, a Config, a Controller) handed to its AppFactory.
Values are dill pickles, as the session bundle sets `serializer = dill`.
requirements-legacy.txt pins its packages.

    SESSION_TYPE=redis SESSION_REDIS=redis://127.0.0.1:6379/15 PORT=5080 python app_legacy.py

Prints `listening on 127.0.0.1:PORT` once the socket is bound.
"""

import os
import sys

if __name__ == "__main__":
    # Flask Unchained imports its app bundle by module name, so run this file as the
    # module `app_legacy` rather than `__main__` (which would define everything twice).
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import app_legacy

    app_legacy.main()
    sys.exit(0)

from datetime import datetime, timedelta, timezone

from flask import flash, get_flashed_messages, jsonify, request, session
from flask_unchained import AppBundle, BundleConfig, Controller, route

from fixture_common import env_bool, env_int, from_json, memcached_client, serve, to_json

SESSION_TYPE = os.environ.get("SESSION_TYPE", "redis")

# The session bundle, and the SQLAlchemy bundle whose `db` it stores sessions with.
BUNDLES = (["flask_unchained.bundles.sqlalchemy"] if SESSION_TYPE == "sqlalchemy" else []) + [
    "flask_unchained.bundles.session",
]


class App(AppBundle):
    pass


class Config(BundleConfig):
    """The app bundle's settings, all from the environment; they override the session
    bundle's defaults (which has SESSION_TYPE 'null' and table 'flask_sessions')."""

    SECRET_KEY = os.environ.get("SECRET_KEY", "satchel-interop-secret")
    SESSION_TYPE = SESSION_TYPE
    SESSION_USE_SIGNER = env_bool("SESSION_USE_SIGNER", False)
    SESSION_KEY_PREFIX = os.environ.get("SESSION_KEY_PREFIX", "session:")
    SESSION_PERMANENT = env_bool("SESSION_PERMANENT", True)
    SESSION_COOKIE_NAME = os.environ.get("SESSION_COOKIE_NAME", "session")
    PERMANENT_SESSION_LIFETIME = timedelta(
        seconds=env_int("PERMANENT_SESSION_LIFETIME", 31 * 24 * 3600))
    # Flask-WTF comes with Flask Unchained; the JSON routes here carry no CSRF token.
    WTF_CSRF_ENABLED = False

    if SESSION_TYPE == "redis":
        import redis

        SESSION_REDIS = redis.Redis.from_url(
            os.environ.get("SESSION_REDIS", "redis://127.0.0.1:6379/0"))
    elif SESSION_TYPE == "memcached":
        SESSION_MEMCACHED = memcached_client(
            os.environ.get("SESSION_MEMCACHED", "127.0.0.1:11211"))
    elif SESSION_TYPE == "sqlalchemy":
        SQLALCHEMY_DATABASE_URI = os.environ["SQLALCHEMY_DATABASE_URI"]
        SESSION_SQLALCHEMY_TABLE = os.environ.get("SESSION_SQLALCHEMY_TABLE", "flask_sessions")
    elif SESSION_TYPE == "mongodb":
        import pymongo

        SESSION_MONGODB = pymongo.MongoClient(
            os.environ.get("SESSION_MONGODB", "mongodb://127.0.0.1:27017"))
        SESSION_MONGODB_DB = os.environ.get("SESSION_MONGODB_DB", "flask_session")
        SESSION_MONGODB_COLLECT = os.environ.get("SESSION_MONGODB_COLLECT", "sessions")
    else:
        raise SystemExit(
            f"SESSION_TYPE must be redis, memcached, sqlalchemy or mongodb, not {SESSION_TYPE!r}")


# Values Satchel cannot represent: stored here, checked again on a later request.
AWARE = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
NAIVE = datetime(2024, 1, 2, 3, 4, 5)


class SessionController(Controller):
    class Meta:
        url_prefix = "/"

    @route("/dump", methods=["GET"])
    def dump(self):
        response = jsonify(to_json(dict(session)))
        response.headers["X-Session-Permanent"] = "true" if session.permanent else "false"
        return response

    @route("/set/<key>", methods=["POST"])
    def set_key(self, key):
        session[key] = from_json(request.get_json(force=True))
        return "ok"

    @route("/write", methods=["POST"])
    def write(self):
        session["n"] = session.get("n", 0) + 1
        return jsonify(session["n"])

    @route("/types", methods=["POST"])
    def types_store(self):
        session["dt"] = AWARE
        session["tup"] = (1, 2)
        session["b"] = b"\x00\xffbin"
        session["naive"] = NAIVE
        return "ok"

    @route("/types", methods=["GET"])
    def types_check(self):
        # A (dill) pickle keeps every Python type: each entry is true when the value
        # came back as the very same type and value.
        dt, tup, b, naive = (session.get(k) for k in ("dt", "tup", "b", "naive"))
        return jsonify({
            "dt": type(dt) is datetime and dt == AWARE and dt.tzinfo == timezone.utc,
            "tup": type(tup) is tuple and tup == (1, 2),
            "b": type(b) is bytes and b == b"\x00\xffbin",
            "naive": type(naive) is datetime and naive.tzinfo is None and naive == NAIVE,
        })

    @route("/flash", methods=["POST"])
    def flash_message(self):
        flash("hello", "info")
        return "ok"

    @route("/flashes", methods=["GET"])
    def flashes(self):
        return jsonify(get_flashed_messages(with_categories=True))

    @route("/clear", methods=["POST"])
    def clear(self):
        # An emptied session is deleted from the backend and its cookie removed.
        session.clear()
        return "ok"

    @route("/logout", methods=["POST"])
    def logout(self):
        session.clear()
        return "ok"

    @route("/regenerate", methods=["POST"])
    def regenerate(self):
        # Flask-Session 0.6 has no regenerate(): the session keeps its id for life.
        interface = self._app().session_interface
        if not hasattr(interface, "regenerate"):
            return "no session id regeneration in Flask-Session 0.6", 404
        interface.regenerate(session)
        return "ok"

    @route("/permanent/<flag>", methods=["POST"])
    def permanent(self, flag):
        if flag not in ("true", "false"):
            return "permanent must be true or false", 400
        session.permanent = flag == "true"
        return "ok"

    @route("/login", methods=["POST"])
    def login(self):
        session["_user_id"] = str(int(request.args["uid"]))
        interface = self._app().session_interface
        if hasattr(interface, "regenerate"):
            interface.regenerate(session)
        return "ok"

    @staticmethod
    def _app():
        from flask import current_app

        return current_app


def create_app():
    from flask_unchained import PROD, AppFactory

    # This module's BUNDLES, then this module as the app bundle. The bundles are named
    # here, so Flask Unchained need not look for an unchained_config in the working
    # directory: the app starts from any directory.
    app = AppFactory().create_app(PROD, bundles=BUNDLES + [__name__], _load_unchained_config=False)

    if SESSION_TYPE == "sqlalchemy":
        from flask_unchained.bundles.sqlalchemy import db

        interface = app.session_interface
        # Flask Unchained 0.9.0's SqlAlchemySessionInterface skips Flask-Session's
        # __init__, so `sid_length` and `has_same_site_capability` are never set and
        # every request fails with AttributeError. Set them as its later (unreleased)
        # version does; nothing else about its storage changes.
        if not hasattr(interface, "sid_length"):
            interface.sid_length = app.config.get("SESSION_ID_LENGTH", 32)
        if not hasattr(interface, "has_same_site_capability"):
            interface.has_same_site_capability = hasattr(interface, "get_cookie_samesite")
        # Flask Unchained leaves the table to migrations; create it (if missing) here.
        with app.app_context():
            db.create_all()
    return app


def main():
    serve(create_app())
