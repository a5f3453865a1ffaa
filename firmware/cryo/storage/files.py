"""Small file operations shared by the storage modules (MicroPython has no
``os.path``, ``os.makedirs`` or ``pathlib``)."""

import os


def join(a, b):
    return a + "/" + b if not a.endswith("/") else a + b


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def makedirs(path):
    parts = path.split("/")
    cur = ""
    for i, p in enumerate(parts):
        if not p:
            if i == 0:
                cur = "/"
            continue
        cur = cur + p if cur.endswith("/") or cur == "" else cur + "/" + p
        if not exists(cur):
            os.mkdir(cur)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def write_atomic(path, data):
    """Write ``data`` to ``path`` via ``path.tmp`` + rename (atomic on littlefs)."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
    os.rename(tmp, path)
