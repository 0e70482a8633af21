"""Load tests: realistic traffic against the real service, and a report of what it did.

`run.py` is the command (docs/testing.md, "Load tests"); `locustfile.py` is the traffic.
"""
