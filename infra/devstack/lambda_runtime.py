"""Local Lambda instances: each function runs in worker processes that handle one event at a time,
as Lambda's execution environments do.

This matters for correctness, not only fidelity: Powertools keeps the current event in class-level
state (BaseRouter.current_event), loggers keep appended keys, idempotency keeps its config — all
per process, one invocation at a time. Serving concurrent requests from threads of one process
would mix them up. So a function gets up to HOMEVISITS_LOCAL_CONCURRENCY warm instances (started
on demand, reused), and an invocation that outlives the function's Timeout (template.yaml's figure,
as on Lambda) kills its instance, like a Lambda timeout. As on Lambda, the instance's init (starting
the interpreter, importing the handler) is not part of the invocation's timeout: it has Lambda's own
init limit (measured in the instance's CPU time, see `_Instance._wait_for_init`), and an init that
overruns it eats into the first invocation's timeout instead (Lambda then re-runs the init inside
the invocation)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid

from devstack import iam
from devstack import template as tpl

# Lambda's limit for the init phase of an on-demand execution environment (AWS Lambda developer
# guide, "Understanding the Lambda execution environment lifecycle": Init phase, 10 seconds).
INIT_LIMIT_S = 10.0
INIT_STALL_S = 120.0  # wall time after which an instance start that never finishes is given up


class InvocationError(Exception):
    """The function raised, crashed or timed out (what Lambda reports as a function error)."""


class LambdaContext:
    """The context object Lambda passes to a handler (the attributes Powertools and our code read)."""

    def __init__(self, function_name: str, timeout_s: float = 30):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:{iam.region()}:{iam.ACCOUNT}:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _Instance:
    def __init__(self, function_id: str):
        self.function_id = function_id
        from devstack.aws_local import SECRETS

        # The template gives a function its secrets' SSM names, never their values: nor do we.
        env = {k: v for k, v in os.environ.items() if k not in SECRETS}
        self.proc = subprocess.Popen([sys.executable, "-m", "devstack.lambda_runtime", function_id],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
                                     text=True, bufsize=1, env=env)
        self.ready = False

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _read_line(self, timeout_s: float, write: str | None = None) -> str | None:
        """The worker's next protocol line (after writing `write`), or None when `timeout_s` passed."""
        result: dict = {}

        def talk():
            if write is not None:
                self.proc.stdin.write(write)
                self.proc.stdin.flush()
            result["line"] = self.proc.stdout.readline()

        t = threading.Thread(target=talk, daemon=True)
        t.start()
        t.join(timeout_s)
        return None if t.is_alive() else result.get("line", "")

    def cpu_s(self) -> float | None:
        """CPU seconds the instance has used so far (Linux /proc), None where that cannot be read."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def _wait_for_init(self, timeout_s: float) -> float:
        """Waits until the instance has imported its handler; the invocation's timeout left.

        The init is measured in the instance's CPU time (wall time where that cannot be read): each
        Lambda environment has its own CPU share, while here every instance and the tests share two
        cores, so the wall time would measure the machine. Beyond INIT_LIMIT_S the init eats into
        the invocation's timeout, as on Lambda. An instance that makes no progress at all is given
        up after INIT_STALL_S."""
        result: dict = {}
        reader = threading.Thread(target=lambda: result.setdefault("line", self.proc.stdout.readline()),
                                  daemon=True)
        started = time.monotonic()
        reader.start()
        used = 0.0
        while True:
            reader.join(0.1)
            cpu = self.cpu_s()
            used = time.monotonic() - started if cpu is None else cpu
            if not reader.is_alive():
                break
            if used > INIT_LIMIT_S + timeout_s or time.monotonic() - started > INIT_STALL_S:
                self.kill()
                raise InvocationError(f"{self.function_id} init and invocation timed out")
        if not result.get("line"):
            self.kill()
            raise InvocationError(f"{self.function_id} instance died during init")
        self.ready = True
        return timeout_s - max(0.0, used - INIT_LIMIT_S)

    def invoke(self, event: dict, timeout_s: float):
        if not self.ready:
            timeout_s = self._wait_for_init(timeout_s)
        line = self._read_line(timeout_s, json.dumps(event, default=str) + "\n")
        if line is None:
            self.kill()
            raise InvocationError(f"{self.function_id} timed out after {timeout_s:.2f}s")
        if not line:
            self.kill()
            raise InvocationError(f"{self.function_id} instance died")
        reply = json.loads(line)
        if "error" in reply:
            raise InvocationError(f"{self.function_id}: {reply['error']}")
        return reply["result"]

    def kill(self):
        if self.alive():
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


class FunctionPool:
    def __init__(self, function_id: str, max_instances: int, timeout_s: float):
        self.function_id, self.timeout_s = function_id, timeout_s
        self.idle: list[_Instance] = []
        self.all: list[_Instance] = []
        self.slots = threading.BoundedSemaphore(max_instances)
        self.lock = threading.Lock()

    def invoke(self, event: dict):
        with self.slots:
            with self.lock:
                inst = None
                while self.idle and inst is None:
                    cand = self.idle.pop()
                    inst = cand if cand.alive() else None
                if inst is None:
                    inst = _Instance(self.function_id)
                    self.all.append(inst)
            try:
                out = inst.invoke(event, self.timeout_s)
            finally:
                with self.lock:
                    if inst.alive():
                        self.idle.append(inst)
                    elif inst in self.all:
                        self.all.remove(inst)
            return out

    def shutdown(self):
        with self.lock:
            for inst in self.all:
                inst.kill()
            self.all.clear()
            self.idle.clear()


class Runtime:
    def __init__(self, template: dict | None = None):
        self.template = template or tpl.load()
        self.pools: dict[str, FunctionPool] = {}
        self.lock = threading.Lock()
        self.max_instances = int(os.environ.get("HOMEVISITS_LOCAL_CONCURRENCY", "6"))

    def _timeout(self, function_id: str) -> float:
        props = tpl.functions(self.template)[function_id]["Properties"]
        default = self.template.get("Globals", {}).get("Function", {}).get("Timeout", 3)
        return float(props.get("Timeout", default))  # the template's figure: what Lambda enforces

    def invoke(self, function_id: str, event: dict):
        with self.lock:
            pool = self.pools.get(function_id)
            if pool is None:
                pool = self.pools[function_id] = FunctionPool(function_id, self.max_instances,
                                                              self._timeout(function_id))
        return pool.invoke(event)

    def shutdown(self):
        for pool in self.pools.values():
            pool.shutdown()


def _serve(function_id: str) -> None:
    """Worker side: import the handler once, then answer one event per line."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever the function prints goes to the log, not into the protocol
    sys.stdout = sys.stderr
    import importlib

    iam.enforce(function_id)  # every AWS call the function makes is checked against its template policies
    module, _, attr = tpl.handler_of(function_id).rpartition(".")
    handler = getattr(importlib.import_module(module), attr)
    proto.write(json.dumps({"ready": True}) + "\n")  # init done: invocations are timed from here
    for line in sys.stdin:
        event = json.loads(line)
        try:
            result = handler(event, LambdaContext(function_id))
            proto.write(json.dumps({"result": result}, default=str) + "\n")
        except Exception as e:  # the function's error, reported like Lambda's errorType
            import traceback
            traceback.print_exc()
            proto.write(json.dumps({"error": type(e).__name__}) + "\n")


if __name__ == "__main__":
    _serve(sys.argv[1])
