"""The bare Tornado row's server: the smallest Tornado app that answers ``/healthz`` with the
same JSON as microcourt's, on as many processes as the server runs (``--processes``).

``python -m bench.bare --port 0 --processes N`` prints ``bare ready: http://host:port`` once
listening. It is the floor of what a Tornado process can serve on this machine, measured in
the same run as ``/healthz`` so that the ratio says what the edge costs.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import signal
import socket

from tornado import httpserver, netutil, web

BODY = b'{"status":"ok"}'
PR_SET_PDEATHSIG = 1


class Health(web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(BODY)


async def serve(port: int, host: str, shared: bool) -> None:
    sockets = netutil.bind_sockets(port, host, reuse_port=shared)
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
    # as ``serve --processes N`` does: the port held here, one SO_REUSEPORT socket per process
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((args.host, args.port))
    port = holder.getsockname()[1]
    if args.processes <= 1:
        print(f"bare ready: http://{args.host}:{port}", flush=True)
        asyncio.run(serve(port, args.host, shared=True))
        return
    children = [_fork(port, args.host) for _ in range(args.processes)]
    print(f"bare ready: http://{args.host}:{port}", flush=True)

    def stop(*_: object) -> None:
        for pid in children:
            os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    for pid in children:
        os.waitpid(pid, 0)


def _fork(port: int, host: str) -> int:
    pid = os.fork()
    if pid == 0:  # the child: serve until told to stop, and stop with the parent
        ctypes.CDLL("libc.so.6").prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        asyncio.run(serve(port, host, shared=True))
        os._exit(0)
    return pid


if __name__ == "__main__":
    main()
