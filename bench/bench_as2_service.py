"""AS2 service benchmark (not a test): messages received end to end by a real
``python -m gateway serve`` process (SQLite, ``[pipeline] workers = 0``: accept
only) on ``POST /as2``: signed (SHA-256, RSA-2048) and encrypted (AES-256-CBC)
messages, each answered with a signed synchronous MDN after its payload is stored
durably. ``--concurrency`` senders post prebuilt messages (built before timing).

Beside it, in the same run:
- pyas2lib's own parse + signed MDN rate on 10 KB messages (one thread, CPU time),
- the raw RSA-2048 private-key operations/s of ``cryptography`` (two per message:
  the content key and the MDN signature), i.e. the crypto ceiling per core.

And one ``--big-mb`` message: the gateway process's peak RSS growth while it
receives, stores and answers it (``VmHWM`` after resetting it through
``/proc/<pid>/clear_refs``), against the payload size.

The client runs on the same machine (and CPUs) as the gateway.
Usage: python -m bench.bench_as2_service [--small 400] [--large 48] [--concurrency 16] [--big-mb 100]
       [--receive-processes N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from as2 import KeyPair, as2_headers, build_message, generate_self_signed, key_pair_pem, parse_mdn
from bench.bench_as2 import best_cpu_seconds, pyas2lib_run, rsa_private_ops_per_s
from bench.bench_service import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "gateway"))

from gwsamples import profile_toml  # noqa: E402

Message = tuple[dict[str, str], bytes]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build(count: int, size: int, prefix: str, them: KeyPair, us: KeyPair) -> list[Message]:
    messages = []
    filler = os.urandom(size // 2 + 16).hex().encode()
    for i in range(count):
        payload = (b"ISA*00*%s*%06d~" % (prefix.encode(), i) + filler)[:size]
        out = build_message(payload, our_keys=[them], partner_certs=[us.certificate])
        headers = {
            **as2_headers(
                as2_from="THEM",
                as2_to="GATEWAY",
                message_id=f"<{prefix}{i}@them.bench>",
                receipt_to="as2@them.bench",
                signed_receipt_micalg="sha-256",
            ),
            **out.headers,
            "Content-Length": str(len(out.body)),
        }
        messages.append((headers, out.body))
    return messages


async def post_all(url: str, messages: list[Message], concurrency: int, us: KeyPair) -> float:
    queue = list(reversed(messages))
    answers: list[tuple[dict[str, str], bytes]] = []

    async def sender(session: aiohttp.ClientSession) -> None:
        while queue:
            headers, body = queue.pop()
            async with session.post(url, data=body, headers=headers) as resp:
                answer = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}: {answer[:200]!r}")
                answers.append((dict(resp.headers), answer))

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=600)
    ) as session:
        started = time.perf_counter()
        await asyncio.gather(*(sender(session) for _ in range(concurrency)))
        took = time.perf_counter() - started
    for headers, body in answers[:3] + answers[-3:]:  # a sample: processed, signed, verified
        report = parse_mdn(headers, body, partner_certs=[us.certificate])
        assert report.disposition.ok and report.signature_verified, report
    assert len(answers) == len(messages)
    return took


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` alone (all its threads, no child processes)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def intake_counts(port: int) -> tuple[int, int]:
    """(group commits, messages accepted) from the gateway's /metrics; zeros when it has none (older code)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": "Bearer bench"}) as resp,
    ):
        text = await resp.text()
    values = dict(line.split(" ", 1) for line in text.splitlines() if line.startswith("gateway_intake_"))
    return int(values.get("gateway_intake_commits_total", 0)), int(
        values.get("gateway_intake_accepted_total", 0)
    )


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def start_gateway(
    work: Path, us: KeyPair, them: KeyPair, big_bytes: int, receive_processes: int | None
) -> tuple[subprocess.Popen[bytes], int]:
    key, cert = key_pair_pem(us)
    (work / "our.key").write_bytes(key)
    (work / "our.pem").write_bytes(cert)
    folder = work / "partners" / "them"
    folder.mkdir(parents=True)
    (folder / "them.pem").write_bytes(key_pair_pem(them)[1])
    (folder / "profile.toml").write_text(
        profile_toml("them", "THEM", "unused-rest-key")
        + '[as2]\nid = "THEM"\nurl = "http://127.0.0.1:1/as2"\ncertificates = ["them.pem"]\n'
    )
    config = work / "gateway.toml"
    # None: the shipped default (main's code has no such key)
    processes = "" if receive_processes is None else f"receive_processes = {receive_processes}\n"
    config.write_text(
        f'data_dir = "{work / "var"}"\npartners_dir = "{work / "partners"}"\n'
        '[identity]\ninterchange_qualifier = "ZZ"\ninterchange_id = "OURCOMPANY"\ngroup_id = "OURCOMPANY"\n'
        '[api]\ntoken = "bench"\n[pipeline]\nworkers = 0\n[storage]\nprune_interval_minutes = 0\n'
        f"[limits]\nmax_edi_bytes = {max(64 << 20, 2 * big_bytes)}\n"
        f'[as2]\nid = "GATEWAY"\n{processes}[[as2.keys]]\nkey = "{work / "our.key"}"\ncertificate = "{work / "our.pem"}"\n'
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port),
         "--log-level", "ERROR"],
        cwd=work, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gateway exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.1)
    raise SystemExit("gateway did not start")


