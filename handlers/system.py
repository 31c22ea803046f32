"""Process and dependency health, metrics, and the OpenAPI document."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo.errors import PyMongoError

from handlers.base import APIHandler, api, public
from models.common import OutputModel
from server.platform.errors import DatabaseUnavailable


class HealthOut(OutputModel):
    status: str


class HealthHandler(APIHandler):
    @public
    @api(response=HealthOut)
    async def get(self) -> None:
        """GET /healthz: 200 while the process is up."""
        self.write_json({"status": "ok"})


class ReadyHandler(APIHandler):
    @public
    @api(response=HealthOut)
    async def get(self) -> None:
        """GET /readyz: 200 when the database answers a ping within 2 s; 503 otherwise."""
        try:
            await asyncio.wait_for(self.services.db.command("ping"), timeout=2)
        except (PyMongoError, TimeoutError):
            raise DatabaseUnavailable("数据库暂时不可用") from None
        self.write_json({"status": "ready"})


class MetricsHandler(APIHandler):
    @public
    async def get(self) -> None:
        """GET /metrics: 200 Prometheus text format."""
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest())


class OpenAPIHandler(APIHandler):
    @public
    async def get(self) -> None:
        """GET /api/v1/openapi.json: 200 the OpenAPI 3.1 document of every route."""
        spec: dict[str, Any] = self.application.settings["openapi"]
        self.write_json(spec)


default_handlers = [
    (r"/healthz", HealthHandler),
    (r"/readyz", ReadyHandler),
    (r"/metrics", MetricsHandler),
    (r"/api/v1/openapi.json", OpenAPIHandler),
]
