"""The request body as gunicorn hands it to the app: invite it only when it is wanted, and turn
broken framing into a 400.

gunicorn answers ``Expect: 100-continue`` with ``100 Continue`` while it builds the WSGI
environ, before the app has seen the request: a client without the API key, or with a body
over ``MAX_UPLOAD_BYTES``, is invited to send the whole body only to get a 401 or 413. And a
malformed chunked body (``Transfer-Encoding: chunked`` with a chunk size that is not hex)
raises gunicorn's own parse error from inside ``wsgi.input``, which the app would report as a
500 with a traceback, and gunicorn again with another one when it drains the connection.

:func:`install` wraps ``gunicorn.http.wsgi.create`` (which the gthread worker calls for every
request) so that ``wsgi.input``:

* sends ``100 Continue`` on the first read instead, so a request refused before its body is
  read (401, 413 from Content-Length) never invites it; such a connection is closed after the
  answer, since the client may or may not send the body;
* turns a gunicorn body parse error into :class:`MalformedBody` (a 400, ``api/errors.py``)
  and closes the connection after the answer, since nothing after the error can be framed.

Without gunicorn (tests with werkzeug, the Flask test client) nothing changes.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from api.errors import MalformedBody

log = logging.getLogger(__name__)
_lock = threading.Lock()
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _Input:
    """``wsgi.input`` with a deferred ``100 Continue`` and framing errors as :class:`MalformedBody`."""

    def __init__(self, body: Any, sock: Any, resp: Any, expects_continue: bool) -> None:
        self._body, self._sock, self._resp = body, sock, resp
        self._pending_continue = expects_continue

    @property
    def body_uninvited(self) -> bool:
        """The client expected ``100 Continue`` and never got it: it may or may not send the body."""
        return self._pending_continue

    def _call(self, method: str, *args: Any) -> Any:
        if self._pending_continue and not self._resp.headers_sent:
            self._pending_continue = False
            self._sock.sendall(_CONTINUE)
        try:
            return getattr(self._body, method)(*args)
        except Exception as exc:
            if type(exc).__module__.startswith("gunicorn.http"):
                self._resp.force_close()
                raise MalformedBody(f"malformed request body: {str(exc)[:200]}") from None
            raise

    def read(self, size: int | None = None) -> bytes:
        return self._call("read", size)

    def readline(self, size: int | None = None) -> bytes:
        return self._call("readline", size)

    def readlines(self, hint: int | None = None) -> list[bytes]:
        return self._call("readlines", hint)

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


def install() -> bool:
    """Wrap gunicorn's environ builder once per process; False when gunicorn is not importable."""
    try:
        from gunicorn.http import wsgi
    except ImportError:  # pragma: no cover - gunicorn is a dependency; other servers need nothing
        return False
    with _lock:
        if getattr(wsgi.create, "objdet_body_wrapper", False):
            return True
        original = wsgi.create

        def create(req, sock, *args, **kwargs):
            expects_continue = bool(getattr(req, "_expected_100_continue", False))
            req._expected_100_continue = False  # we send it, on the first read
            resp, environ = original(req, sock, *args, **kwargs)
            body = environ.get("wsgi.input")
            if body is not None and environ.get("SERVER_PROTOCOL", "").startswith("HTTP/1"):
                wrapped = _Input(body, sock, resp, expects_continue)
                environ["wsgi.input"] = wrapped
                if expects_continue:  # close after the answer if the body was never invited
                    should_close = resp.should_close
                    resp.should_close = lambda: wrapped.body_uninvited or should_close()
            return resp, environ

        create.objdet_body_wrapper = True  # type: ignore[attr-defined]
        wsgi.create = create
    return True
