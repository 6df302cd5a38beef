"""RSS of `gateway serve` under uploads that withhold their last byte.

Run from the repository root:

    taskset -c 1 .venv/bin/python bench/abusive_clients.py
    taskset -c 1 .venv/bin/python bench/abusive_clients.py --clients 20 --mb 31 --hold 70

`gateway serve` (one worker, no emulator: these requests never reach upstream) runs as a
subprocess on a free loopback port with its default limits. N raw-socket clients each send
a request head declaring a body of `--mb` MB, then all of the body but its last byte, and
hold the connection for `--hold` seconds (past the gateway's `server.body_timeout_s`, 60 s by
default). The gateway's RSS (VmRSS of /proc/PID/status) is printed before, once every body
is in, at the end of the hold, and a few seconds after the clients have closed; and what
each client got back (a 408 and a close, a 503 at once past
`server.max_incoming_body_bytes`, or nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from harness import HOST, free_port, rss_kib, started


async def withhold(port: int, size: int, sent: asyncio.Event, hold_s: float) -> bytes:
    """Sends all but the last byte of a `size`-byte body; returns what the gateway answered."""
    reader, writer = await asyncio.open_connection(HOST, port)
    head = (
        b"POST /v1/messages HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
        b"x-api-key: sk-ant-bench\r\nanthropic-version: 2023-06-01\r\n"
        b"content-length: %d\r\n\r\n" % size
    )
    chunk = b" " * (1 << 20)
    left = size - 1
    try:
        writer.write(head)
        while left > 0:
            writer.write(chunk[: min(left, len(chunk))])
            left -= min(left, len(chunk))
            await writer.drain()
    except ConnectionError:
        pass  # refused before the body was read whole: the answer is waiting
    finally:
        sent.set()
    answer = b""
    try:
        async with asyncio.timeout(hold_s):
            while data := await reader.read(65536):
                answer += data
    except (TimeoutError, ConnectionError):
        pass
    writer.close()
    return answer


async def run(port: int, pid: int, clients: int, size: int, hold_s: float) -> None:
    before = rss_kib(pid) / 1024
    print(f"RSS before: {before:.0f} MB", flush=True)
    events = [asyncio.Event() for _ in range(clients)]
    started = time.monotonic()
    tasks = [asyncio.create_task(withhold(port, size, event, hold_s)) for event in events]
    for event in events:
        await event.wait()
    await asyncio.sleep(1)
    print(
        f"RSS with {clients} bodies of {size / 1e6:.0f} MB less one byte in: "
        f"{rss_kib(pid) / 1024:.0f} MB ({time.monotonic() - started:.1f} s)",
        flush=True,
    )
    answers = await asyncio.gather(*tasks)
    print(f"RSS at the end of the {hold_s:.0f} s hold: {rss_kib(pid) / 1024:.0f} MB", flush=True)
    await asyncio.sleep(5)
    after = rss_kib(pid) / 1024
    print(f"RSS 5 s after the clients closed: {after:.0f} MB (+{after - before:.0f} MB)")
    statuses: dict[str, int] = {}
    for answer in answers:
        line = answer.split(b"\r\n", 1)[0].decode(errors="replace") or "(no answer)"
        statuses[line] = statuses.get(line, 0) + 1
    print(f"answers: {statuses}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--mb", type=float, default=31, help="declared body size, MB (10^6)")
    parser.add_argument("--hold", type=float, default=70, help="seconds each client holds on")
    args = parser.parse_args()
    port = free_port()
    env = {
        "GATEWAY_SERVER__START_EMULATOR": "false",
        "GATEWAY_PROVIDERS__ANTHROPIC__BASE_URL": f"http://{HOST}:{free_port()}",
        "GATEWAY_METERING__CALL_LOG": "off",
    }
    command = [sys.executable, "-m", "gateway", "serve", "--port", str(port)]
    with started(command, f"http://{HOST}:{port}/healthz", env, timeout_s=30) as process:
        size = int(args.mb * 1e6)
        asyncio.run(run(port, process.pid, args.clients, size, args.hold))
    return 0


if __name__ == "__main__":
    sys.exit(main())
