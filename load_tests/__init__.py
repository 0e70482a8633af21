"""Load tests: realistic traffic against the real service, and a report of what it did.

`run.py` is the command (docs/testing.md, "Load tests"): its command line and the order of
a run. What it runs and what it writes, one module each:

- `target.py`: the service under load (our own `bentoml serve` and keys, or one running);
- `load_generator.py`: locust, headless, as a child process;
- `locustfile.py`: the users and what they send, from `traffic.py` (request names and the
  mix, shared with the report), `payloads.py` (request bodies) and `contract.py` (checks);
- `rss.py`: the service's RSS sampled into `rss.csv`; `memory.py`: its floor and verdict;
- `report.py`: `summary.md`; `plots.py`: `latency.png`, `rss.png`;
- `report_files.py`: the name of every file in a report directory.
"""
