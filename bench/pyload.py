"""The load generator bench/run.py falls back to when wrk cannot be installed: the same requests as
bench/load.lua, from Python (asyncio + httpx). It needs far more CPU per request than wrk, which it takes from the
server on a small machine, so its figures understate the server; the report says which generator ran.

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

import httpx

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


async def connection_loop(client, args, tokens, worker: int, deadline: float, latencies, statuses, errors):
    index, sent = worker, 0
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            if args.mode == "healthz":
                response = await client.get("/healthz")
            else:
                number = index % len(tokens) + 1
                index += args.connections
                sent += 1
                response = await client.post(
                    "/api/v1/device/heartbeat",
                    content=heartbeat_body(number, sent),
                    headers={"Authorization": f"Device {tokens[number - 1]}", "Content-Type": "application/json"},
                )
        except httpx.TimeoutException:
            errors["timeout"] += 1
            continue
        except httpx.HTTPError:
            errors["read"] += 1
            continue
        latencies.append(time.perf_counter() - started)
        statuses[response.status_code] += 1


async def main(args) -> None:
    tokens = Path(args.tokens).read_text().split() if args.mode == "heartbeat" else []
    latencies: list[float] = []
    statuses: Counter = Counter()
    errors = Counter({"connect": 0, "read": 0, "write": 0, "timeout": 0})
    limits = httpx.Limits(max_connections=args.connections, max_keepalive_connections=args.connections)
    async with httpx.AsyncClient(base_url=args.url, limits=limits, timeout=5.0) as client:
        started = time.monotonic()
        deadline = started + args.duration
        await asyncio.gather(
            *(
                connection_loop(client, args, tokens, worker, deadline, latencies, statuses, errors)
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
    asyncio.run(main(parser.parse_args()))
