"""Centres (sites): the recruiting hospitals and the central biobank, and the one rule
that keeps a user bound to a centre inside it."""
