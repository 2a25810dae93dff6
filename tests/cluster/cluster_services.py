"""Stopping and starting the shared test services from a test (only the
test_z_* modules do, and always start them again in a finally)."""

import subprocess
import time
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[1] / "services"


def service(action, name, timeout=300):
    """Runs tests/services/<action> <name> ("up" or "down"); returns the
    seconds it took. Fails with the script's stderr when it fails."""
    t0 = time.monotonic()
    r = subprocess.run([str(SERVICES / action), name], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, (f"tests/services/{action} {name}: status {r.returncode}\n"
                               f"{r.stderr[-3000:]}")
    return time.monotonic() - t0
