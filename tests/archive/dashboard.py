"""The dashboard for the tests: an archive of virtual boards' pulls, its users, a running server."""

import treatments

from host_tools.archive_db import location, store, users
from host_tools.serve.app import create_app
from host_tools.serve.cli import start_server

PASSWORDS = {"ops": "operator-pw", "eng": "engineer-pw", "svc": "service-pw"}
ROLES = {"ops": "operator", "eng": "engineer", "svc": "service"}


def make_archive(d):
    """Board a: 6 sessions (from 2026-09-01), board b: 3 (from 2026-09-21, firmware 0.2.0)."""
    treatments.write(d / "a.img", 6)
    treatments.write(d / "b.img", 3, start_day=20, fw="0.2.0")
    treatments.pull(d / "a.img", d / "archive", "virtual-a")
    treatments.pull(d / "b.img", d / "archive", "virtual-b")
    engine = store.open_engine(location.locate(d / "archive").url)
    for name, role in ROLES.items():
        users.set_user(engine, name, role, PASSWORDS[name])
    return engine, d / "archive"


class Server:
    def __init__(self, engine, folder, live=None):
        self.app = create_app(engine, folder, live, secret=b"test")
        self.server = start_server(self.app, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.port}"

    def stop(self):
        self.server.shutdown()
