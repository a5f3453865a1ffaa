"""Framed command channel between the running controller and the host.

``messages`` defines the protocol once (imported by ``host_tools/device/link.py``),
``framing`` turns dicts into CRC-checked JSON lines and back, ``parser``
validates requests, ``channel.CommandChannel`` is polled by the controller
loop outside the safety path, ``stdio`` adapts the USB serial console to the
non-blocking stream the channel needs.
"""
