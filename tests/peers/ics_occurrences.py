#!/usr/bin/python3
"""Reads an iCalendar file with a real parser (icalendar, recurring_ical_events) and prints
every occurrence between FROM and UNTIL (RFC 3339), one per line, as `UTC-INSTANT SUMMARY`,
sorted; then `alarms N` with the number of VALARMs. Usage: ics_occurrences.py FILE FROM UNTIL"""
import sys
from datetime import datetime, timezone

import icalendar
import recurring_ical_events

cal = icalendar.Calendar.from_ical(open(sys.argv[1], "rb").read())
start = datetime.fromisoformat(sys.argv[2])
end = datetime.fromisoformat(sys.argv[3])
lines = []
for ev in recurring_ical_events.of(cal).between(start, end):
    t = ev["DTSTART"].dt
    if t.tzinfo is None:
        raise SystemExit("a floating time: " + str(t))
    lines.append(t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") + " " + str(ev["SUMMARY"]))
for line in sorted(lines):
    print(line)
alarms = sum(1 for c in cal.walk("VALARM"))
print("alarms", alarms)
