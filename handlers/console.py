"""The staff console (法院工作台): a static single-page app in ``console/``, served here.

``/console/`` is ``console/index.html`` with every asset URL versioned by its content hash
(``?v=``), and an import map doing the same for the app's ES modules, so browsers may keep
assets for good and still see a new release at once; the page itself is revalidated each
time. Vendored libraries live in versioned directories (``vendor/vue-3.5.47/``). Nothing is
fetched from elsewhere: the console works without internet.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

from tornado import web

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
ASSETS_URL = "/console/assets/"
YEAR = 365 * 24 * 3600
_ASSET = re.compile(r"%ASSET:([A-Za-z0-9_./-]+)%")
_IMPORT_MAP = "%IMPORTMAP%"
_PRELOAD = "%MODULEPRELOAD%"


_versions: dict[str, tuple[float, int, str]] = {}


def _versioned(rel: str) -> str:
    """The asset's URL with the hash of its content; re-hashed when the file changes, so an
    edited file gets a new URL even in a running server."""
    path = CONSOLE_DIR / rel
    stat = path.stat()
    cached = _versions.get(rel)
    if cached is None or cached[:2] != (stat.st_mtime, stat.st_size):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        cached = _versions[rel] = (stat.st_mtime, stat.st_size, digest)
    return f"{ASSETS_URL}{rel}?v={cached[2]}"


def _modules() -> list[str]:
    return sorted(p.relative_to(CONSOLE_DIR).as_posix() for p in CONSOLE_DIR.rglob("js/**/*.js"))


def _import_map() -> str:
    """Each module's plain URL (what relative imports resolve to) -> its versioned URL."""
    imports = {f"{ASSETS_URL}{rel}": _versioned(rel) for rel in _modules()}
    return json.dumps({"imports": imports}, separators=(",", ":"))


def _preloads() -> str:
    """Every module fetched at once, beside the libraries, rather than level by level as
    the imports are discovered."""
    return "\n".join(f'<link rel="modulepreload" href="{_versioned(rel)}">' for rel in _modules())


def _csp(inline_script: str) -> str:
    digest = base64.b64encode(hashlib.sha256(inline_script.encode()).digest()).decode()
    # 'unsafe-eval': Vue compiles the templates in the browser (no build step).
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'unsafe-eval' 'sha256-{digest}'",
            "style-src 'self' 'unsafe-inline'",  # Element Plus positions popups inline
            "img-src 'self' blob: data:",
            "worker-src 'self'",  # pdf.js parses PDFs in its vendored worker
            "frame-src 'none'",
            "object-src 'none'",
            "connect-src 'self' ws: wss:",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


class ConsoleRedirectHandler(web.RequestHandler):
    def get(self) -> None:
        """GET /console: 301 to /console/."""
        self.redirect("/console/", permanent=True)


class ConsoleIndexHandler(web.RequestHandler):
    def compute_etag(self) -> None:
        return None  # rendered per request; cheap, and revalidated by no-cache anyway

    def get(self) -> None:
        """GET /console/: 200 the console's page, its assets' URLs versioned."""
        page = (CONSOLE_DIR / "index.html").read_text(encoding="utf-8")
        import_map = _import_map()
        page = _ASSET.sub(lambda m: _versioned(m[1]), page).replace(_IMPORT_MAP, import_map)
        page = page.replace(_PRELOAD, _preloads())
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Content-Security-Policy", _csp(import_map))
        self.finish(page)


class ConsoleAssetHandler(web.StaticFileHandler):
    """The console's files: cached for a year when the URL is versioned (``?v=`` or a
    vendored library's versioned directory), revalidated (ETag) otherwise."""

    def initialize(self) -> None:  # type: ignore[override]
        super().initialize(path=str(CONSOLE_DIR))

    def get_cache_time(self, path: str, modified: object, mime_type: str) -> int:
        return YEAR if "v" in self.request.arguments or path.startswith("vendor/") else 0

    def get_content_type(self) -> str:
        # pdf.js ships ES modules as .mjs, which not every system's MIME table knows
        if self.absolute_path and self.absolute_path.endswith(".mjs"):
            return "text/javascript; charset=utf-8"
        return super().get_content_type()

    def set_extra_headers(self, path: str) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        if self.get_cache_time(path, None, ""):
            self.set_header("Cache-Control", f"public, max-age={YEAR}, immutable")
        else:
            self.set_header("Cache-Control", "no-cache")

    def write_error(self, status_code: int, **kwargs: object) -> None:
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish("未找到" if status_code == 404 else "请求有误")


default_handlers: list[tuple[str, type[web.RequestHandler]]] = [
    (r"/console", ConsoleRedirectHandler),
    (r"/console/", ConsoleIndexHandler),
    (r"/console/assets/(?P<path>[A-Za-z0-9_./-]+)", ConsoleAssetHandler),
]
