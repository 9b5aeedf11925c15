"""The soak with faults, CI-sized: bench/soak.py's functions for 60 seconds (32 clients, inbound auth on).

Asserted: zero wrong answers (each call gets what its case deserves: the right tool error, -32602, 401, 413, 400;
never a hang, a 5xx or an internal error), exactly the calls that should reach the backend did, the gateway
process never died, and its open fds and sockets to the backend get back to where they were before the load
(once idle pooled connections have closed; bench/soak.py waits up to 30 s for that). Timings
and RSS are printed, not asserted (the machine is shared). `SOAK_SECONDS` changes the length.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import soak

SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))


def test_soak_with_faults():
    figures = soak.soak(SECONDS, clients=32, auth=True)
    print(soak.report(figures, 32, True))
    assert figures.same_process, "the gateway process died during the soak"
    assert figures.wrong_count == 0, figures.wrong
    assert figures.total > 100, figures.outcomes  # the load ran
    assert not figures.forwarding_problems(), figures.forwarding_problems()
    assert figures.fds_end == figures.fds_start, (figures.fds_start, figures.fds_end)
    assert figures.upstream_end == figures.upstream_start, (figures.upstream_start, figures.upstream_end)
