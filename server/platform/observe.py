"""The JSON access log (with the request id) and the Prometheus metrics behind /metrics."""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import queue
import sys
import time
from typing import Any

from prometheus_client import Counter, Histogram
from tornado.web import RequestHandler

access_log = logging.getLogger("microcourt.access")

REQUESTS = Histogram(
    "microcourt_request_seconds",
    "API request latency by handler, method and status",
    ["handler", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
ERRORS = Counter("microcourt_server_errors_total", "Responses with status 5xx", ["handler"])


def log_request(handler: RequestHandler) -> None:
    """Tornado's ``log_function``: one JSON line per request, and the metrics."""
    status = handler.get_status()
    seconds = handler.request.request_time()
    name = type(handler).__name__
    REQUESTS.labels(name, handler.request.method or "", str(status)).observe(seconds)
    if status >= 500:
        ERRORS.labels(name).inc()
    principal = getattr(handler, "principal", None)
    access_log.info(
        "request",
        extra={
            "fields": {
                "request_id": getattr(handler, "request_id", ""),
                "method": handler.request.method,
                "path": handler.request.path,  # never the query string: it may carry codes
                "status": status,
                "ms": round(seconds * 1000, 2),
                "user": principal.id if principal is not None else None,
                "ip": handler.request.remote_ip,
            }
        },
    )


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


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
