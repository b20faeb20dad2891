"""Message catalogs: complete, compiled when stale, and never a half-written .mo."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from hub.web.i18n import LANGUAGES, TRANSLATIONS_DIR, compile_catalogs

WEB_DIR = TRANSLATIONS_DIR.parent


def _extracted() -> set[str]:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    found = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(str(WEB_DIR), method_map):
        found.add(message if isinstance(message, str) else message[0])
    return found


def _catalog(lang: str) -> Catalog:
    with (TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=lang)


def test_every_visible_string_is_translated() -> None:
    wanted = _extracted()
    assert {"Device fleet", "Online", "Last seen (WIB)"} <= wanted
    for lang in LANGUAGES:
        cat = _catalog(lang)
        missing = []
        for msgid in sorted(wanted):
            m = cat.get(msgid)
            if m is None or m.fuzzy or not m.string:
                missing.append(msgid)
                continue
            strings = [m.string] if isinstance(m.string, str) else list(m.string)
            if not all(strings):
                missing.append(msgid)
        assert not missing, f"{lang}: untranslated {missing}"


def test_indonesian_differs_from_english_where_it_should() -> None:
    cat = _catalog("id")
    for msgid, indonesian in [("Online", "Daring"), ("Offline", "Luring"),
                              ("Last seen (WIB)", "Terakhir terlihat (WIB)")]:
        m = cat.get(msgid)
        assert m is not None and m.string == indonesian
    assert cat.plural_forms == "nplurals=1; plural=0;"


def _copy_catalogs(tmp_path: Path) -> Path:
    root = tmp_path / "translations"
    for po in TRANSLATIONS_DIR.glob("*/LC_MESSAGES/messages.po"):
        dest = root / po.relative_to(TRANSLATIONS_DIR)
        dest.parent.mkdir(parents=True)
        shutil.copy2(po, dest)
    return root


def test_compile_when_missing_then_only_when_older(tmp_path: Path) -> None:
    root = _copy_catalogs(tmp_path)
    written = compile_catalogs(root)
    assert sorted(p.parent.parent.name for p in written) == sorted(LANGUAGES)
    mo = root / "id" / "LC_MESSAGES" / "messages.mo"
    with mo.open("rb") as f:
        online = read_mo(f).get("Online")
    assert online is not None and online.string == "Daring"
    assert compile_catalogs(root) == []  # up to date

    po = mo.with_suffix(".po")
    stat = mo.stat()
    os.utime(po, (stat.st_atime, stat.st_mtime + 10))  # the .po was edited after
    assert compile_catalogs(root) == [mo]
    # written through a temporary file that is renamed: nothing else is left behind
    assert sorted(p.name for p in mo.parent.iterdir()) == ["messages.mo", "messages.po"]

