"""Runs localstripe on loopback with its state in the stack's own file, replaying Idempotency-Keys.

localstripe always pickles its store to /tmp/localstripe.pickle and binds every interface; two
stacks at once (tests beside `make up`) would share state. This wrapper points the store at
LOCALSTRIPE_STATE and binds 127.0.0.1 only, then runs localstripe's own aiohttp app unchanged."""
from __future__ import annotations

import argparse
import os
import pickle
import socket


def _idempotency_middleware(web):
    """Replays the first answer to a POST with the same Idempotency-Key, as Stripe does (a 4xx/5xx
    included). localstripe has no such thing; without it a retried hold or capture would create a
    second object locally where real Stripe would not, and tests could not tell the two apart."""
    import asyncio

    cache: dict = {}
    locks: dict = {}

    @web.middleware
    async def idempotency(request, handler):
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        ck = (request.headers.get("Authorization", ""), key)
        lock = locks.setdefault(ck, asyncio.Lock())
        async with lock:
            if ck not in cache:
                resp = await handler(request)
                cache[ck] = (resp.status, resp.body, resp.content_type)
                return resp
            status, body, ctype = cache[ck]
            return web.Response(status=status, body=body, content_type=ctype,
                                headers={"Idempotent-Replayed": "true"})

    return idempotency


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--state", default=os.environ.get("LOCALSTRIPE_STATE", ""))
    args = parser.parse_args()

    from localstripe import resources

    path = args.state

    def load(store):
        if not path:
            return
        try:
            with open(path, "rb") as f:
                old = pickle.load(f)
            store.clear()
            store.update(old)
        except (FileNotFoundError, EOFError):
            pass

    def dump(store):
        if path:
            tmp = f"{path}.tmp"
            with open(tmp, "wb") as f:
                pickle.dump(dict(store), f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump
    resources.store.try_load_from_disk()

    from aiohttp import web
    from localstripe.server import app

    app.middlewares.insert(0, _idempotency_middleware(web))

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    web.run_app(app, sock=sock, access_log=None, print=lambda *_: None)


if __name__ == "__main__":
    main()
