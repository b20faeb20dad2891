"""Languages of the web app: Bahasa Indonesia first (default), English second.

The locale comes from ``?lang=`` (remembered in a cookie), then the cookie, then the default.
Message catalogs live in ``hub/web/translations/<lang>/LC_MESSAGES/messages.po``; the
compiled ``.mo`` files are not in git and are (re)built at app start when missing or older.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Final
from urllib.parse import urlencode

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, Response, request
from flask_babel import Babel, get_locale

log = logging.getLogger(__name__)

LANGUAGES: Final = ("id", "en")
DEFAULT_LANGUAGE: Final = "id"
LANG_COOKIE: Final = "dcor_lang"
LANG_COOKIE_MAX_AGE_S: Final = 365 * 24 * 3600
TRANSLATIONS_DIR: Final = Path(__file__).resolve().parent / "translations"


def _requested_language() -> str | None:
    lang = request.args.get("lang", "")
    return lang if lang in LANGUAGES else None


def select_locale() -> str:
    cookie = request.cookies.get(LANG_COOKIE, "")
    return _requested_language() or (cookie if cookie in LANGUAGES else DEFAULT_LANGUAGE)


def current_language() -> str:
    loc = get_locale()
    return str(loc.language) if loc is not None else DEFAULT_LANGUAGE


def lang_url(code: str) -> str:
    """This page in another language, its other query parameters (a wall's desk) kept."""
    args = request.args.to_dict(flat=False)
    args["lang"] = [code]
    return "?" + urlencode(args, doseq=True)


def _remember_language(response: Response) -> Response:
    lang = _requested_language()
    if lang is not None and request.cookies.get(LANG_COOKIE) != lang:
        response.set_cookie(LANG_COOKIE, lang, max_age=LANG_COOKIE_MAX_AGE_S, samesite="Lax",
                            httponly=True)
    return response


def compile_catalogs(root: Path = TRANSLATIONS_DIR) -> list[Path]:
    """Compile every ``messages.po`` under ``root`` whose ``.mo`` is missing or older.

    Written to a temporary file and renamed, so web workers starting together never see a
    half-written catalog. Returns the ``.mo`` files written.
    """
    written = []
    for po in sorted(root.glob("*/LC_MESSAGES/messages.po")):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as f:
            catalog = read_po(f)
        fd, tmp = tempfile.mkstemp(dir=po.parent, prefix=".messages-", suffix=".mo")
        try:
            with os.fdopen(fd, "wb") as out:
                write_mo(out, catalog)
            os.replace(tmp, mo)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(mo)
    return written


def init_i18n(app: Flask) -> None:
    try:
        compile_catalogs()
    except OSError as exc:
        # A read-only install without compiled catalogs still serves, in the msgids' English.
        log.warning("cannot compile message catalogs in %s: %s", TRANSLATIONS_DIR, exc)
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    Babel(app, locale_selector=select_locale)
    app.after_request(_remember_language)
    app.jinja_env.globals.update(current_language=current_language, LANGUAGES=LANGUAGES,
                                 lang_url=lang_url)
