"""Replaying vtest_first250.avi through the analysis, frame by frame, with the real model.

Hand count for the counting line used below: the vertical segment at x = 550 px from y = 250
to y = 380 px on the 768x576 frame (normalised (0.716, 0.434)-(0.716, 0.660)), across the
near part of the path. Counted by stepping through the frames (crops of x 440-680 every 2-4
frames, and a slit image of column 550 over time) and checking every figure whose feet pass
that column inside the segment:

  frame ~10  man in a black coat, walking west (right to left on screen)
  frame ~44  red-and-navy jacket, west  } a pair walking together
  frame ~52  blonde woman, black coat, west  }
  frame ~124 black coat, east
  frame ~138 white hooded top, west
  frame ~154 navy striped jumper, west
  frame ~174 dark jacket, black trousers, east  } two men walking together
  frame ~187 black jacket, jeans, east           }

8 walkers, each crossing once: 5 west, 3 east. Not counted: two people on the far side of
the path (feet above y = 250 px at frames ~110-120 and ~188), the man in a grey jacket who
walks north at x 600-640 (frames 55-110) without reaching the column, and the man in jeans
who turns back at x ~675 and recrosses at frame ~225 below the segment (feet at y ~400).
The line runs top to bottom, so a walker going west ends on its right-hand side.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.vision.analyzer import FrameAnalyzer
from edge_agent.vision.config import OpenCVCameraConfig
from edge_agent.vision.detector import LiteRTDetector
from tests.vision.conftest import MemorySink, read_frames

HAND_COUNT = 8
HAND_WEST, HAND_EAST = 5, 3
LINE = [[550 / 768, 250 / 576], [550 / 768, 380 / 576]]
# The near half of the plaza, for zone counts and a crowd event.
PLAZA = [[0.3, 0.4], [1.0, 0.4], [1.0, 0.8], [0.3, 0.8]]


@pytest.fixture(scope="module")
def replay(assets: Path, detector: LiteRTDetector) -> tuple[MemorySink, FrameAnalyzer]:
    video = assets / "video" / "vtest_first250.avi"
    cam = OpenCVCameraConfig.model_validate({
        "type": "opencv", "id": "vtest", "file": str(video), "interval": "5s",
        "lines": [{"id": "path", "points": LINE, "classes": ["person"]}],
        "zones": [{"id": "plaza", "points": PLAZA, "classes": ["person"],
                   "crowd_threshold": 4, "crowd_hold": "1s"}],
    })
    sink = MemorySink()
    analyzer = FrameAnalyzer(cam, sink, detector, started=0.0)
    last = None
    for frame in read_frames(video):
        analyzer.process(frame)
        analyzer.tick(frame.mono)
        last = frame
    assert last is not None and last.index == 249
    analyzer.flush(last.ts_ms + 100)
    return sink, analyzer


def test_person_counts_in_every_interval(replay: tuple[MemorySink, FrameAnalyzer]) -> None:
    sink, analyzer = replay
    reports = sink.of("detections")
    assert len(reports) == 5  # 25 s of video in 5 s intervals
    for r in reports:
        assert r.frames > 0
        assert r.counts.get("person", 0) >= 3  # people are on the path the whole time
        assert r.zones["plaza"]["person"] >= 1
        assert r.max_score["person"] >= 0.5
    assert reports[0].ts == 1_700_000_000_000 and reports[1].ts - reports[0].ts == 5000
    assert analyzer.inferences == 250  # walkers move all the time: the gate lets all through


def test_counting_line_counts_each_walker_once(
        replay: tuple[MemorySink, FrameAnalyzer]) -> None:
    sink, _ = replay
    west = east = 0
    for r in sink.of("detections"):
        c = r.crossings.get("path", {}).get("person")
        if c:
            west, east = west + c.right, east + c.left
    # Equal to the hand count on this machine; one either way is allowed for a detector
    # build that scores the two side-by-side pairs slightly differently.
    assert abs((west + east) - HAND_COUNT) <= 1, (west, east)
    assert abs(west - HAND_WEST) <= 1 and abs(east - HAND_EAST) <= 1, (west, east)


def test_events_carry_snapshots(replay: tuple[MemorySink, FrameAnalyzer]) -> None:
    sink, _ = replay
    crowd = sink.events("crowd")
    assert crowd and crowd[0].status == "raised" and (crowd[0].count or 0) >= 4
    cleared = [e for e in crowd if e.status == "cleared"]
    assert all(any(r.id == c.id and r.status == "raised" for r in crowd) for c in cleared)
    snaps = {meta["id"]: (jpeg, meta) for _, jpeg, meta in sink.snapshots}
    for event in sink.events():
        if event.status == "cleared":
            continue
        assert event.snapshot in snaps, event
        jpeg, meta = snaps[event.snapshot]
        assert meta["event"] == event.id and meta["kind"] == "event"
        assert len(jpeg) <= 60_000 and meta["width"] == "640"
        img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and img.shape[1] == 640
        assert event.clip_end_ts is not None and event.clip_start_ts is not None
        assert event.clip_end_ts - event.clip_start_ts == 10_000
    assert sink.events("zone_enter"), "someone entered the plaza"
    periodic = [m for _, _, m in sink.snapshots if m["kind"] == "periodic"]
    assert len(periodic) == 1  # one a minute by default, the video lasts 25 s
