"""The courts this deployment serves."""

from __future__ import annotations

from handlers.base import APIHandler, api, public
from models.courts import CourtList, CourtOut


class CourtsHandler(APIHandler):
    @public
    @api(response=CourtList)
    async def get(self) -> None:
        """GET /api/v1/courts: 200 every court with its code and case-type codes."""
        courts = self.services.settings.courts
        self.write_json(CourtList(items=[CourtOut.model_validate(c.model_dump()) for c in courts]))


default_handlers = [(r"/api/v1/courts", CourtsHandler)]
