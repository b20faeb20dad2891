"""A QR code of the device id for the terminal (segno), so the label on the box can be
checked against the hub with a phone. Optional: without segno there is no QR, only text."""

from __future__ import annotations

import io


def terminal_qr(text: str) -> str:
    try:
        import segno
    except ImportError:
        return ""
    out = io.StringIO()
    segno.make(text, error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue()
