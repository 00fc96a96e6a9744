"""The baseline of the benchmark: a bare aiohttp app whose handler only answers 200.

Served the way postwatch serves (``AppRunner`` + ``TCPSite``, no access log, the default
asyncio loop), so that the ratio of the two figures is the cost of postwatch's own work.

    python bench/bare.py PORT
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiohttp import web


async def ok(request: web.Request) -> web.Response:
    return web.Response(text="OK")


async def serve(port: int) -> None:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", ok)
    runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
    print(f"bare aiohttp listening on http://127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
