"""hub.ingest.spool: batches survive restarts and replay in arrival order."""

from __future__ import annotations

from pathlib import Path

from hub.ingest.spool import Spool


def drain(spool: Spool) -> list[bytes]:
    out = []
    while (item := spool.oldest()) is not None:
        path, body = item
        out.append(body)
        spool.remove(path)
    return out


def test_empty(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")  # created when missing
    assert spool.oldest() is None
    assert (spool.depth(), spool.size_bytes()) == (0, 0)


def test_oldest_first_and_remove(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    bodies = [f"m f={i}i {i}".encode() for i in range(12)]  # past 9: names must sort as numbers
    paths = [spool.put(b) for b in bodies]
    assert [p.name for p in paths[:2]] == ["000000000001.lp", "000000000002.lp"]
    assert spool.depth() == 12
    assert spool.size_bytes() == sum(len(b) for b in bodies)
    oldest = spool.oldest()
    assert oldest == (paths[0], bodies[0])
    assert spool.oldest() == oldest  # looking does not consume
    spool.remove(paths[0])
    spool.remove(paths[0])  # replay may remove twice after a crash: harmless
    assert drain(spool) == bodies[1:]
    assert spool.depth() == 0


def test_survives_reopen_and_keeps_counting(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(b"one")
    spool.put(b"two")
    spool.remove(spool.oldest()[0])  # type: ignore[index]
    reopened = Spool(tmp_path)
    assert reopened.depth() == 1
    third = reopened.put(b"three")
    assert third.name == "000000000003.lp"  # never reuses a name still on disk
    assert drain(reopened) == [b"two", b"three"]


def test_leftover_tmp_files_are_cleaned_on_open(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(b"kept")
    (tmp_path / "000000000002.tmp").write_bytes(b"half a batch")  # a crash mid-write
    (tmp_path / "notes.txt").write_text("not ours")
    reopened = Spool(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000000000001.lp", "notes.txt"]
    assert reopened.put(b"next").name == "000000000002.lp"
    assert drain(reopened) == [b"kept", b"next"]
    assert not list(tmp_path.glob("*.tmp"))


def test_put_leaves_no_tmp_behind(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for i in range(3):
        spool.put(b"x" * i)
    assert not list(tmp_path.glob("*.tmp"))
    assert drain(spool) == [b"", b"x", b"xx"]
