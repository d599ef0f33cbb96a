"""A real SMTP server for tests (aiosmtpd in a thread of the test process) that keeps every
message it takes. It can be stopped and started again on its port (a mail server that is down,
then back), refuse mailboxes (550 for good, 450 for now), and hold each conversation at MAIL
FROM without answering, as a server that stopped responding does.
"""

import asyncio
import email
import email.policy
import threading
import time

from aiosmtpd.controller import Controller

from tests.support.server import free_port


class SmtpServer:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        self.received: list[tuple[list[str], bytes]] = []  # (envelope recipients, the message as sent)
        self.refused: dict[str, str] = {}  # address -> the reply to its RCPT TO
        self._holding = threading.Event()
        self.held = threading.Event()  # set when a conversation waits at MAIL FROM
        self._controller = None

    def start(self) -> "SmtpServer":
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def hold(self) -> None:
        self.held.clear()
        self._holding.set()

    def release(self) -> None:
        self._holding.clear()

    def messages_to(self, address: str) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(raw, policy=email.policy.default) for to, raw in self.received if address in to
        ]

    def raw_to(self, address: str) -> list[bytes]:
        return [raw for to, raw in self.received if address in to]

    def wait_for(self, address: str, count: int = 1, timeout: float = 60) -> list[email.message.EmailMessage]:
        """The messages to `address` once there are `count` of them (polling, up to `timeout` s)."""
        deadline = time.monotonic() + timeout
        while len(self.messages_to(address)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        messages = self.messages_to(address)
        assert len(messages) >= count, f"{len(messages)} message(s) to {address} after {timeout} s, not {count}"
        return messages


class _Handler:
    def __init__(self, server: SmtpServer):
        self.server = server

    async def handle_MAIL(self, smtp, session, envelope, address, mail_options):
        while self.server._holding.is_set():
            self.server.held.set()
            await asyncio.sleep(0.05)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
        if address in self.server.refused:
            return self.server.refused[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp, session, envelope):
        self.server.received.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"