async def run(args: argparse.Namespace) -> None:
    us, them = generate_self_signed("GATEWAY"), generate_self_signed("THEM")
    big_bytes = args.big_mb << 20
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, {platform.python_implementation()} "
          f"{platform.python_version()}; {args.concurrency} concurrent senders, client on the same machine; "
          f"load average {Path('/proc/loadavg').read_text().split()[0]}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-as2-") as tmp:
        proc, port = start_gateway(Path(tmp), us, them, big_bytes, args.receive_processes)
        url = f"http://127.0.0.1:{port}/as2"
        try:
            await post_all(url, build(16, 1024, "warm", them, us), args.concurrency, us)
            small = build(args.small, 10 * 1024, "s", them, us)
            commits = await intake_counts(port)
            gateway_cpu, client_cpu = cpu_seconds(proc.pid), time.process_time()
            main_cpu = process_cpu_seconds(proc.pid)
            took = await post_all(url, small, args.concurrency, us)
            main_ms = (process_cpu_seconds(proc.pid) - main_cpu) * 1000 / len(small)
            commits = tuple(
                after - before for after, before in zip(await intake_counts(port), commits, strict=True)
            )
            gateway_ms = (cpu_seconds(proc.pid) - gateway_cpu) * 1000 / len(small)
            client_ms = (time.process_time() - client_cpu) * 1000 / len(small)
            small_rate = len(small) / took
            print(f"10 KB: {len(small)} messages in {took:.2f} s: {small_rate:.0f} messages/s end to end")
            print(
                f"  CPU per message: gateway (with its worker processes) {gateway_ms:.2f} ms, "
                f"client {client_ms:.2f} ms -> CPU-bound ceiling on {os.cpu_count()} CPUs "
                f"{(os.cpu_count() or 1) * 1000 / (gateway_ms + client_ms):.0f} messages/s"
            )
            print(
                f"  of which the gateway process itself (event loop and its threads) {main_ms:.2f} ms "
                f"-> one-process ceiling {1000 / main_ms:.0f} messages/s"
            )
            if commits[0]:
                print(
                    f"  group commits: {commits[0]} for {commits[1]} messages ({commits[1] / commits[0]:.1f} per commit)"
                )
            large = build(args.large, 1 << 20, "l", them, us)
            took = await post_all(url, large, args.concurrency, us)
            print(f"1 MB:  {len(large)} messages in {took:.2f} s: {len(large) / took:.1f} messages/s "
                  f"({len(large) / took:.1f} MB/s of payload)")  # fmt: skip
            if big_bytes:
                [big] = build(1, big_bytes, "big", them, us)
                before = status_kb(proc.pid, "VmRSS")
                Path(f"/proc/{proc.pid}/clear_refs").write_text("5")
                took = await post_all(url, [big], 1, us)
                growth = (status_kb(proc.pid, "VmHWM") - before) * 1024
                print(f"{args.big_mb} MiB message (body {len(big[1])} bytes): {took:.1f} s, gateway peak RSS "
                      f"growth {growth / (1 << 20):.0f} MiB = {growth / big_bytes:.2f}x the payload (target < 5x)")  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(30)
    peer_messages = build(args.peer, 10 * 1024, "p", them, us)
    rsa = rsa_private_ops_per_s(us)
    peer = pyas2lib_run(peer_messages, us, them)
    print(
        f"RSA-2048 private operations: {rsa:.0f}/s on one core -> crypto ceiling {rsa / 2:.0f} messages/s per core"
    )
    if peer is None:
        print("pyas2lib is not installed: no peer figure")
        return
    peer_rate = len(peer_messages) / best_cpu_seconds(peer, 2)
    print(f"pyas2lib parse + signed MDN (10 KB, one thread, CPU time, best of 2): {peer_rate:.1f} messages/s")
    print(f"ratio: gateway end to end 10 KB / pyas2lib = {small_rate / peer_rate:.1f}x (target >= 10x)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=400, help="10 KB messages")
    parser.add_argument("--large", type=int, default=48, help="1 MB messages")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--big-mb", type=int, default=100, help="one message of this many MiB (0: none)")
    parser.add_argument("--peer", type=int, default=100, help="messages for pyas2lib")
    parser.add_argument(
        "--receive-processes",
        type=int,
        default=None,
        help="[as2] receive_processes (default: the shipped one)",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
