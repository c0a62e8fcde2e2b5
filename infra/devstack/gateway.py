"""A local API Gateway (HTTP API) and event plumbing for the handlers of template.yaml.

- HTTP: each route of the template is served by invoking its handler with an API Gateway v2
  (payload 2.0) event, in a local Lambda instance of that function (devstack.lambda_runtime:
  worker processes that take one event at a time, as Lambda does); routes behind the JWT authorizer get the token
  verified (devstack.tokens) and its claims placed at requestContext.authorizer.jwt.claims, as
  API Gateway does. Missing/invalid token -> 401 {"message": "Unauthorized"} before any handler runs.
  As the real HTTP API (payload 2.0): bodies of non-text content types arrive base64-encoded; cookies
  in `cookies`, not in headers; the template's stage is served under /{stage} with the prefix kept
  in rawPath (paths without it are served as the $default stage: the tools' local shortcut); 30 s
  integration timeout -> 503, bodies over 10 MB -> 413, each with API Gateway's own message; CORS
  exactly as the HttpApi's CorsConfiguration declares it (none: no CORS headers, OPTIONS 404).
- Events: POST /_local/events takes EventBridge PutEvents entries; the template's rules route them
  to SQS queues, which are delivered to their consumer functions in SQS event shape, with retries of
  reported batch-item failures and a dead-letter list, at least once.
- FIFO queues: POST /_local/queues/{QueueLogicalId} with MessageGroupId/MessageDeduplicationId;
  messages of one group are delivered in order, one batch at a time; duplicates within 5 minutes
  are dropped, as SQS FIFO does.
- Streams: DynamoDB Local's streams of the template's tables are polled and handed to their
  consumer functions.
- POST /_local/drain waits until every queue and stream is quiet (tests and the demo use it);
  POST /_local/invoke/{FunctionLogicalId} invokes a function with the body as its event.
"""
from __future__ import annotations

import base64
import json
import os
import threading
import time
import traceback
import uuid
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from devstack import aws_local
from devstack.lambda_runtime import Runtime
from devstack import template as tpl
from devstack import tokens

ACCOUNT = "000000000000"
REGION = os.environ.get("AWS_DEFAULT_REGION", "eu-north-1")
MAX_RECEIVES = 5


_runtime = None
_runtime_lock = threading.Lock()


