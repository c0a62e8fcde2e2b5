"""The local Lambda runtime enforces each function's template timeout, as Lambda does: no local factor."""
from __future__ import annotations

import copy
import os
import signal
import threading
import time

import pytest

from devstack import template as tpl
from devstack.lambda_runtime import InvocationError, Runtime


def _docs_event() -> dict:
    from devstack.gateway import api_event
    fid, event = api_event("GET", "/openapi.json")
    assert fid == "DocsFunction"
    return event


EVENT = _docs_event()


def test_every_function_gets_the_timeout_its_template_declares():
    """BookingFunction inherits Globals' 15 s, DispatchFunction declares 29 s, ReconcileFunction 300 s."""
    runtime = Runtime()
    template = tpl.load()
    default = template["Globals"]["Function"]["Timeout"]
    for fid, fn in tpl.functions(template).items():
        assert runtime._timeout(fid) == float(fn["Properties"].get("Timeout", default)), fid
    assert runtime._timeout("BookingFunction") == 15.0
    assert runtime._timeout("ReconcileFunction") == 300.0


@pytest.fixture
def short_timeout_runtime():
    """The real DocsFunction (its handler, its IAM), with the template's Timeout set to 2 s."""
    template = copy.deepcopy(tpl.load())
    template["Resources"]["DocsFunction"]["Properties"]["Timeout"] = 2
    runtime = Runtime(template)
    yield runtime
    runtime.shutdown()


def test_an_invocation_that_outlives_the_template_timeout_is_cut_off_at_that_figure(short_timeout_runtime):
    """A warm instance frozen mid-invocation (SIGSTOP: the handler never answers) is killed after the
    template's 2 s, not after a multiple of it; the function's next invocation gets a fresh instance."""
    runtime = short_timeout_runtime
    runtime.invoke("DocsFunction", EVENT)  # warm: the init is not part of an invocation's timeout
    pool = runtime.pools["DocsFunction"]
    (instance,) = pool.all
    assert instance.cpu_s() > 0  # the init is measured in the instance's own CPU time
    os.kill(instance.proc.pid, signal.SIGSTOP)
    started = time.monotonic()
    with pytest.raises(InvocationError, match="timed out"):
        runtime.invoke("DocsFunction", EVENT)
    elapsed = time.monotonic() - started
    assert 2.0 <= elapsed < 3.5, elapsed
    assert not instance.alive()  # killed, like a Lambda timeout
    assert runtime.invoke("DocsFunction", EVENT)["statusCode"] == 200  # a new instance serves the next one
    assert pool.all and instance not in pool.all


def test_a_slow_init_does_not_count_against_the_invocation_within_lambdas_init_limit(short_timeout_runtime,
                                                                                     monkeypatch):
    """An instance whose init takes longer than the 2 s timeout (held back here) still serves its
    first invocation: Lambda gives the init its own 10 s limit."""
    runtime = short_timeout_runtime
    slow = threading.Event()
    from devstack import lambda_runtime

    real = lambda_runtime._Instance.__init__

    def held_back(self, function_id):
        real(self, function_id)
        os.kill(self.proc.pid, signal.SIGSTOP)  # the init stalls ~3 s, longer than the timeout
        threading.Timer(3.0, lambda: (os.kill(self.proc.pid, signal.SIGCONT), slow.set())).start()

    monkeypatch.setattr(lambda_runtime._Instance, "__init__", held_back)
    started = time.monotonic()
    reply = runtime.invoke("DocsFunction", EVENT)
    assert slow.is_set() and time.monotonic() - started >= 3.0
    assert reply["statusCode"] == 200


def test_a_function_instance_gets_no_secret_value_in_its_environment(short_timeout_runtime, monkeypatch):
    """The template gives functions SSM parameter names, never the secrets: the local instance's
    environment lacks STRIPE_API_KEY, STRIPE_WEBHOOK_SECRET and HOMEVISITS_ID_PEPPER even when the
    stack's own process has them; the parameter names are there."""
    from devstack.aws_local import SECRETS
    for name in SECRETS:
        monkeypatch.setenv(name, "a-secret")
    monkeypatch.setenv("STRIPE_SECRET_PARAMETER", "/homevisits/stripe/secret-key")
    short_timeout_runtime.invoke("DocsFunction", EVENT)
    (instance,) = short_timeout_runtime.pools["DocsFunction"].all
    with open(f"/proc/{instance.proc.pid}/environ", "rb") as f:
        names = {entry.split(b"=", 1)[0].decode() for entry in f.read().split(b"\0") if entry}
    assert not names & set(SECRETS)
    assert "STRIPE_SECRET_PARAMETER" in names
