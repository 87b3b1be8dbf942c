"""Marshmallow pieces shared by every domain's API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class PageArgs(Schema):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))


class ErrorBody(Schema):
    code = fields.String()
    message = fields.String()
    fields = fields.Dict()


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBody)