def invoke(function_id: str, event: dict):
    """Invoke a template function in one of its local instances (see devstack.lambda_runtime)."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = Runtime()
    return _runtime.invoke(function_id, event)


def _now_parts():
    now = datetime.now(timezone.utc)
    return now.strftime("%d/%b/%Y:%H:%M:%S +0000"), int(now.timestamp() * 1000)


# What API Gateway's HTTP API passes as text; every other content type (none included) arrives
# base64-encoded (verified against AWS: application/x-www-form-urlencoded is base64 too).
TEXT_MEDIA_TYPES = {"application/json", "application/xml", "application/javascript"}
INTEGRATION_TIMEOUT_S = 30.0          # HTTP API quota, not adjustable
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # HTTP API quota: 10 MB


def is_text(content_type: str | None) -> bool:
    """Whether an HTTP API passes a body of this content type as text (else base64)."""
    media, _, params = (content_type or "").partition(";")
    media = media.strip().lower()
    charset = next((v.strip().strip('"').lower() for k, _, v in (p.partition("=") for p in params.split(";"))
                    if k.strip().lower() == "charset"), None)
    if charset not in (None, "utf-8", "utf8"):
        return False
    return media.startswith("text/") or media in TEXT_MEDIA_TYPES


def http_event(route: tpl.Route, method: str, path: str, query: str, headers: dict, body: bytes,
               path_params: dict, claims: dict | None, source_ip: str, stage: str = "$default") -> dict:
    """The payload 2.0 event API Gateway builds for one request. `path` is the path after the stage;
    rawPath (and requestContext.http.path) carry the /{stage} prefix of a named stage."""
    when, epoch = _now_parts()
    qs: dict[str, str] = {}
    for k, v in parse_qsl(query, keep_blank_values=True):
        qs[k] = f"{qs[k]},{v}" if k in qs else v
    headers = dict(headers)
    cookie_header = headers.pop("cookie", None)
    text = None
    is_b64 = False
    if body:
        try:
            text = body.decode("utf-8") if is_text(headers.get("content-type")) else None
        except UnicodeDecodeError:
            text = None
        if text is None:
            text, is_b64 = base64.b64encode(body).decode(), True
    raw_path = path if stage == "$default" else f"/{stage}{path}"
    event = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT, "apiId": "local", "domainName": headers.get("host", "localhost"),
            "domainPrefix": "local",
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": headers.get("user-agent", "")},
            "requestId": uuid.uuid4().hex, "routeKey": route.route_key, "stage": stage,
            "time": when, "timeEpoch": epoch,
        },
        "isBase64Encoded": is_b64,
    }
    if text is not None:
        event["body"] = text
    if qs:
        event["queryStringParameters"] = qs
    if path_params:
        event["pathParameters"] = path_params
    if cookie_header:  # every Cookie header, each cookie one entry; not repeated in headers
        event["cookies"] = [c.strip() for c in cookie_header.split(";") if c.strip()]
    if claims is not None:
        # API Gateway passes every claim as a string.
        event["requestContext"]["authorizer"] = {
            "jwt": {"claims": {k: v if isinstance(v, str) else json.dumps(v) for k, v in claims.items()},
                    "scopes": None}}
    return event


def _resolve(value, template: dict):
    """A template value with !Ref to a parameter resolved to its default."""
    if isinstance(value, dict) and "Ref" in value:
        param = template.get("Parameters", {}).get(value["Ref"])
        return param.get("Default") if param else value["Ref"]
    if isinstance(value, list):
        return [_resolve(v, template) for v in value]
    return value


def http_api_stage(template: dict | None = None) -> str:
    """The HttpApi's stage (StageName, parameters at their defaults); `$default` when none."""
    t = template or tpl.load()
    props = tpl.resources("AWS::Serverless::HttpApi", t).get("HttpApi", {}).get("Properties", {})
    return str(_resolve(props.get("StageName"), t) or "$default")


@dataclass(frozen=True)
class Cors:
    """The HttpApi's CorsConfiguration, as API Gateway applies it (None when not declared)."""
    origins: tuple = ()
    methods: tuple = ()
    headers: tuple = ()
    expose: tuple = ()
    max_age: int | None = None
    credentials: bool = False

    @classmethod
    def from_template(cls, template: dict | None = None) -> "Cors | None":
        t = template or tpl.load()
        props = tpl.resources("AWS::Serverless::HttpApi", t).get("HttpApi", {}).get("Properties", {})
        conf = _resolve(props.get("CorsConfiguration"), t)
        if not conf:
            return None
        if conf is True:  # SAM: true allows every origin
            return cls(origins=("*",), methods=("*",), headers=("*",))
        if isinstance(conf, str):  # SAM: a string is the one allowed origin
            return cls(origins=(conf.strip("'"),), methods=("*",), headers=("*",))

        def low(key):
            return tuple(str(v) for v in (_resolve(conf.get(key), t) or ()))
        return cls(origins=low("AllowOrigins"), methods=tuple(m.upper() for m in low("AllowMethods")),
                   headers=tuple(h.lower() for h in low("AllowHeaders")), expose=low("ExposeHeaders"),
                   max_age=conf.get("MaxAge"), credentials=bool(conf.get("AllowCredentials")))

    def allows(self, origin: str | None) -> bool:
        return bool(origin) and ("*" in self.origins or origin in self.origins)

    def preflight(self, origin: str | None, method: str | None, req_headers: str | None) -> dict | None:
        """The headers of API Gateway's own answer to a preflight; None when it does not match."""
        if not self.allows(origin) or not method:
            return None
        if "*" not in self.methods and method.upper() not in self.methods:
            return None
        asked = [h.strip().lower() for h in (req_headers or "").split(",") if h.strip()]
        if "*" not in self.headers and any(h not in self.headers for h in asked):
            return None
        out = {"access-control-allow-origin": "*" if "*" in self.origins and not self.credentials else origin,
               "access-control-allow-methods": ",".join(self.methods) if "*" not in self.methods else method.upper(),
               "vary": "origin"}
        if asked:
            out["access-control-allow-headers"] = ",".join(asked)
        if self.max_age is not None:
            out["access-control-max-age"] = str(self.max_age)
        if self.credentials:
            out["access-control-allow-credentials"] = "true"
        return out

    def response_headers(self, origin: str | None) -> dict:
        """What API Gateway adds to an actual (non-preflight) response for this origin."""
        if not self.allows(origin):
            return {}
        out = {"access-control-allow-origin": "*" if "*" in self.origins and not self.credentials else origin,
               "vary": "origin"}
        if self.expose:
            out["access-control-expose-headers"] = ",".join(self.expose)
        if self.credentials:
            out["access-control-allow-credentials"] = "true"
        return out


