"""Debounce for conditions seen frame by frame (camera faults, crowds): pure, time passed in.

A condition is *raised* once it has held for ``on_after`` seconds since its onset, and
*cleared* once it has been absent for ``off_after`` seconds. So a capture restart shorter
than the camera-down window raises nothing, and one good frame in a frozen stream does not
clear the fault.
"""

from __future__ import annotations

from typing import Literal

Change = Literal["raised", "cleared"]


class Debounce:
    def __init__(self, on_after: float, off_after: float) -> None:
        self.on_after = on_after
        self.off_after = off_after
        self.active = False
        self.onset: float | None = None  # start of the current run of "present"
        self.raised_at: float | None = None  # onset of the run that raised it
        self._clear_since: float | None = None

    def update(self, present: bool, now: float, onset: float | None = None) -> Change | None:
        """Feed one observation. ``onset`` overrides when the condition began (a camera
        whose last frame came 4 s ago has been down for 4 s, not since this call)."""
        if present:
            self._clear_since = None
            if onset is not None:
                self.onset = onset
            elif self.onset is None:
                self.onset = now
            if not self.active and now - self.onset >= self.on_after:
                self.active = True
                self.raised_at = self.onset
                return "raised"
            return None
        self.onset = None
        if not self.active:
            return None
        if self._clear_since is None:
            self._clear_since = now
        if now - self._clear_since >= self.off_after:
            self.active = False
            self._clear_since = None
            return "cleared"
        return None
