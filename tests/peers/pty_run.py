#!/usr/bin/env python3
"""Runs a command in a pseudo-terminal, as a person at a terminal would: types the answers
(one per line, from ANSWERS_FILE) and prints everything the command wrote, then exits with
its exit code. Usage: pty_run.py ANSWERS_FILE -- CMD [ARGS...]"""
import os
import pty
import select
import sys

answers = open(sys.argv[1], encoding="utf-8").read()
cmd = sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(cmd[0], cmd)
os.write(fd, answers.encode())
out = b""
while True:
    ready, _, _ = select.select([fd], [], [], 20)
    if not ready:
        break
    try:
        data = os.read(fd, 4096)
    except OSError:  # the child closed the terminal
        break
    if not data:
        break
    out += data
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode("utf-8", errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
