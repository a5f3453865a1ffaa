"""CRC-32 (IEEE 802.3, the ``zlib.crc32`` polynomial) for every record the
firmware writes or frames: the treatment log, the device records and the
serial link.

``binascii.crc32`` returns up to 2**32-1: on a 32-bit board values >= 2**30
are heap-allocated long ints. The sample path therefore uses a
table-driven CRC-32 held as two 16-bit halves (small ints only), which
allocates nothing on any port and gives the same value as zlib.crc32.
"""

from binascii import crc32 as _crc32


def _make_tables():
    lo = []
    hi = []
    n = 0
    while n < 256:
        c = n
        k = 0
        while k < 8:
            c = (0xEDB88320 ^ (c >> 1)) if c & 1 else (c >> 1)
            k += 1
        lo.append(c & 0xFFFF)
        hi.append(c >> 16)
        n += 1
    return tuple(lo), tuple(hi)


_T_LO, _T_HI = _make_tables()


def crc32_into(buf, start, n, out):
    """CRC-32 of ``buf[start:start+n]`` written little-endian at ``buf[out]``.

    Allocation-free (index loop, 16-bit halves): usable with the heap locked.
    """
    lo = 0xFFFF
    hi = 0xFFFF
    tlo = _T_LO
    thi = _T_HI
    i = start
    end = start + n
    while i < end:
        idx = (lo ^ buf[i]) & 0xFF
        lo = ((lo >> 8) | ((hi & 0xFF) << 8)) ^ tlo[idx]
        hi = (hi >> 8) ^ thi[idx]
        i += 1
    lo ^= 0xFFFF
    hi ^= 0xFFFF
    buf[out] = lo & 0xFF
    buf[out + 1] = lo >> 8
    buf[out + 2] = hi & 0xFF
    buf[out + 3] = hi >> 8


def crc32(data):
    """CRC-32 of ``data`` (bytes-like) as an int (may allocate)."""
    return _crc32(data) & 0xFFFFFFFF
