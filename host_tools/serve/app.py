"""The dashboard's pages: devices, sessions with filters, a session's report, fleet charts, live.

Every page needs a signed-in user of the archive (``cryo archive user``);
everything is read-only but for the service role (re-index from the raw
records). The live view of a connected board is for engineers and service.
Pages are rendered on the server (Jinja2); charts are uPlot, vendored in
``static/vendor`` with its licence (no build step, no network).
"""

from __future__ import annotations

import functools
import os
import secrets
from pathlib import Path
from types import SimpleNamespace

from flask import Flask, abort, g, jsonify, redirect, render_template, request, session, url_for

from host_tools.archive_db import cli as archive_cli
from host_tools.archive_db import indexer, query, table_view, users
from host_tools.errors import CryoError

SESSION_FILTERS = (
    "device",
    "since",
    "until",
    "outcome",
    "fault",
    "target_reached",
    "clock_not_set",
)
PAGE_ROWS = 500  # sessions listed at most (the newest): the filters narrow the rest


def create_app(engine, folder: Path, live=None, secret: bytes | None = None) -> Flask:
    """The dashboard on the archive ``engine`` (raw records in ``folder``; ``live``: a LiveBoard)."""
    app = Flask(__name__)
    app.secret_key = secret or os.environ.get("CRYO_SERVE_SECRET", "").encode() or os.urandom(32)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict")
    folder = Path(folder)

    def needs(role):
        def wrap(view):
            @functools.wraps(view)
            def inner(*a, **kw):
                if not users.at_least(g.role, role):
                    abort(403, f"this page needs the {role} role (you are {g.role})")
                return view(*a, **kw)

            return inner

        return wrap

    @app.before_request
    def _signed_in():
        g.user, g.role = session.get("user"), session.get("role")
        if request.endpoint in ("login", "static"):
            return None
        if g.user is None:
            return redirect(url_for("login", next=request.full_path))
        if request.method == "POST" and request.form.get("csrf") != session.get("csrf"):
            abort(400, "the form expired: reload the page")
        return None

    @app.context_processor
    def _common():
        return {
            "user": g.get("user"),
            "role": g.get("role"),
            "csrf": session.get("csrf"),
            "can": lambda r: users.at_least(g.get("role"), r),
            "cell": table_view.cell,  # a value as the terminal's table shows it
        }

    @app.route("/login", methods=["GET", "POST"])
    def login():
        error = None
        if request.method == "POST":
            name = request.form.get("name", "")
            role = users.check(engine, name, request.form.get("password", ""))
            if role is not None:
                session.clear()
                session.update(user=name, role=role, csrf=secrets.token_urlsafe(16))
                nxt = request.args.get("next", "/")
                return redirect(nxt if nxt.startswith("/") and not nxt.startswith("//") else "/")
            error = "unknown user or wrong password"
        return render_template("login.html", error=error), 401 if error else 200

    @app.post("/logout")
    def logout():
        session.clear()
        return redirect(url_for("login"))

    @app.route("/")
    def devices():
        with engine.connect() as conn:
            rows = query.devices(conn)
        return render_template("devices.html", rows=rows, columns=query.DEVICE_COLUMNS)

    @app.route("/sessions")
    def sessions():
        given = {k: request.args.get(k) or None for k in SESSION_FILTERS}
        error, rows, total = None, [], 0
        try:
            filters = archive_cli.session_filters(SimpleNamespace(**given))
            with engine.connect() as conn:
                total = query.count_sessions(conn, **filters)
                rows = query.sessions(conn, limit=PAGE_ROWS, newest_first=True, **filters)
        except CryoError as e:
            error = str(e).replace("--target-reached", "target reached").replace("--", "")
        page = render_template(
            "sessions.html",
            rows=rows,
            total=total,
            given=given,
            error=error,
            outcomes=query.OUTCOMES,
            faults=query.FAULTS,
        )
        return page, 400 if error else 200

    @app.route("/session/<serial>/<int:number>")
    def report(serial, number):
        from host_tools.report import cycle_rows, summary_rows
        from host_tools.serve.trace import session_trace

        dest = folder / serial
        if serial not in {d.name for d in indexer.device_folders(folder)}:
            abort(404, f"the raw records of device {serial} are not in {folder} on this machine")
        try:
            data, trace = session_trace(dest, number)
        except CryoError as e:
            abort(404, str(e))
        return render_template(
            "session.html",
            data=data,
            serial=serial,
            summary=summary_rows(data),
            cycles=cycle_rows(data),
            trace=trace,
        )

    @app.route("/fleet")
    def fleet():
        with engine.connect() as conn:
            return render_template("fleet.html", fleet=query.fleet(conn))

    @app.route("/live")
    @needs("engineer")
    def live_view():
        return render_template("live.html", live=live)

    @app.route("/api/live")
    @needs("engineer")
    def live_data():
        if live is None:
            return jsonify({"error": "no board connected: start cryo serve with --port"}), 404
        return jsonify(live.snapshot(float(request.args.get("after", -1))))

    @app.post("/reindex")
    @needs("service")
    def reindex():
        done = indexer.reindex(engine, [folder])
        n = sum(d["sessions"] for d in done)
        return render_template(
            "message.html", message=f"re-indexed {len(done)} devices, {n} sessions"
        )

    @app.errorhandler(400)
    @app.errorhandler(403)
    @app.errorhandler(404)
    def _error(e):
        return render_template("message.html", message=e.description), e.code

    return app
