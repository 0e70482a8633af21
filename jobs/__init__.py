"""Asynchronous jobs and batches, their webhooks, and the workers that run them (docs/jobs.md).

Knows nothing of HTTP routes or accounts: the HTTP edge (`api/job_routes.py`) submits and
reads jobs, and injects what a job needs from above as small protocols (`worker.py`): the
processor that turns an input into an outcome, the recorder of usage, the source of webhook
signing secrets. Imports `settings` and `errors` only (never `api`, `auth` or `runners`).

- `records.py`: jobs, batches, inputs, outcomes, statuses, effects (plain data)
- `store.py`: the job-store protocol and its errors; `redis_store.py` (with `lua/`),
  `sqlite_store.py` its backends; `backends.py` picks one from the settings
- `worker.py`: claim, lease, process, complete exactly once; the effects (usage, webhooks)
- `webhooks.py`: Standard Webhooks signing, events and the delivery schedule
- `callback_urls.py`: the SSRF guard (validation, resolution, the pinned connection)
"""
