"""The load generator bench/run.py falls back to when wrk cannot be installed: the same requests as
bench/load.lua, from Python. It needs far more CPU per request than wrk, which it takes from the server on a
small machine, so its figures understate the server; the report says which generator ran.

It speaks HTTP/1.1 over asyncio streams itself, keep-alive, one request at a time per connection: httpx was
tried first and needed about 5 ms of CPU per request here, which capped it near 100 requests a second.

    python bench/pyload.py http://127.0.0.1:PORT heartbeat TOKENS_FILE --connections 32 --duration 20

Prints one line `BENCH_RESULT {json}` in the shape load.lua's done() prints.
"""

import argparse
import asyncio
import json
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

COMPONENTS = ["card_reader", "qr_scanner", "cash_module", "touchscreen", "mainboard", "network", "power"]


def heartbeat_body(kiosk_number: int, sent: int) -> bytes:
    failing = kiosk_number % 20 == 0
    body = {
        "sent_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "software_version": "3.2.1",
        "components": {name: "ok" for name in COMPONENTS} | {"receipt_printer": "degraded" if failing else "ok"},
        "error_codes": ["E-PRN-002"] if failing else [],
        "metrics": {
            "paper_pct": 6 if failing else 30 + (kiosk_number + sent) % 70,
            "cash_box_pct": (kiosk_number * 7 + sent) % 80,
            "cpu_temp_c": 38 + (sent % 50) / 10,
            "disk_free_mb": 20000 + kiosk_number % 1000,
            "net_latency_ms": 20 + sent % 60,
        },
    }
    return json.dumps(body).encode()


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response with a Content-Length (Django and gunicorn send one); return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next((int(ln.split(b":", 1)[1]) for ln in lines[1:] if ln.lower().startswith(b"content-length:")), 0)
    if length:
        await reader.readexactly(length)
    return status


async def connection_loop(args, host, port, tokens, worker: int, deadline: float, latencies, statuses, errors):
    """One keep-alive connection sending requests back to back until the deadline, reconnecting on error."""
    index, sent, reader, writer = worker, 0, None, None
    while time.monotonic() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
            if args.mode == "healthz":
                request = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
            else:
                number = index % len(tokens) + 1
                index += args.connections
                sent += 1
                body = heartbeat_body(number, sent)
                request = (
                    f"POST /api/v1/device/heartbeat HTTP/1.1\r\nHost: {host}\r\n"
                    f"Authorization: Device {tokens[number - 1]}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode() + body
            started = time.perf_counter()
            writer.write(request)
            status = await asyncio.wait_for(read_response(reader), 5)
        except TimeoutError:
            errors["timeout"] += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
            errors["read"] += 1
        else:
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1
            continue
        if writer is not None:
            writer.close()
        reader = writer = None


async def main(args) -> None:
    tokens = Path(args.tokens).read_text().split() if args.mode == "heartbeat" else []
    latencies: list[float] = []
    statuses: Counter = Counter()
    errors = Counter({"connect": 0, "read": 0, "write": 0, "timeout": 0})
    url = urlsplit(args.url)
    started = time.monotonic()
    deadline = started + args.duration
    await asyncio.gather(
        *(
            connection_loop(args, url.hostname, url.port or 80, tokens, worker, deadline, latencies, statuses, errors)
            for worker in range(args.connections)
        )
    )
    elapsed = time.monotonic() - started
    latencies.sort()

    def percentile(p: float) -> int:
        return int(latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] * 1e6) if latencies else 0

    result = {
        "requests": len(latencies),
        "duration_us": int(elapsed * 1e6),
        "bytes": 0,
        "p50_us": percentile(50),
        "p90_us": percentile(90),
        "p99_us": percentile(99),
        "max_us": int(latencies[-1] * 1e6) if latencies else 0,
        "mean_us": sum(latencies) / len(latencies) * 1e6 if latencies else 0,
        "socket_errors": dict(errors),
        "statuses": {str(k): v for k, v in statuses.items()},
    }
    print("BENCH_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("mode", choices=["heartbeat", "healthz"])
    parser.add_argument("tokens")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=20)
    try:
        import uvloop  # comes with uvicorn[standard]; a cheaper event loop leaves more CPU to the server

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(parser.parse_args()))
