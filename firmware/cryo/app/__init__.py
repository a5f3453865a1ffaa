"""App integrity and A/B slot selection (called by boot.py).

``select_app(root)`` verifies the active slot's authenticated manifest and
returns which slot to boot (see :mod:`cryo.app.slots`); the host side
(``cryo flash``) writes slots and manifests in the format of
:mod:`cryo.app.manifest`.
"""


def select_app(root="", add_path=True):
    from cryo.app.slots import select_app as _select

    return _select(root, add_path)


def fw_hash(app):
    """32-byte firmware identity from boot's app selection (zeros if none):
    ``manifest_sha256`` is the hex SHA-256 of the booted slot's manifest
    (every file's hash is in it), so it identifies the whole image."""
    h = app.get("manifest_sha256") if app else None
    if h:
        try:
            if isinstance(h, str):
                h = h.encode()
            if len(h) == 64:
                from binascii import unhexlify

                h = unhexlify(h)
            if len(h) == 32:
                return bytes(h)
        except (TypeError, ValueError):
            pass
    return b"\x00" * 32


def run_main(g=None):
    """Run main.py of the slot ``select_app`` put first on sys.path.

    The flash root's main.py (written by ``cryo flash``) calls
    ``run_main(globals())``, so the slot's main.py shares boot.py's globals
    (``BOOT``, ``APP`` with the selection result and any fault) as the root
    main.py would. With no verified slot selected it returns False and runs
    nothing: boot.py has already driven the valves closed, so the board
    stays in the safe state.
    """
    import sys

    p = sys.path[0] if sys.path else ""
    if not (p.endswith("app/a") or p.endswith("app/b")):
        print("cryo: no verified app slot selected; staying in the safe state")
        return False
    with open(p + "/main.py") as f:
        src = f.read()
    if g is None:
        g = {}
    g["__name__"] = "__main__"
    exec(src, g)
    return True
