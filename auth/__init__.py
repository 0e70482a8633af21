"""API keys, plans, token-bucket limits, quotas and usage (docs/rate-limits.md).

- `accounts.py`: the facade the HTTP layer uses (`Accounts`, `open_accounts`)
- `middleware.py`: `AccountsMiddleware`, the ASGI glue
- `keys.py`: key format; `plans.py`: the plan table and quota periods
- `token_bucket.py`: the admission arithmetic; `lua/limit.lua`: the same in Redis
- `store.py`: the store interface and factory; `redis_store.py`, `sqlite_store.py`
- `outage.py`: what is known while the store is down
- `key_admin.py`, `cli.py`: operator actions, `iopaint-api keys ...`
"""