@lru_cache(maxsize=1)
def _template_routes() -> list:
    return tpl.routes()


def api_event(method: str, path: str, *, token: str | None = None, claims: dict | None = None, json_body=None,
              headers: dict | None = None, query: str = "") -> tuple[str, dict]:
    """(function logical id, API Gateway v2 event) for one API request, built exactly as the gateway
    builds it (template route, JWT claims verified from `token`, or `claims` as given); for
    in-process calls of a handler (benches, tests counting or faulting AWS calls)."""
    path_only, _, q = path.partition("?")
    query = query or q
    found = tpl.match(_template_routes(), method, path_only)
    if found is None:
        raise LookupError(f"no route for {method} {path_only}")
    r, params = found
    hdrs = {"host": "localhost", "content-type": "application/json", **{k.lower(): v for k, v in (headers or {}).items()}}
    if token:
        claims = tokens.verify(token)
        hdrs["authorization"] = f"Bearer {token}"
    body = json.dumps(json_body).encode() if json_body is not None else b""
    return r.function, http_event(r, method.upper(), path_only, query, hdrs, body, params, claims, "127.0.0.1")


# ---------------------------------------------------------------- queues, bus and streams
@dataclass
class Message:
    body: str
    group: str | None = None
    dedup: str | None = None
    receives: int = 0
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


class LocalQueue:
    """One queue: standard (any order, batches of up to 10) or FIFO (per-group order)."""

    def __init__(self, logical_id: str, consumer: str | None, fifo: bool, router: "Router"):
        self.logical_id, self.consumer, self.fifo, self.router = logical_id, consumer, fifo, router
        self.pending: deque[Message] = deque()
        self.dead: list[Message] = []
        self.seen: dict[str, float] = {}
        self.in_flight = 0
        self.cv = threading.Condition()
        self.thread = threading.Thread(target=self._run, name=f"queue-{logical_id}", daemon=True)
        self.thread.start()

    def send(self, body: str, group: str | None = None, dedup: str | None = None) -> bool:
        with self.cv:
            if self.fifo and dedup:
                key = f"{group}|{dedup}"
                now = time.monotonic()
                self.seen = {k: t for k, t in self.seen.items() if now - t < 300}
                if key in self.seen:
                    return False
                self.seen[key] = now
            self.pending.append(Message(body=body, group=group, dedup=dedup))
            self.cv.notify_all()
            return True

    def idle(self) -> bool:
        with self.cv:
            return not self.pending and self.in_flight == 0

    def _next_batch(self) -> list[Message]:
        if not self.fifo:
            return [self.pending.popleft() for _ in range(min(10, len(self.pending)))]
        group = self.pending[0].group
        batch = [m for m in self.pending if m.group == group][:10]
        for m in batch:
            self.pending.remove(m)
        return batch

    def _run(self):
        while True:
            with self.cv:
                while not self.pending:
                    self.cv.wait()
                batch = self._next_batch()
                self.in_flight += len(batch)
            try:
                failed = self._deliver(batch)
            finally:
                with self.cv:
                    self.in_flight -= len(batch)
            for m in failed:
                m.receives += 1
                if m.receives >= MAX_RECEIVES:
                    self.dead.append(m)
                else:
                    time.sleep(min(2.0, 0.1 * 2 ** m.receives))
                    with self.cv:
                        self.pending.appendleft(m) if self.fifo else self.pending.append(m)
                        self.cv.notify_all()

    def _deliver(self, batch: list[Message]) -> list[Message]:
        if not self.consumer:
            return []
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self.logical_id}{'.fifo' if self.fifo else ''}"
        records = []
        for m in batch:
            attrs = {"ApproximateReceiveCount": str(m.receives + 1), "SentTimestamp": str(int(time.time() * 1000))}
            if self.fifo:
                attrs.update({"MessageGroupId": m.group or "", "MessageDeduplicationId": m.dedup or ""})
            records.append({"messageId": m.id, "receiptHandle": m.id, "body": m.body, "attributes": attrs,
                            "messageAttributes": {}, "eventSource": "aws:sqs", "eventSourceARN": arn,
                            "awsRegion": REGION})
        try:
            result = invoke(self.consumer, {"Records": records}) or {}
        except Exception:
            traceback.print_exc()
            return batch
        failures = {f.get("itemIdentifier") for f in (result.get("batchItemFailures") or [])}
        return [m for m in batch if m.id in failures]


