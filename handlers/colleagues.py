"""The staff of one's own court, for the console's assignment pickers."""

from __future__ import annotations

from handlers.base import APIHandler, api, needs_role
from models.common import Page
from models.users import STAFF_ROLES, ColleagueOut, ColleagueQuery

STAFF = tuple(sorted(STAFF_ROLES))


class ColleaguesHandler(APIHandler):
    @needs_role(*STAFF)
    @api(query=ColleagueQuery, response=Page[ColleagueOut])
    async def get(self) -> None:
        """GET /api/v1/colleagues?role=&limit=&cursor=: the active staff of my court (id, name,
        role, supervisor and division-head flags), newest first, cursor-paged; to pick a
        judge and clerk for a case or an assignee for a work order. 200; 400 bad cursor;
        403 not staff, or staff of no court; 422 bad query."""
        query = self.parse_query(ColleagueQuery)
        self.write_json(await self.services.users.colleagues(self.caller, query))


default_handlers = [(r"/api/v1/colleagues", ColleaguesHandler)]
