"""Marshmallow pieces shared by every domain's API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

# The largest offset the databases take as an integer: a larger one is a 400 naming the
# field, never an overflow inside the query.
MAX_OFFSET = 2**31 - 1


class PageArgs(Schema):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_OFFSET))


class ErrorBody(Schema):
    code = fields.String()
    message = fields.String()
    fields = fields.Dict()


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBody)
