"""An aiosmtpd handler that writes every message it receives to a directory.

Used by plugins/host/tests/bundled_email.rs:

    PYTHONPATH=plugins/host/tests/support \
        python3 -m aiosmtpd -n -l 127.0.0.1:PORT -c smtp_sink.Sink OUTDIR

For each message it writes OUTDIR/N.eml (the message as received, CRLF line ends) and then
OUTDIR/N.json (the envelope: mail_from, rcpt_tos, peer); the .json appears last, so a reader
that sees it can read both.
"""

import json
import os
import threading


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0
        self.lock = threading.Lock()
        os.makedirs(directory, exist_ok=True)

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("smtp_sink.Sink takes one argument: the output directory")
        return cls(args[0])

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        base = os.path.join(self.directory, str(n))
        with open(base + ".eml.tmp", "wb") as f:
            f.write(content)
        os.replace(base + ".eml.tmp", base + ".eml")
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "peer": str(session.peer),
        }
        with open(base + ".json.tmp", "w", encoding="utf-8") as f:
            json.dump(meta, f)
        os.replace(base + ".json.tmp", base + ".json")
        return "250 OK"
