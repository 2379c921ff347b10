"""A local SMTP server that keeps every message it is given: one JSON line per message in OUT,
with the envelope, the login used, the message as it came over the wire, and what Python's
email package decodes from it (the subject and the plain text), so a test judges the MIME with
a decoder that is not the sender's.

Usage: smtp_sink.py HOST PORT OUT [--starttls CERT KEY] [--login USER PASSWORD]
With --starttls, STARTTLS is required before anything is sent; with --login, that login is
required (over TLS only). Prints "ready" once it listens; runs until killed. Needs aiosmtpd.
"""

import argparse
import json
import ssl
import threading
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


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
            "login": session.auth_data,
            "tls": session.ssl is not None,
            "raw": raw.decode("utf-8", errors="replace"),
            "subject": str(msg["Subject"]),
            "text": body.get_content() if body is not None else None,
            "headers": {name: str(value) for name, value in msg.items()},
        }
        with self.lock, open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
        return "250 Message accepted for delivery"


class Login:
    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == self.user and auth_data.password == self.password
        return AuthResult(success=ok, auth_data=self.user.decode() if ok else None)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("out")
    parser.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--login", nargs=2, metavar=("USER", "PASSWORD"))
    args = parser.parse_args()
    options = {}
    if args.starttls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*args.starttls)
        options.update(tls_context=context, require_starttls=True)
    if args.login:
        options.update(
            authenticator=Login(*args.login), auth_required=True, auth_require_tls=True
        )
    controller = Controller(Sink(args.out), hostname=args.host, port=args.port, **options)
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
