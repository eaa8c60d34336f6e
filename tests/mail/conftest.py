"""A real SMTP server (aiosmtpd) on a free loopback port, and an app that delivers to it."""

import socket
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from jinja2 import ChoiceLoader, DictLoader

from tests.conftest import free_port

SENDER = "Gatehouse <login@gatehouse.test>"
# A mail as the real ones will be written: on the base layouts, the subject set by the text template.
TEMPLATES = {
    "mail/greeting.txt": '{% extends "mail/_base.txt" %}{% set subject = "Welcome,\\n " ~ name %}'
    "{% block body %}Hello {{ name }}, start here: {{ link }}{% endblock %}",
    "mail/greeting.html": '{% extends "mail/_base.html" %}'
    '{% block body %}<p>Hello {{ name }}, <a href="{{ link }}">start here</a>.</p>{% endblock %}',
}


class Recorder:
    """aiosmtpd handler: keeps what it received; answers RCPT for the addresses in `refuse` with their reply."""

    def __init__(self):
        self.received: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.received.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"


class SMTPServer:
    """Started and stopped on the same port, as a mail server that goes down and comes back."""

    def __init__(self):
        self.port = free_port()
        self.recorder = Recorder()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp():
    server = SMTPServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hanging_port():
    """Accepts connections (the kernel's backlog) and never says a word: no greeting, no reply."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def with_test_templates(app):
    app.jinja_env.loader = ChoiceLoader([DictLoader(TEMPLATES), app.jinja_env.loader])  # type: ignore[list-item]
    return app


@pytest.fixture
def mail_app(make_app, smtp):
    return with_test_templates(
        make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port, MAIL_DEFAULT_SENDER=SENDER, MAIL_TIMEOUT_SECONDS=2)
    )
