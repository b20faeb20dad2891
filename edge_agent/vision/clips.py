"""Cut an event clip out of the segment ring without re-encoding (a remux into MP4).

The clip starts at the keyframe nearest to ``start_ts`` (keyframes come every
``keyframe_interval``, so the start is off by at most half of that) and ends with the last
frame captured before ``end_ts``. Timestamps in and out are device wall-clock milliseconds,
the same ``ts`` the events carry.
"""

from __future__ import annotations

import itertools
import os
from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from edge_agent.vision.errors import ClipError
from edge_agent.vision.video import list_segments

_MS = Fraction(1, 1000)


def _packets(path: Path, seg_start_ms: int,
             stack: ExitStack) -> list[tuple[int, Any, Any]]:
    """(capture ms, packet, input stream) for every video packet of one segment; the
    segment stays open on ``stack`` (the output stream is made from its stream)."""
    out: list[tuple[int, Any, Any]] = []
    try:
        container = stack.enter_context(av.open(str(path)))
    except (av.error.FFmpegError, OSError):
        return out  # deleted by the quota or still empty: nothing to take from it
    if not container.streams.video:
        return out
    stream = container.streams.video[0]
    first: int | None = None
    try:
        for pkt in container.demux(stream):
            if pkt.pts is None or pkt.size == 0:
                continue
            if first is None:
                first = pkt.pts
            ms = seg_start_ms + round(float((pkt.pts - first) * pkt.time_base) * 1000)
            out.append((ms, pkt, stream))
    except av.error.FFmpegError:
        pass  # the segment being written ends mid-packet: keep what is complete
    return out


def _has_sps(data: bytes) -> bool:
    """Whether an Annex B access unit holds a sequence parameter set (NAL type 7)."""
    at = data.find(b"\x00\x00\x01")
    while at != -1 and at + 3 < len(data):
        if data[at + 3] & 0x1F == 7:
            return True
        at = data.find(b"\x00\x00\x01", at + 3)
    return False


def cut_clip(ring_dir: Path | str, start_ts: int, end_ts: int, out_path: Path | str) -> Path:
    """Write frames captured in [start_ts, end_ts) (ms) from ``ring_dir`` to ``out_path``
    (MP4 unless its suffix says otherwise); return the path. Raises ClipError when the ring
    does not cover the range."""
    if end_ts <= start_ts:
        raise ClipError(f"empty clip range {start_ts}..{end_ts}")
    ring_dir, out_path = Path(ring_dir), Path(out_path)
    segments = list_segments(ring_dir)
    chosen = [
        (start, path)
        for i, (start, path, _) in enumerate(segments)
        if start < end_ts
        and (i + 1 == len(segments) or segments[i + 1][0] > start_ts)
    ]
    if not chosen:
        raise ClipError(f"the video ring in {ring_dir} has nothing between {start_ts} and "
                        f"{end_ts} (it holds {len(segments)} segments)")
    with ExitStack() as stack:
        packets = [p for start, path in chosen for p in _packets(path, start, stack)]
        # A clip can start only where a decoder can: a keyframe carrying SPS/PPS (libx264
        # repeats them on every keyframe; a segment's first keyframe always has them).
        keys = [i for i, (ms, pkt, _) in enumerate(packets)
                if pkt.is_keyframe and ms < end_ts and _has_sps(bytes(pkt))]
        if not keys:
            raise ClipError(f"no keyframe before {end_ts} in the ring")
        first = min(keys, key=lambda i: abs(packets[i][0] - start_ts))
        _write([p for p in packets[first:] if p[0] < end_ts], out_path)
    return out_path


def _write(packets: list[tuple[int, Any, Any]], out_path: Path) -> None:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".part")
    fmt = "mp4" if out_path.suffix.lower() in ("", ".mp4", ".m4v") else None
    base = packets[0][0]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(packets) if b[0] > a[0]]
    frame_ms = sorted(gaps)[len(gaps) // 2] if gaps else 100
    try:
        with av.open(str(tmp), mode="w", format=fmt) as output:
            out_stream = output.add_stream_from_template(packets[0][2])
            last = -1
            for ms, pkt, _ in packets:
                pts = max(ms - base, last + 1)
                last = pts
                pkt.stream = out_stream
                pkt.time_base = _MS
                pkt.pts = pkt.dts = pts
                pkt.duration = frame_ms
                output.mux(pkt)
        os.replace(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
