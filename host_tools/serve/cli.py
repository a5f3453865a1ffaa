"""`cryo serve`: the archive dashboard on this machine (http://127.0.0.1:8750 by default).

    cryo serve [--archive FOLDER|URL] [--listen HOST:PORT] [--port DEVICE_PORT]

Local by default: ``--listen`` another address only on a network the
clinic trusts (no TLS here: put it behind the clinic's HTTPS proxy).
``--port``: a connected board (or ``cryo sim``'s pty) for the live view.
Users and roles: ``cryo archive user NAME --role ROLE``.
"""

from __future__ import annotations

import sys
import threading

from host_tools.commands import output
from host_tools.device.connect import add_port_argument
from host_tools.errors import InvalidInput

DEFAULT_LISTEN = "127.0.0.1:8750"
LOCAL = ("127.0.0.1", "localhost", "::1")


def register(subparsers):
    from host_tools.archive_db.location import ENV_ARCHIVE

    p = subparsers.add_parser("serve", help="the archive dashboard in a web browser")
    p.add_argument(
        "--archive",
        help=f"archive folder or postgresql:// URL (default ${ENV_ARCHIVE} or ./cryo-archive)",
    )
    p.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"address to serve on (default {DEFAULT_LISTEN})",
    )
    add_port_argument(p)
    p.add_argument("--rate", type=float, default=5.0, help="live telemetry rate, Hz (0.2..50)")
    output.add_json_argument(p, "the dashboard's address as one JSON line")
    p.set_defaults(func=cmd_serve)


def listen_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidInput(f"--listen {text!r}: use HOST:PORT, e.g. {DEFAULT_LISTEN}")
    return host, int(port)


def start_server(app, host: str, port: int):
    """The app served from a background thread; ``server.port`` is the bound port."""
    from werkzeug.serving import make_server

    try:
        server = make_server(host, port, app, threaded=True)
    except OSError as e:
        raise InvalidInput(f"cannot listen on {host}:{port}: {e.strerror}") from None
    threading.Thread(target=server.serve_forever, name="cryo-serve", daemon=True).start()
    return server


def cmd_serve(args) -> int:
    from host_tools.archive_db import location, store
    from host_tools.serve.app import create_app
    from host_tools.serve.live import LiveBoard

    host, port = listen_address(args.listen)
    if not 0.2 <= args.rate <= 50:
        raise InvalidInput(f"--rate {args.rate} out of range: 0.2..50 Hz")
    where = location.locate(args.archive)
    engine = store.open_engine(where.url)
    live = None
    if args.port:
        from host_tools.device.connect import resolve_port

        live = LiveBoard(resolve_port(args.port), args.rate).start()
    if host not in LOCAL:
        print(
            f"cryo serve: warning: listening on {host}, beyond this machine, without TLS: "
            "only on a network the clinic trusts, behind its HTTPS proxy",
            file=sys.stderr,
        )
    server = start_server(create_app(engine, where.folder, live), host, port)
    url, db = f"http://{host}:{server.port}/", store.redact(where.url)
    output.emit(
        args, {"url": url, "archive": db}, f"cryo serve: {url} (archive {db}); Ctrl-C stops"
    )
    try:
        threading.Event().wait()
    finally:
        server.shutdown()
        if live is not None:
            live.stop()
        engine.dispose()
