#!/usr/bin/python3
"""Prints the messages in a Maildir as JSON lines: headers (decoded) and the text body.
An independent parser (Python's email package) for kithd's SMTP tests."""
import email
import email.header
import email.policy
import json
import mailbox
import sys

for key, msg in sorted(mailbox.Maildir(sys.argv[1], create=False).items()):
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    headers = {k: str(v) for k, v in parsed.items()}
    print(json.dumps({"headers": headers, "body": parsed.get_content()}, ensure_ascii=False))
