"""The API reference for people: Swagger UI over /api/v1/openapi.json at ``/api/docs``.

Swagger UI is vendored beside the console's libraries (``console/vendor/swagger-ui-dist-*``)
and served by the console's asset handler: nothing comes from elsewhere.
"""

from __future__ import annotations

import base64
import hashlib

from tornado import web

SWAGGER = "/console/assets/vendor/swagger-ui-dist-5.36.0"
_INIT = (
    'window.ui = SwaggerUIBundle({url: "/api/v1/openapi.json", dom_id: "#docs",'
    " deepLinking: true, persistAuthorization: false});"
)
PAGE = f"""<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>移动微法院 API 参考</title>
<link rel="stylesheet" href="{SWAGGER}/swagger-ui.css">
</head>
<body>
<div id="docs"></div>
<script src="{SWAGGER}/swagger-ui-bundle.js"></script>
<script>{_INIT}</script>
</body>
</html>
"""


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(_INIT.encode()).digest()).decode()
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'sha256-{digest}'",
            "style-src 'self' 'unsafe-inline'",  # Swagger UI sets styles inline
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


class ApiDocsHandler(web.RequestHandler):
    def get(self) -> None:
        """GET /api/docs: 200 the human-readable API reference (Swagger UI)."""
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", _csp())
        self.finish(PAGE)


default_handlers: list[tuple[str, type[web.RequestHandler]]] = [
    (r"/api/docs", ApiDocsHandler),
]
