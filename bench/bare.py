"""The bare Tornado row's server: the smallest Tornado app that answers ``/healthz`` with the
same JSON as microcourt's, on as many processes as the server runs (``--processes``).

``python -m bench.bare --port 0 --processes N`` prints ``bare ready: http://host:port`` once
listening. It is the floor of what a Tornado process can serve on this machine, measured in
the same run as ``/healthz`` so that the ratio says what the edge costs.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket

from tornado import httpserver, netutil, process, web

BODY = b'{"status":"ok"}'


class Health(web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(BODY)


async def serve(sockets: list[socket.socket]) -> None:
    server = httpserver.HTTPServer(web.Application([(r"/healthz", Health)]))
    server.add_sockets(sockets)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()


def main() -> None:
    p = argparse.ArgumentParser(prog="bench.bare")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--processes", type=int, default=1)
    args = p.parse_args()
    sockets = netutil.bind_sockets(args.port, args.host)
    port = sockets[0].getsockname()[1]
    print(f"bare ready: http://{args.host}:{port}", flush=True)
    if args.processes > 1:
        process.fork_processes(args.processes, max_restarts=0)
    asyncio.run(serve(sockets))


if __name__ == "__main__":
    main()