class StreamPoller:
    """Polls a DynamoDB Local table stream and hands batches to the consumer functions."""

    def __init__(self, table: str, consumers: list[str], router: "Router"):
        self.table, self.consumers, self.router = table, consumers, router
        self.busy = False
        self.lock = threading.Lock()
        self.iterators: dict[str, str | None] = {}
        self.last_seq: dict[str, str] = {}
        self.thread = threading.Thread(target=self._run, name=f"stream-{table}", daemon=True)
        self.thread.start()

    def _client(self):
        import boto3
        return boto3.client("dynamodbstreams")

    def poll_once(self) -> int:
        with self.lock:
            import boto3
            ddb = boto3.client("dynamodb")
            streams = self._client()
            arn = ddb.describe_table(TableName=self.table)["Table"].get("LatestStreamArn")
            if not arn:
                return 0
            n = 0
            shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
            for shard in shards:
                sid = shard["ShardId"]
                if sid not in self.iterators:
                    self.iterators[sid] = self._iterator(streams, arn, sid)
                it = self.iterators[sid]
                while it:
                    try:
                        resp = streams.get_records(ShardIterator=it, Limit=100)
                    except (streams.exceptions.TrimmedDataAccessException,
                            streams.exceptions.ExpiredIteratorException) as e:
                        # Reopen just after the last record handed over (never re-deliver, never skip).
                        print(f"stream {self.table}/{sid}: {type(e).__name__}; reopening", flush=True)
                        it = self._iterator(streams, arn, sid)
                        continue
                    records = resp.get("Records", [])
                    it = resp.get("NextShardIterator")
                    if records:
                        for r in records:
                            r["eventSourceARN"] = arn
                            created = r["dynamodb"].get("ApproximateCreationDateTime")
                            if isinstance(created, datetime):  # Lambda gets epoch seconds
                                r["dynamodb"]["ApproximateCreationDateTime"] = int(created.timestamp())
                        for fid in self.consumers:
                            self._deliver(fid, records)
                        self.last_seq[sid] = records[-1]["dynamodb"]["SequenceNumber"]
                        n += len(records)
                    else:
                        break
                self.iterators[sid] = it
            return n

    def _iterator(self, streams, arn: str, sid: str) -> str | None:
        last = self.last_seq.get(sid)
        kw = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": last} if last \
            else {"ShardIteratorType": "TRIM_HORIZON"}
        try:
            return streams.get_shard_iterator(StreamArn=arn, ShardId=sid, **kw)["ShardIterator"]
        except streams.exceptions.TrimmedDataAccessException:
            print(f"stream {self.table}/{sid}: records trimmed; continuing from the latest", flush=True)
            return streams.get_shard_iterator(StreamArn=arn, ShardId=sid,
                                              ShardIteratorType="LATEST")["ShardIterator"]

    def _deliver(self, fid: str, records: list[dict]):
        for attempt in range(MAX_RECEIVES):
            try:
                result = invoke(fid, {"Records": records}) or {}
                failed = {f.get("itemIdentifier") for f in (result.get("batchItemFailures") or [])}
                records = [r for r in records if r["dynamodb"].get("SequenceNumber") in failed]
                if not records:
                    return
            except Exception:
                traceback.print_exc()
            time.sleep(0.2 * 2 ** attempt)

    def _run(self):
        while True:
            self.router.streams_on.wait()  # paused by POST /_local/streams {"paused": true}
            try:
                self.poll_once()
            except Exception:
                traceback.print_exc()
                time.sleep(2)
            time.sleep(0.5)


