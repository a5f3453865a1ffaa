"""A chip that clocks out given bytes: feeds exact datasheet frames to drivers."""


class FrameChip:
    def __init__(self, frame=b"\x00\x00\x00\x00"):
        self.frame = bytearray(frame)
        self._pos = 0

    def set_word(self, word, nbytes=4):
        self.frame = bytearray((word >> (8 * (nbytes - 1 - i))) & 0xFF for i in range(nbytes))

    def select(self):
        self._pos = 0

    def deselect(self):
        pass

    def transfer(self, wbuf, rbuf):
        if rbuf is None:
            return
        for i in range(len(rbuf)):
            p = self._pos
            rbuf[i] = self.frame[p] if p < len(self.frame) else 0
            self._pos = p + 1
