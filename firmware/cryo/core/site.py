"""The treatment site under the handpiece: frozen or thawed, same or new.

Two rules, both for the operator's wrong sequence (stop, press again):

* **No re-freezing of frozen tissue.** A site that was cooled stays
  *frozen* until its tissue reading has been above the thaw threshold for
  the minimum thaw time — the same rule the protocol's THAW phase applies
  between cycles ("slow, complete thaw before re-freezing"). A new
  treatment is refused while the site is frozen or the tissue is at or
  below the thaw threshold.
* **The cold dose belongs to the site.** It carries over a stop, a restart
  and a reboot (the interlock integrates it; the flag and the dose are kept
  on flash). A new site starts when the handpiece went back to its holder
  since the last treatment — the operator's deliberate act of moving on;
  on a board without a handpiece input every new treatment is a new site.

Control path (floats); ``update`` runs once per tick.
"""


class Site:
    def __init__(self, frozen=False, has_holder=True):
        self.frozen = frozen
        self._has_holder = has_holder
        self._thawed_ms = 0
        self._holstered = True  # a device that just started has no site yet
        self.tissue_c = None

    def update(self, tissue_c, cooling, holstered, thaw_c, min_thaw_ms, dt_ms):
        """Once per tick: ``cooling`` is a phase that may open the valve,
        ``holstered`` the handpiece in its holder."""
        self.tissue_c = tissue_c
        if cooling:
            self.frozen = True
            self._thawed_ms = 0
            self._holstered = False
            return
        if holstered:
            self._holstered = True
        if tissue_c is not None and tissue_c > thaw_c:
            if self._thawed_ms < min_thaw_ms:
                self._thawed_ms += dt_ms
            if self._thawed_ms >= min_thaw_ms:
                self.frozen = False
        else:
            self._thawed_ms = 0

    def refusal(self, thaw_c, min_thaw_s):
        """Why a new treatment may not start here now (None: it may)."""
        t = self.tissue_c
        if t is None:
            return None  # the self-test reports a missing reading itself
        if t <= thaw_c:
            return "tissue not thawed: %.1f C, needs above %.1f C for %d s" % (
                t,
                thaw_c,
                min_thaw_s,
            )
        if self.frozen:
            return "tissue thawed for %d of %d s above %.1f C: wait before re-freezing" % (
                self._thawed_ms // 1000,
                min_thaw_s,
                thaw_c,
            )
        return None

    def is_new(self):
        """True when the next treatment starts a new site (dose from 0)."""
        return self._holstered or not self._has_holder
