"""API keys, plans, token-bucket limits, quotas and usage (docs/rate-limits.md).

Knows nothing of routes: the HTTP edge (`api/accounts_middleware.py`) asks it, per each
route's declared policy, who is calling, whether they may, and records what they used.

- `accounts.py`: the facade the HTTP edge uses (`Accounts`, `open_accounts`)
- `records.py`: the records everything here passes around (keys, secrets, usage, accounts)
- `keys.py`: key format; `plans.py`: the plan table and quota periods
- `token_bucket.py`: the admission arithmetic (weighted costs); `lua/limit.lua`: the same in Redis
- `store.py`: the store protocol; `redis_store.py`, `sqlite_store.py` its backends;
  `backends.py` picks one from the settings
- `outage.py`: what is known while the store is down
- `key_admin.py`, `cli.py`: operator actions, `iopaint-api keys ...`
"""
