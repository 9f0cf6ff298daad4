"""The HTTP server side: gunicorn's worker class (``api.server.worker``) and the request framing it
buffers (``api.server.http1``). It reads ``config`` but imports the HTTP layer (``api``) only inside the
worker process, after gunicorn has forked."""
