"""Element-style complaint forms; public, since the mini-program shows them before sign-in."""

from __future__ import annotations

from handlers.base import APIHandler, api, public
from models.templates import Template, TemplateList
from server.filing.templates import get_template, list_templates


class TemplatesHandler(APIHandler):
    @public
    @api(response=TemplateList)
    async def get(self) -> None:
        """GET /api/v1/templates: 200 every complaint form (id, name, cause, description)."""
        self.write_json(TemplateList(items=list_templates()))


class TemplateHandler(APIHandler):
    @public
    @api(response=Template)
    async def get(self, template_id: str) -> None:
        """GET /api/v1/templates/{template_id}: 200 the form with its elements;
        404 ``template_not_found``."""
        self.write_json(get_template(template_id))


default_handlers = [
    (r"/api/v1/templates", TemplatesHandler),
    (r"/api/v1/templates/(?P<template_id>[a-z0-9-]{1,60})", TemplateHandler),
]
