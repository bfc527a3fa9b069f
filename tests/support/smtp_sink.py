#!/usr/bin/env python3
"""A real SMTP server for the test suite, built on aiosmtpd.

It stores every accepted message, byte for byte, as NNNNNN.eml in --maildir (with the
envelope in NNNNNN.json), refuses RCPT TO for addresses containing a --reject pattern with a
permanent 550, and answers the first --tempfail RCPT TO with a temporary 451. With --hold N,
the first N messages are stored, then announced by an empty NNNNNN.held file, and their 250
reply waits until the test creates NNNNNN.release: the test can act (kill the client) while
the relay has the message and the client has no answer yet. It prints the port it listens on,
then runs until stdin closes (the test process ends) or it is killed.
"""
import argparse
import asyncio
import json
import os
import socket
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, maildir, reject, tempfail, hold):
        self.maildir = maildir
        self.hold = hold
        self.reject = reject
        self.tempfail = tempfail
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if any(pattern in address for pattern in self.reject):
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        with self.lock:
            if self.tempfail > 0:
                self.tempfail -= 1
                return "451 4.3.0 <%s>: Temporary failure, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        base = os.path.join(self.maildir, "%06d" % n)
        with open(base + ".json.tmp", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, f)
        os.rename(base + ".json.tmp", base + ".json")
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".eml.tmp", base + ".eml")
        if n <= self.hold:
            open(base + ".held", "wb").close()
            while not os.path.exists(base + ".release"):
                await asyncio.sleep(0.02)
        return "250 2.0.0 Ok: queued as SINK%06d" % n


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--reject", action="append", default=[])
    parser.add_argument("--tempfail", type=int, default=0)
    parser.add_argument("--hold", type=int, default=0)
    args = parser.parse_args()
    port = free_port()
    controller = Controller(Sink(args.maildir, args.reject, args.tempfail, args.hold), hostname="127.0.0.1", port=port)
    controller.start()
    print(port, flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
