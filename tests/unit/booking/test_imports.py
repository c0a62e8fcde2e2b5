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
