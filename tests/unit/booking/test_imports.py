"""The booking function stays light: it never loads OR-Tools or Stripe."""
from __future__ import annotations

import subprocess
import sys


def test_booking_never_imports_ortools_or_stripe():
    code = ("import sys, booking.app, booking.jobs, homevisits.capacity, homevisits.lifecycle; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('ortools', 'stripe')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120,
                   env={"AWS_DEFAULT_REGION": "eu-north-1", "PATH": "/usr/bin:/bin"})


def test_a_cold_booking_import_builds_no_aws_client_and_skips_what_only_a_booking_needs():
    """Cold start (bench.import_time, docs/benchmarks.md): importing the handler makes no boto3
    client (Powertools' idempotency store gets its client on first use), builds no request schema
    (pydantic's defer_build: a GET never builds the booking body's validator), and leaves
    phonenumbers and python-stdnum (only creating a booking validates a phone and a personal
    number) and PyJWT (only the local stack signs tokens) out."""
    code = ("import sys, botocore.session; made = []; orig = botocore.session.Session.create_client\n"
            "def spy(self, name, *a, **k):\n    made.append(name); return orig(self, name, *a, **k)\n"
            "botocore.session.Session.create_client = spy\n"
            "import booking.app\n"
            "assert made == [], made\n"
            "loaded = [m for m in ('phonenumbers', 'stdnum', 'jwt') if m in sys.modules]; assert not loaded, loaded\n"
            "from booking import privacy, schemas\n"
            "models = [c for mod in (schemas, privacy) for c in vars(mod).values()\n"
            "          if isinstance(c, type) and issubclass(c, schemas.Schema) and c is not schemas.Schema]\n"
            "built = [c.__name__ for c in models if c.__pydantic_complete__]\n"
            "assert len(models) >= 10 and not built, built")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120,
                   env={"AWS_DEFAULT_REGION": "eu-north-1", "PATH": "/usr/bin:/bin"})
