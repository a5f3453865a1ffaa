"""Where the firmware keeps its files on the board's flash.

One definition for the device (``main.py``, ``cryo.app.slots``) and the
host tools, which reach the same files over the raw REPL. Every name is a
path from the flash root, where the port mounts the board's flash: ``/``
on rp2 and esp32, ``/flash`` on the pyboard (the board definition's
``flash_root``). Ports start with the working directory there ("Working
with filesystems", MicroPython documentation) and boot.py makes sure of
it, so the host uses the names as they are and the device opens
``on_flash(name)``, which boot.py points at the root once the flash is
mounted (``set_root``). Plain strings only (no ``micropython`` import):
CPython imports this module as it is.
"""

CONFIG_PATH = "config.json"  # cryo.storage.config (with .lkg and .tmp beside it)
LOG_ROOT = "logs"  # cryo.storage.log: one folder of treatment logs
AUDIT_PATH = "audit.log"  # cryo.storage.audit (with .head beside it)
ROLES_PATH = "roles.txt"  # cryo.storage.roles: role PIN hashes
BOARD_PATH = "board.json"  # cryo.board: the board definition
SAFETY_STATE_PATH = "safety.bin"  # cryo.storage.safety_state: latches, site dose
DEVICE_EVENTS_PATH = "events.bin"  # cryo.storage.events: the device event log

# A/B app slots (cryo.app.slots; host_tools.commands.flash writes them)
APP_DIR = "app"
APP_ACTIVE = "app/active"  # "a" or "b": the slot to boot
APP_KEY = "app/key"  # per-device manifest key
APP_SERIAL = "app/serial"  # device serial (boards without a unique id)
APP_FAULT = "app/fault"  # why the last boot did not use the active slot


def slot_dir(slot):
    """Folder of app slot ``slot`` ("a" or "b")."""
    return APP_DIR + "/" + slot


# Where the supported ports mount their flash, in the order boot.py looks
# for the board definition there: it must close the valves before it knows
# the board's flash_root (cryo.board.load_definition).
FLASH_ROOTS = ("/", "/flash")

_root = "/"  # the flash root with a trailing "/" (set_root)


def set_root(root):
    """Name every file from ``root`` (an absolute mount point, e.g. "/flash"):
    called once by boot.py after ``cryo.board.mount_flash`` found the
    board's flash there. Raises ValueError for a relative path."""
    global _root
    if not isinstance(root, str) or not root.startswith("/"):
        raise ValueError("flash root %r: an absolute path such as / or /flash" % (root,))
    _root = root if root.endswith("/") else root + "/"


def root():
    """The flash root in use ("/" or e.g. "/flash")."""
    return _root if _root == "/" else _root[:-1]


def on_flash(name, at=None):
    """The absolute path of ``name`` on the device: under the flash root
    set at boot, or under the mount point ``at``."""
    if at is None:
        return _root + name
    return at + name if at.endswith("/") else at + "/" + name


# Device security (cryo.link.auth): the provisioning record (device id and
# per-device service key; present = authenticated link enforced) and the
# persisted count of failed authentications (cryo.link.backoff).
AUTH_PATH = "auth.txt"
AUTH_FAILS_PATH = "auth.fails"
AUTH_UNLOCK_PATH = "auth.unlock"  # cryo.link.unlock: end of a service unlock (ticks)
APP_RELEASE_PUB = "app/release.pub"  # cryo.app.release: the release key (Ed25519, public)
APP_COUNTER = "app/counter"  # cryo.app.release: lowest version code still accepted

# What the link's read path (cryo.link.files) may read: the files a log pull
# copies, and every file in LOG_ROOT - never keys, PINs or the app.
PULL_FILES = (AUDIT_PATH, AUDIT_PATH + ".head", DEVICE_EVENTS_PATH, SAFETY_STATE_PATH)
