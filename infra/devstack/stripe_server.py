"""Runs localstripe on loopback with its state in the stack's own file.

localstripe always pickles its store to /tmp/localstripe.pickle and binds every interface; two
stacks at once (tests beside `make up`) would share state. This wrapper points the store at
LOCALSTRIPE_STATE and binds 127.0.0.1 only, then runs localstripe's own aiohttp app unchanged."""
from __future__ import annotations

import argparse
import os
import pickle
import socket


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

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    web.run_app(app, sock=sock, access_log=None, print=lambda *_: None)


if __name__ == "__main__":
    main()
