"""The HTTP edge: routes and their declared policies, middleware, uploads, the model client.

- `app.py`: the v1 routes (`create_app`); `routing.py`: how a route declares its policy
- `stack.py`: the middleware around the app, outermost first (`middleware.py`: request ids
  and the error envelope; `accounts_middleware.py`: keys, limits, usage)
- `uploads.py`, `images.py`: the multipart body, decoding and encoding within limits
- `model_client.py`: calling the model process, its failures mapped onto API errors
- `openapi.py`: the contract served; `allocator.py`: malloc settings for a flat memory
"""
