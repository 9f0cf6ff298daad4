"""The HTTP layer (flask-restx), by concern: ``max`` (MAX's ``/model`` API), ``deepstack``
(DeepStack's ``/v1/vision/detection``), ``v2`` (Open Inference Protocol v2), ``health`` (probes),
``middleware`` (request log, CORS, API key, metrics), ``webapp`` (the browser app), ``server`` (the
gunicorn worker that reads whole requests before Flask sees them), ``rest`` (builds the API), and
the shared ``forms``, ``errors`` (the one error-to-status table) and ``context``. Swagger UI is at
``/`` and the spec at ``/swagger.json``.

The package itself imports nothing: gunicorn's master loads ``api.server.worker`` before it sets
up the metrics directory, and must not import Flask or prometheus-client on the way.
"""
