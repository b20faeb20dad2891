"""The H.264 segment ring and clips cut from it without re-encoding."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from edge_agent.vision.clips import cut_clip
from edge_agent.vision.config import VideoConfig
from edge_agent.vision.errors import ClipError
from edge_agent.vision.flow import Frame
from edge_agent.vision.video import SegmentRing, choose_encoder, list_segments
from tests.vision.conftest import read_frames

T0 = 1_700_000_000_000


@pytest.fixture(scope="module")
def ring(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """15 s of vtest at 10 fps in 2 s segments with a keyframe every second."""
    directory = tmp_path_factory.mktemp("ring")
    ring = SegmentRing(directory, VideoConfig(segment=2.0, keyframe_interval=1.0), 10.0)
    for frame in read_frames(assets / "video" / "vtest_first250.avi", T0):
        if frame.index >= 150:
            break
        ring.write(frame)
    ring.close()
    assert ring.encoder == "libx264"
    return directory


def _probe(path: Path) -> tuple[int, float, bool]:
    """(decoded frames, duration in seconds, first frame is a keyframe)."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = list(c.decode(stream))
        first, last = frames[0], frames[-1]
        assert first.pts is not None and last.pts is not None and stream.time_base
        span = float((last.pts - first.pts) * stream.time_base) + 0.1  # + one frame
        return len(frames), span, first.key_frame


def test_segments_start_at_their_first_frame(ring: Path) -> None:
    segments = list_segments(ring)
    assert [s for s, _, _ in segments] == [T0 + 2000 * i for i in range(8)]
    assert all(size > 0 for _, _, size in segments)


@pytest.mark.parametrize(("start", "end"), [
    (3_200, 9_200),  # across three segments
    (0, 2_000),  # exactly one segment
    (10_400, 14_900),  # up to the end of what was recorded
])
def test_a_clip_decodes_and_lasts_what_was_asked(ring: Path, tmp_path: Path,
                                                 start: int, end: int) -> None:
    out = cut_clip(ring, T0 + start, T0 + end, tmp_path / "clip.mp4")
    frames, duration, keyframe = _probe(out)
    asked = (end - start) / 1000
    assert abs(duration - asked) <= 0.1 * asked, (duration, asked)
    assert keyframe and frames == round(duration * 10)
    assert not list(tmp_path.glob("*.part"))


def test_a_clip_outside_the_ring_is_a_clear_error(ring: Path, tmp_path: Path) -> None:
    with pytest.raises(ClipError, match="nothing between"):
        cut_clip(ring, T0 - 60_000, T0 - 30_000, tmp_path / "clip.mp4")
    with pytest.raises(ClipError, match="empty clip range"):
        cut_clip(ring, T0 + 5_000, T0 + 5_000, tmp_path / "clip.mp4")


def test_the_quota_deletes_the_oldest_segments(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(4)]
    cfg = VideoConfig.model_validate({"segment": "1s", "quota": "1MB", "crf": 10})
    ring = SegmentRing(tmp_path, cfg, 10.0)
    for i in range(80):  # noise compresses badly: ~1.5 MB over 8 segments
        ring.write(Frame(noise[i % 4], T0 + i * 100, i * 0.1, i))
    ring.close()
    segments = list_segments(tmp_path)
    assert ring.deleted > 0
    assert sum(size for _, _, size in segments) <= 1_000_000
    assert segments[-1][0] == T0 + 7000  # the newest is kept


def test_encoder_choice() -> None:
    assert choose_encoder("libx264") == ["libx264"]
    assert choose_encoder("h264_v4l2m2m") == ["h264_v4l2m2m", "libx264"]
    assert choose_encoder("auto")[-1] == "libx264"


@pytest.mark.parametrize(("data", "want"), [
    (b"\x00\x00\x00\x01\x09\xf0\x00\x00\x00\x01\x67\x64\x00\x1f", True),  # AUD, then SPS
    (b"\x00\x00\x01\x67\x42", True),
    (b"\x00\x00\x00\x01\x65\x88\x84", False),  # an IDR slice alone
    (b"", False),
])
def test_clips_start_only_where_parameter_sets_are(data: bytes, want: bool) -> None:
    from edge_agent.vision.clips import _has_sps

    assert _has_sps(data) is want