class Router:
    def __init__(self, template: dict | None = None, streams: bool = True):
        self.template = template or tpl.load()
        self.streams_on = threading.Event()
        self.streams_on.set()
        consumers = tpl.queue_consumers(self.template)
        self.queues: dict[str, LocalQueue] = {}
        for qid, res in tpl.resources("AWS::SQS::Queue", self.template).items():
            fifo = bool(res.get("Properties", {}).get("FifoQueue"))
            self.queues[qid] = LocalQueue(qid, consumers.get(qid), fifo, self)
        self.rules = tpl.event_rules(self.template)
        self.pollers = [StreamPoller(t, fids, self) for t, fids in tpl.stream_consumers(self.template).items()] \
            if streams else []

    def put_events(self, entries: list[dict]) -> int:
        n = 0
        for e in entries:
            event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": e["DetailType"],
                     "source": e["Source"], "account": ACCOUNT,
                     "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": REGION,
                     "resources": e.get("Resources", []), "detail": json.loads(e.get("Detail") or "{}")}
            for pattern, qid in self.rules:
                if tpl.matches(pattern, event):
                    self.queues[qid].send(json.dumps(event))
                    n += 1
        return n

    def drain(self, timeout_s: float = 120.0) -> bool:
        deadline = time.monotonic() + timeout_s
        quiet_rounds = 0
        while time.monotonic() < deadline:
            got = 0
            for p in self.pollers:
                try:
                    got += p.poll_once()
                except Exception:
                    traceback.print_exc()
                    got += 1  # not quiet: try again
            if got == 0 and all(q.idle() for q in self.queues.values()):
                quiet_rounds += 1
                if quiet_rounds >= 2:
                    return True
            else:
                quiet_rounds = 0
            time.sleep(0.1)
        return False

    def dead_letters(self) -> dict:
        return {qid: [m.body for m in q.dead] for qid, q in self.queues.items() if q.dead}


