"""Checking a ``--port`` URL before anything opens it.

pyserial's URL handlers (``serial.urlhandler.protocol_socket`` and
``protocol_rfc2217``) parse ``socket://HOST:PORT`` and
``rfc2217://HOST:PORT`` only when the port is opened, and report a missing
or out-of-range TCP port as an unrelated error (a comparison with None, or
a format-string key of their own usage text). A malformed URL is bad input,
so it is refused here with what is wrong and the allowed form.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from host_tools.errors import InvalidInput

NETWORK_SCHEMES = ("socket", "rfc2217")  # the forms that name a host and a TCP port
TCP_PORTS = (1, 65535)  # 0 is "any port" for a listener, never a port to connect to


def check(port: str, given: str = "--port ") -> str:
    """Return ``port`` unchanged, or raise InvalidInput for a malformed network URL.

    ``given``: where the value came from (the option or the variable), for the message."""
    scheme = port.split("://", 1)[0].lower() if "://" in port else None
    if scheme not in NETWORK_SCHEMES:
        return port  # a device path (or loop://): opening it says what is wrong
    low, high = TCP_PORTS
    form = f"{scheme}://HOST:PORT with PORT {low}..{high}"
    parts = urlsplit(port)
    try:
        number = parts.port
    except ValueError:  # not a number, or beyond 65535
        number = -1
    if not parts.hostname:
        problem = "no host"
    elif number is None:
        problem = "no TCP port"
    elif not low <= number <= high:
        problem = f"TCP port {parts.netloc.rpartition(':')[2]!r} is not a number {low}..{high}"
    elif parts.path not in ("", "/"):
        problem = f"unexpected path {parts.path!r}"
    else:
        return port
    raise InvalidInput(f"{given}{port}: {problem}; expected {form}")
