"""JSON files a person wrote: parsed strictly, duplicate keys refused.

``json.loads`` keeps the last of two equal keys, so a configuration file
holding ``"protocol.target_c"`` twice would silently apply whichever came
last. A file like that is a mistake in the file: it is refused, naming the
key, never guessed at.
"""

from __future__ import annotations

import json

from host_tools.errors import InvalidInput


def _unique(source: str):
    def pairs(items):
        out = {}
        for k, v in items:
            if k in out:
                raise InvalidInput(
                    f"{source}: key {k!r} appears more than once; keep one value per key"
                )
            out[k] = v
        return out

    return pairs


def loads(data, source: str):
    """The JSON value of ``data`` (text or bytes) from ``source`` (named in
    errors): InvalidInput for text that is not JSON or repeats a key."""
    try:
        return json.loads(data, object_pairs_hook=_unique(source))
    except ValueError as e:
        raise InvalidInput(f"{source}: not JSON ({e})") from None
