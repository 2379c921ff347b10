"""A local SMTP server that keeps every message it is given: one JSON line per message in OUT,
with the envelope, the message as it came over the wire, and what Python's email package
decodes from it (the subject and the plain text), so a test judges the MIME with a decoder
that is not the sender's.

Usage: smtp_sink.py HOST PORT OUT. Prints "ready" once it listens; runs until killed.
Needs aiosmtpd (PyPI).
"""

import json
import sys
import threading
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.content
        msg = message_from_bytes(raw, policy=policy.default)
        body = msg.get_body(preferencelist=("plain",))
        line = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "raw": raw.decode("utf-8", errors="replace"),
            "subject": str(msg["Subject"]),
            "text": body.get_content() if body is not None else None,
            "headers": {name: str(value) for name, value in msg.items()},
        }
        with self.lock, open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
        return "250 Message accepted for delivery"


def main():
    host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    controller = Controller(Sink(out), hostname=host, port=port)
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