# ---------------------------------------------------------------- HTTP server
class Gateway(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # many patients connecting at once must queue, not be reset

    def __init__(self, addr, router: Router, template: dict | None = None):
        super().__init__(addr, _Handler)
        self.router = router
        template = template or tpl.load()
        self.routes = tpl.routes(template)
        self.stage = http_api_stage(template)
        self.cors = Cors.from_template(template)
        self.integration_timeout_s = INTEGRATION_TIMEOUT_S
        self.max_payload_bytes = MAX_PAYLOAD_BYTES


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle's algorithm the body waits for the
    # client's delayed ACK (~40 ms on Linux loopback) on every keep-alive request. TCP_NODELAY.
    disable_nagle_algorithm = True
    server: Gateway

    def log_message(self, fmt, *args):  # request lines only, never bodies
        if os.environ.get("HOMEVISITS_GATEWAY_ACCESS_LOG"):
            super().log_message(fmt, *args)

    def _send(self, status: int, body: bytes, headers: dict | None = None, cookies: list | None = None):
        self.send_response(status)
        hdrs = {"content-type": "application/json"}
        hdrs.update({k.lower(): str(v) for k, v in (headers or {}).items()})
        hdrs["content-length"] = str(len(body))
        for k, v in hdrs.items():
            self.send_header(k, v)
        for c in cookies or []:
            self.send_header("set-cookie", c)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj):
        self._send(status, json.dumps(obj).encode())

    def _dispatch(self):
        parts = urlsplit(self.path)
        path, query = parts.path, parts.query
        length = int(self.headers.get("content-length") or 0)
        if length > self.server.max_payload_bytes and not path.startswith("/_local/"):
            while length > 0:  # read and drop it: the client then reads the answer on the same connection
                chunk = self.rfile.read(min(length, 1 << 20))
                if not chunk:
                    break
                length -= len(chunk)
            return self._json(413, {"message": "Request Entity Too Large"})
        body = self.rfile.read(length) if length else b""
        if path.startswith(aws_local.PREFIX + "/"):  # EventBridge, SQS, SNS as boto3 calls them
            return self._send(*aws_local.answer(self.server.router, path, self.headers, body))
        if path.startswith("/_local/"):
            return self._local(path, body)
        stage = "$default"
        prefix = f"/{self.server.stage}"
        if self.server.stage != "$default" and (path == prefix or path.startswith(prefix + "/")):
            stage, path = self.server.stage, path[len(prefix):] or "/"
        method = self.command.upper()
        headers: dict[str, str] = {}
        for k, v in self.headers.items():
            k = k.lower()
            sep = "; " if k == "cookie" else ","
            headers[k] = f"{headers[k]}{sep}{v}" if k in headers else v
        cors = self.server.cors
        origin = headers.get("origin")
        if method == "OPTIONS" and cors is not None and "access-control-request-method" in headers:
            # API Gateway answers a preflight itself, before routes and authorizers.
            allowed = cors.preflight(origin, headers.get("access-control-request-method"),
                                     headers.get("access-control-request-headers"))
            return self._send(204, b"", allowed or {})
        extra = cors.response_headers(origin) if cors is not None else {}
        found = tpl.match(self.server.routes, method, path)
        if found is None:
            return self._send(404, b'{"message":"Not Found"}', extra)
        route, params = found
        claims = None
        if route.auth:
            auth = headers.get("authorization", "")
            token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
            try:
                claims = tokens.verify(token) if token else None
            except tokens.InvalidToken:
                claims = None
            if claims is None:
                return self._send(401, b'{"message":"Unauthorized"}', {"www-authenticate": "Bearer", **extra})
        headers.setdefault("x-forwarded-for", self.client_address[0])
        headers.setdefault("x-forwarded-proto", "http")
        headers.setdefault("x-forwarded-port", str(self.server.server_address[1]))
        event = http_event(route, method, path, query, headers, body, params, claims, self.client_address[0],
                           stage)
        done: dict = {}

        def call():
            try:
                done["result"] = invoke(route.function, event)
            except Exception as e:  # the function's error, as Lambda reports it
                traceback.print_exc()
                done["error"] = e

        worker = threading.Thread(target=call, name=f"integration-{route.function}", daemon=True)
        worker.start()
        worker.join(self.server.integration_timeout_s)
        if worker.is_alive():  # the function runs on, as on Lambda; the client gets the gateway's answer
            return self._send(503, b'{"message":"Service Unavailable"}', extra)
        if "error" in done:
            return self._send(500, b'{"message":"Internal Server Error"}', extra)
        self._respond(done["result"], extra)

    def _respond(self, result, extra: dict | None = None):
        if not isinstance(result, dict) or "statusCode" not in result:
            return self._send(200, json.dumps(result).encode(), extra)
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        headers = dict(result.get("headers") or {})
        for k, vs in (result.get("multiValueHeaders") or {}).items():
            headers[k] = ",".join(vs)
        headers.update(extra or {})
        self._send(int(result["statusCode"]), raw, headers, result.get("cookies"))

    def _local(self, path: str, body: bytes):
        router = self.server.router
        data = json.loads(body or b"{}")
        if path == "/_local/health":
            return self._json(200, {"ok": True})
        if path == "/_local/events":
            return self._json(200, {"FailedEntryCount": 0, "Matched": router.put_events(data.get("Entries", []))})
        if path.startswith("/_local/queues/"):
            qid = path.rsplit("/", 1)[1]
            if qid not in router.queues:
                return self._json(404, {"message": f"no queue {qid}"})
            sent = router.queues[qid].send(data["MessageBody"], data.get("MessageGroupId"),
                                           data.get("MessageDeduplicationId"))
            return self._json(200, {"sent": sent})
        if path == "/_local/streams":
            # {"paused": true} holds the DynamoDB-stream consumers (re-planning) back, e.g. while a
            # bench measures one path alone on a small machine; {"paused": false} resumes them
            # (nothing is lost: the pollers continue from their last sequence numbers).
            if "paused" in data:
                (router.streams_on.clear if data["paused"] else router.streams_on.set)()
            return self._json(200, {"paused": not router.streams_on.is_set()})
        if path == "/_local/drain":
            ok = router.drain(float(data.get("timeout_s", 120)))
            return self._json(200 if ok else 504, {"drained": ok, "dead_letters": router.dead_letters()})
        if path == "/_local/clock":
            # Simulated time for the whole local stack: {"now": ISO} or {"offset_s": n}; {} reads it.
            # "frozen": true stops it there (readers comparing two reads of "now"), until the next move.
            from homevisits.clock import default_clock, parse_utc, utc_iso_ms
            clock_file = os.environ.get("HOMEVISITS_CLOCK_FILE")
            if clock_file and ("now" in data or "offset_s" in data):
                offset = data.get("offset_s")
                if "now" in data:
                    offset = (parse_utc(data["now"]) - datetime.now(timezone.utc)).total_seconds()
                state = {"offset_s": float(offset)}
                if data.get("frozen"):
                    state["frozen_at"] = utc_iso_ms(datetime.now(timezone.utc) + timedelta(seconds=float(offset)))
                tmp = f"{clock_file}.{threading.get_ident()}.tmp"
                with open(tmp, "w", encoding="utf-8") as f:
                    json.dump(state, f)
                os.replace(tmp, clock_file)  # readers never see a half-written file
            return self._json(200, {"now": default_clock().now().isoformat()})
        if path.startswith("/_local/invoke/"):
            fid = path.rsplit("/", 1)[1]
            try:
                return self._json(200, {"result": invoke(fid, data)})
            except Exception as e:
                traceback.print_exc()
                return self._json(500, {"error": type(e).__name__})
        return self._json(404, {"message": "Not Found"})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch


def local_environment(dynamodb_port: int, stripe_port: int, api_port: int) -> dict:
    """Environment every in-process function sees: the template's variables, resolved locally."""
    env = {}
    for fid in tpl.functions():
        env.update(tpl.function_environment(fid))
    env.pop("POWERTOOLS_SERVICE_NAME", None)
    env.update({
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{dynamodb_port}",
        "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": f"http://127.0.0.1:{dynamodb_port}",
        "HOMEVISITS_LOCAL_BUS_URL": f"http://127.0.0.1:{api_port}",
        "STRIPE_API_BASE": f"http://127.0.0.1:{stripe_port}",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "local",
    })
    env.update(aws_local.environment(api_port))
    env.update(aws_local.secret_environment())  # tools and tests; the functions read SSM (devstack.aws_local)
    return env


def main():
    api_port = int(os.environ.get("API_PORT", "3000"))
    env = local_environment(int(os.environ.get("DYNAMODB_PORT", "8000")),
                            int(os.environ.get("STRIPE_PORT", "8420")), api_port)
    for k, v in env.items():
        os.environ.setdefault(k, v)
    router = Router()
    server = Gateway(("127.0.0.1", api_port), router)
    print(f"gateway listening on http://127.0.0.1:{api_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
