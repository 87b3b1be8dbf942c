"""A real SMTP server on the loopback, and ports where nothing listens."""

from __future__ import annotations

import socket

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    """A port nobody listens on now: bound by the system, then let go."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Collector:
    """Keeps every envelope; refuses the recipients listed in ``refuse``."""

    def __init__(self):
        self.envelopes = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    """An aiosmtpd server on 127.0.0.1; ``.handler.envelopes`` holds what it received."""
    handler = Collector()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def closed_port() -> int:
    return free_port()
