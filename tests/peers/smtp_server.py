#!/usr/bin/python3
"""A real SMTP server for kithd's tests, on aiosmtpd (Debian python3-aiosmtpd).

Usage: smtp_server.py MAILDIR CERT KEY MODE
MODE: starttls (STARTTLS required, AUTH required after TLS), tls (implicit TLS + AUTH),
      stall (answers EHLO, then never answers the next command).
Listens on 127.0.0.1:0 and prints `READY <port>` once listening. Accepts user `kithd`
with password `s3cret` (AUTH PLAIN/LOGIN). Stores each message in MAILDIR (Maildir), and
the envelope as X-Envelope-* headers.
"""
import asyncio
import mailbox
import socket
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, maildir):
        self.box = mailbox.Maildir(maildir, create=True)

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode()
        head = ("X-Envelope-From: %s\r\nX-Envelope-To: %s\r\nX-Auth-User: %s\r\n" % (
            envelope.mail_from, ",".join(envelope.rcpt_tos),
            session.auth_data.login.decode() if session.auth_data else "")).encode()
        self.box.add(head + data)
        return "250 2.0.0 Ok: queued as KITHD1"


AUTH_LOG = None


def authenticator(server, session, envelope, mechanism, auth_data):
    # Every AUTH attempt is logged (never the password), so a test can tell none was made.
    if AUTH_LOG:
        with open(AUTH_LOG, "a") as f:
            f.write("AUTH %s\n" % mechanism)
    if isinstance(auth_data, LoginPassword) and auth_data.login == b"kithd" and auth_data.password == b"s3cret":
        return AuthResult(success=True, auth_data=auth_data)
    return AuthResult(success=False, handled=False)


class StallSMTP(SMTP):
    async def smtp_MAIL(self, arg):
        await asyncio.sleep(3600)


async def main():
    global AUTH_LOG
    maildir, cert, key, mode = sys.argv[1:5]
    AUTH_LOG = maildir.rstrip("/") + ".auth"
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    handler = Handler(maildir)
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    common = dict(authenticator=authenticator, auth_required=True, hostname="localhost")
    if mode == "starttls":
        factory = lambda: SMTP(handler, tls_context=ctx, require_starttls=True, auth_require_tls=True, **common)
        server = await loop.create_server(factory, sock=sock)
    elif mode == "tls":
        factory = lambda: SMTP(handler, auth_require_tls=False, **common)
        server = await loop.create_server(factory, sock=sock, ssl=ctx)
    elif mode == "stall":
        factory = lambda: StallSMTP(handler, auth_required=False, auth_require_tls=False, hostname="localhost")
        server = await loop.create_server(factory, sock=sock)
    else:
        raise SystemExit("unknown mode " + mode)
    print("READY %d" % port, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
