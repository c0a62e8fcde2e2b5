"""Runs localstripe on loopback with its state in the stack's own file, replaying Idempotency-Keys,
and as strict as Stripe's API version where the app depends on it.

localstripe always pickles its store to /tmp/localstripe.pickle and binds every interface; two
stacks at once (tests beside `make up`) would share state. This wrapper points the store at
LOCALSTRIPE_STATE and binds 127.0.0.1 only, then runs localstripe's own aiohttp app with
`_strict_api_version`: what real Stripe refuses or answers differently, localstripe must too."""
from __future__ import annotations

import argparse
import os
import pickle
import re
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


# The first API version on which `payment_method_types` is no longer writable (Stripe changelog,
# 2026-09-30.endive: "Removes the payment method types parameter from Payment Intents and Setup Intents").
PAYMENT_METHOD_TYPES_REMOVED = "2026-09-30"
INTENT_WRITES = re.compile(r"^/v1/(payment_intents|setup_intents)(/[^/]+(/confirm)?)?$")


def _strict_api_version(server, resources) -> None:
    """Makes localstripe answer as Stripe does on the request's Stripe-Version:
    - `payment_method_types` on a Payment/SetupIntent create, update or confirm is a 400
      `payment_method_types_no_longer_supported` from 2026-09-30.endive on (localstripe accepts it);
    - `automatic_payment_methods` and `allowed_payment_method_types` (which localstripe refuses as
      unexpected) are checked and accepted, as long as cards are allowed (localstripe only does cards);
    - a PaymentIntent's `latest_charge` is the charge's id unless expanded (localstripe always inlines
      the charge, which hid a hold that never asked for it), and the intent carries
      `amount_capturable` and `amount_received` as Stripe's does;
    - a SetupIntent may be created with its `payment_method` and `confirm=true` in one request, as on
      Stripe (localstripe takes the card only on a separate confirm): it is created, then confirmed."""
    get_post_data = server.get_post_data

    async def strict_post_data(request, remove_auth=True):
        data = await get_post_data(request, remove_auth)
        if request.method != "POST" or not INTENT_WRITES.match(request.path) or not isinstance(data, dict):
            return data
        version = request.headers.get("Stripe-Version", "")
        if "payment_method_types" in data and version[:10] >= PAYMENT_METHOD_TYPES_REMOVED:
            raise resources.UserError(400, "payment_method_types is no longer supported on this API "
                                           "version; use allowed_payment_method_types or dynamic payment "
                                           "methods", {"code": "payment_method_types_no_longer_supported",
                                                       "param": "payment_method_types"})
        automatic = data.pop("automatic_payment_methods", None)
        if automatic is not None and not (isinstance(automatic, dict) and
                                          str(automatic.get("enabled")).lower() == "true"):
            raise resources.UserError(400, "automatic_payment_methods[enabled] must be true",
                                      {"param": "automatic_payment_methods"})
        allowed = data.pop("allowed_payment_method_types", None)
        if allowed is not None and (not isinstance(allowed, list) or "card" not in allowed):
            raise resources.UserError(400, "the local Stripe only takes cards",
                                      {"param": "allowed_payment_method_types"})
        return data

    server.get_post_data = strict_post_data

    export = resources.PaymentIntent._export

    def strict_export(self, expand=None):
        obj = export(self, expand=expand)
        charge = obj.get("latest_charge")
        if isinstance(charge, dict):
            captured = charge.get("status") == "succeeded" and charge.get("captured")
            obj.setdefault("amount_received", int(charge.get("amount") or 0)
                           - int(charge.get("amount_refunded") or 0) if captured else 0)
            if "latest_charge" not in (expand or []):
                obj["latest_charge"] = charge.get("id")
        obj.setdefault("amount_received", 0)
        obj.setdefault("amount_capturable", obj.get("amount", 0) if obj.get("status") == "requires_capture"
                       else 0)
        return obj

    resources.PaymentIntent._export = strict_export

    create_setup = resources.SetupIntent._api_create.__func__

    def create_and_confirm(cls, payment_method=None, confirm=None, **data):
        obj = create_setup(cls, **data)
        if payment_method is not None and str(confirm).lower() == "true":
            return cls._api_confirm(obj.id, payment_method=payment_method)
        if payment_method is not None:
            resources.PaymentMethod._api_retrieve(payment_method)  # 404 for an unknown card, as Stripe
            obj.payment_method = payment_method
            obj.status = "requires_confirmation"
        return obj

    resources.SetupIntent._api_create = classmethod(create_and_confirm)


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
    from localstripe import server
    from localstripe.server import app

    _strict_api_version(server, resources)
    app.middlewares.insert(0, _idempotency_middleware(web))

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    web.run_app(app, sock=sock, access_log=None, print=lambda *_: None)


if __name__ == "__main__":
    main()
