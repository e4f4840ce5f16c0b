"""Starting service processes for campaigns that start many of them.

`Bed.service` picks a free METRICS_PORT when it builds the environment, but nothing holds the
port until the new process binds it a second or two later; on a busy machine another process
(any client's outgoing connection) can take it first, and the service then stops at start-up
naming METRICS_PORT (exit 2), as it should. A campaign that starts a dozen members would fail
on that harness race now and then: `ready` starts a replacement on a fresh port instead.
"""

from __future__ import annotations

from tests.support.service import Bed, ServiceProcess

PORT_TAKEN = "METRICS_PORT: cannot serve on"


ATTEMPTS = 3


def ready(bed: Bed, service: ServiceProcess, **env: str) -> ServiceProcess:
    """`service` once /readyz answers, or a replacement (same `env`) when its metrics port was
    taken."""
    for _ in range(ATTEMPTS - 1):
        try:
            service.wait_ready()
            return service
        except AssertionError:
            if service.running or PORT_TAKEN not in service.log_tail():
                raise
            service = bed.service(**env)
    service.wait_ready()
    return service


def start(bed: Bed, **env: str) -> ServiceProcess:
    """A new member, ready."""
    return ready(bed, bed.service(**env), **env)
