"""Serve ``bare_app`` exactly as the gateway is served: the same uvicorn options
(``server.server_options``: the header-timeout h11 protocol, keep-alive, connection limit,
no access log) and the same supervisor for several workers, so that ``bench_gateway``
compares the applications and nothing else.  Reads ``EZSPARK_PORT`` and
``EZSPARK_WORKERS`` (and every other setting) as the gateway does.
"""

from __future__ import annotations

import uvicorn
from uvicorn.supervisors import Multiprocess

from ezspark_gateway.server import server_options
from ezspark_gateway.settings import GatewaySettings


def main() -> None:
    """Run the bare app until SIGINT/SIGTERM."""
    settings = GatewaySettings()
    options = server_options(settings)
    if settings.workers > 1:
        config = uvicorn.Config("benchmarks.bare_app:app", workers=settings.workers, **options)
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(uvicorn.Config("benchmarks.bare_app:app", **options)).run()


if __name__ == "__main__":
    main()
