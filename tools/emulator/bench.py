"""Measure the emulator's own ceiling: `python -m tools.emulator.bench [--concurrency 64] [--duration 10]`.

Starts the emulator as a separate process on 127.0.0.1 (no latency, no quotas, no processing delay), then
drives two flows with N concurrent httpx workers, each bounded by a duration and an operation count:
  x:  one `POST /x/2/tweets` per operation
  ig: `POST /{user}/media` + `GET /{container}?fields=status_code` + `POST /{user}/media_publish` per operation
Prints operations/s, HTTP requests/s, latency percentiles, and the emulator process's CPU use, from which
it projects the requests/s one fully used core would serve (the load generator usually saturates first).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from tools.emulator.client import AccountInfo, EmulatorClient

ROOT = Path(__file__).resolve().parents[2]
Flow = Callable[[httpx.AsyncClient, AccountInfo, int], Awaitable[None]]


@dataclass
class Result:
    flow: str
    operations: int
    requests: int
    seconds: float
    latencies_ms: list[float]
    server_cpu_s: float
    errors: int

    def report(self) -> str:
        ops = self.operations / self.seconds
        rps = self.requests / self.seconds
        cpu = self.server_cpu_s / self.seconds
        lat = sorted(self.latencies_ms) or [0.0]
        p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        ceiling = rps / cpu if cpu else float("nan")
        return (
            f"{self.flow:>3}: {ops:8.0f} ops/s  {rps:8.0f} req/s  op p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  "
            f"emulator CPU {cpu * 100:5.1f}% of a core  -> ~{ceiling:,.0f} req/s per core  errors {self.errors}"
        )


async def tweet(http: httpx.AsyncClient, account: AccountInfo, n: int) -> None:
    headers = {"Authorization": f"Bearer {account.access_token}"}
    response = await http.post("/x/2/tweets", json={"text": f"bench post_id={n}"}, headers=headers)
    if response.status_code != 201:
        raise RuntimeError(response.text)


async def instagram(http: httpx.AsyncClient, account: AccountInfo, n: int) -> None:
    headers = {"Authorization": f"Bearer {account.access_token}"}
    user = f"/instagram/{account.account_id}"
    created = await http.post(
        f"{user}/media", data={"image_url": "https://cdn.example/i.jpg", "caption": f"post_id={n}"}, headers=headers
    )
    container = created.json()["id"]
    status = await http.get(f"/instagram/{container}", params={"fields": "status_code"}, headers=headers)
    if status.json().get("status_code") != "FINISHED":
        raise RuntimeError(status.text)
    published = await http.post(f"{user}/media_publish", data={"creation_id": container}, headers=headers)
    if published.status_code != 200:
        raise RuntimeError(published.text)


async def drive(
    base_url: str, name: str, flow: Flow, *, requests_per_op: int, accounts: list[AccountInfo], args: argparse.Namespace
) -> Result:
    counter = itertools.count()
    latencies: list[float] = []
    errors = 0
    deadline = float("inf")  # set when every worker is connected

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal errors
        await flow(http, accounts[0], -1 - id(http))  # warm-up: open the connection
        await ready.wait()
        while time.perf_counter() < deadline:
            n = next(counter)
            if n >= args.max_ops:
                return
            started = time.perf_counter()
            try:
                await flow(http, accounts[n % len(accounts)], n)
            except (httpx.HTTPError, RuntimeError, KeyError):
                errors += 1
            latencies.append((time.perf_counter() - started) * 1000)

    # One client (one keep-alive connection) per worker: a shared httpx pool becomes the bottleneck.
    clients = [httpx.AsyncClient(base_url=base_url, timeout=30) for _ in range(args.concurrency)]
    ready = asyncio.Event()
    try:
        tasks = [asyncio.create_task(worker(http)) for http in clients]
        await asyncio.sleep(1)
        server = psutil.Process(args.server_pid)
        cpu_before = sum(server.cpu_times()[:2])
        started = time.perf_counter()
        deadline = started + args.duration
        ready.set()
        await asyncio.gather(*tasks)
        seconds = time.perf_counter() - started
        cpu = sum(server.cpu_times()[:2]) - cpu_before
    finally:
        for http in clients:
            await http.aclose()
    operations = len(latencies)
    return Result(name, operations, operations * requests_per_op, seconds, latencies, cpu, errors)


async def run(base_url: str, args: argparse.Namespace) -> list[Result]:
    async with EmulatorClient(base_url) as emu:
        results = []
        for name, flow, per_op in (("x", tweet, 1), ("ig", instagram, 3)):
            platform = "x" if name == "x" else "instagram"
            accounts = await emu.create_accounts([{"platform": platform} for _ in range(args.accounts)])
            results.append(await drive(base_url, name, flow, requests_per_op=per_op, accounts=accounts, args=args))
            stats = await emu.stats()
            if stats.duplicates:
                raise RuntimeError(f"benchmark produced {stats.duplicates} duplicates")
            await emu.reset()
        return results


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.emulator.bench", description=__doc__)
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent workers (and connections)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per flow")
    parser.add_argument("--max-ops", type=int, default=200_000, help="operations per flow at most")
    parser.add_argument("--accounts", type=int, default=1000)
    args = parser.parse_args(argv)
    port = free_port()
    command = [sys.executable, "-m", "tools.emulator", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--processing-ms", "0", "--no-realistic-limits"]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)  # noqa: S603 - fixed argv
    args.server_pid = server.pid
    base_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{base_url}/_emulator/health")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        results = asyncio.run(run(base_url, args))
    finally:
        server.terminate()
        server.wait(timeout=10)
    cpus = psutil.cpu_count()
    print(f"emulator ceiling: {args.concurrency} concurrent httpx clients, {args.duration:g} s per flow, {cpus} CPUs")
    for result in results:
        print(result.report())
    load = psutil.getloadavg()[0]
    print(f"load average after the run: {load:.2f} (other processes on this machine compete for the CPUs)")


if __name__ == "__main__":
    main()
