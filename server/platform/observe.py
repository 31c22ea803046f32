"""The JSON access log (with the request id) and the Prometheus metrics behind /metrics.

Both are paid on every request, so they are kept cheap (measured under wrk, see the
README's performance section): the metric's labelled child is looked up once per
(handler, method, status), and the access log's entries are gathered on the IOLoop and
handed to the writer thread in batches (every 0.25 s, or 500 entries) as one record, which
the formatter writes as one JSON line per request. A record per request cost a LogRecord,
the logger hierarchy and a queue hand-off to the writer thread (which then took the GIL to
format it): about a fifth of /healthz's time.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import logging.handlers
import queue
import sys
import time
from typing import Any

from prometheus_client import Counter, Histogram
from tornado.ioloop import IOLoop
from tornado.web import RequestHandler

access_log = logging.getLogger("microcourt.access")

REQUESTS = Histogram(
    "microcourt_request_seconds",
    "API request latency by handler, method and status",
    ["handler", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
ERRORS = Counter("microcourt_server_errors_total", "Responses with status 5xx", ["handler"])


_timers: dict[tuple[str, str, int], Any] = {}  # (handler, method, status) -> its histogram


def log_request(handler: RequestHandler) -> None:
    """Tornado's ``log_function``: one JSON line per request, and the metrics."""
    request = handler.request
    status = handler.get_status()
    seconds = request.request_time()
    name = type(handler).__name__
    key = (name, request.method or "", status)
    timer = _timers.get(key)
    if timer is None:
        timer = _timers[key] = REQUESTS.labels(name, key[1], str(status))
    timer.observe(seconds)
    if status >= 500:
        ERRORS.labels(name).inc()
    principal = getattr(handler, "principal", None)
    ACCESS.add(
        {
            "request_id": getattr(handler, "request_id", ""),
            "method": request.method,
            "path": request.path,  # never the query string: it may carry codes
            "status": status,
            "ms": round(seconds * 1000, 2),
            "user": principal.id if principal is not None else None,
            "ip": request.remote_ip,
        }
    )


class AccessBatch:
    """Access-log entries gathered on the IOLoop, logged as one record per batch."""

    SECONDS = 0.25
    SIZE = 500

    def __init__(self) -> None:
        self.entries: list[tuple[float, dict[str, Any]]] = []
        self._timer: tuple[IOLoop, object] | None = None

    def add(self, fields: dict[str, Any]) -> None:
        self.entries.append((time.time(), fields))
        if len(self.entries) >= self.SIZE:
            self.flush()
        elif self._timer is None:
            loop = IOLoop.current()
            self._timer = (loop, loop.call_later(self.SECONDS, self.flush))

    def flush(self) -> None:
        """Log what is gathered (``serve`` also calls it on its way out, so that no request
        goes unlogged)."""
        if self._timer is not None:
            loop, timeout = self._timer
            self._timer = None
            with contextlib.suppress(RuntimeError):  # the loop may be closed by now
                loop.remove_timeout(timeout)
        entries, self.entries = self.entries, []
        if entries and access_log.isEnabledFor(logging.INFO):
            access_log.info("request", extra={"batch": entries})


ACCESS = AccessBatch()


def _stamp(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + (
        f".{int(created % 1 * 1000):03d}Z"
    )


_encode = json.JSONEncoder(ensure_ascii=False, default=str, separators=(",", ":")).encode


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        batch: list[tuple[float, dict[str, Any]]] | None = getattr(record, "batch", None)
        if batch is not None:  # the access log: one line per request
            return self._lines(record, batch)
        entry = self._entry(record, record.created)
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _encode(entry)

    def _lines(self, record: logging.LogRecord, batch: list[tuple[float, dict[str, Any]]]) -> str:
        """One JSON line per entry: the record's fields encoded once for the batch, each
        entry's by an encoder made once (``json.dumps`` with options makes one per call)."""
        base = self._entry(record, record.created)
        del base["ts"]
        shared = _encode(base)[1:-1]
        lines, second, prefix = [], -1, ""
        for at, fields in batch:
            if int(at) != second:
                second = int(at)
                prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            own = f",{_encode(fields)[1:]}" if fields else "}"
            lines.append(f'{{"ts":"{prefix}.{int(at % 1 * 1000):03d}Z",{shared}{own}')
        return "\n".join(lines)

    @staticmethod
    def _entry(record: logging.LogRecord, at: float) -> dict[str, Any]:
        return {
            "ts": _stamp(at),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }


class _DeferredQueueHandler(logging.handlers.QueueHandler):
    """Hands records to the writer thread as they are: formatting and I/O happen there,
    off the IOLoop."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


_listener: logging.handlers.QueueListener | None = None


def _stop_listener() -> None:
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None


def setup_logging(log_file: str = "", level: int = logging.INFO) -> None:
    """JSON lines to stderr or a file, written by a thread of their own."""
    global _listener
    if _listener is not None:
        _listener.stop()
    else:
        atexit.register(_stop_listener)  # once: it stops whichever listener is current
    sink: logging.Handler = (
        logging.FileHandler(log_file, encoding="utf-8")
        if log_file
        else logging.StreamHandler(sys.stderr)
    )
    sink.setFormatter(JSONFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _listener = logging.handlers.QueueListener(records, sink)
    _listener.start()
    root = logging.getLogger()
    root.handlers[:] = [_DeferredQueueHandler(records)]
    root.setLevel(level)
    logging.getLogger("pymongo").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
