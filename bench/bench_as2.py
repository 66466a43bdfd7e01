"""Benchmark of the AS2 message package: receive (unwrap + MIC) and answer (signed MDN)
10 KB signed+encrypted messages, beside pyas2lib's parse (which builds its signed MDN)
on the same messages and the raw RSA-2048 private-key rate measured in the same run.

Each message costs two RSA private operations (unwrap the content key, sign the MDN)
and one public one, so ``rsa_private_ops_per_s / 2`` is the ceiling; the ratio shows
how much of the time is crypto rather than parsing.

Usage: ``python -m bench.bench_as2 [--messages 200] [--size-kb 10] [--repeat 3]``.
Times are CPU seconds (``time.process_time``), best of ``--repeat``.

It must never be imported by the product; it measures, it does not test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from as2 import (
    KeyPair,
    as2_headers,
    build_mdn,
    build_message,
    generate_self_signed,
    key_pair_pem,
    unwrap,
)
from as2.mic import disposition_options


def best_cpu_seconds(run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best


def make_messages(
    count: int, size: int, sender: KeyPair, receiver: KeyPair
) -> list[tuple[dict[str, str], bytes]]:
    messages = []
    for i in range(count):
        payload = (b"ST*850*%04d~BEG*00*SA*PO%06d~" % (i, i) + os.urandom(size // 2).hex().encode())[:size]
        out = build_message(payload, our_keys=[sender], partner_certs=[receiver.certificate])
        headers = {
            **as2_headers(
                as2_from="THEM",
                as2_to="GATEWAY",
                message_id=f"<m{i}@them>",
                receipt_to="as2@them",
                signed_receipt_micalg="sha-256",
            ),
            **out.headers,
        }
        messages.append((headers, out.body))
    return messages


def ours(messages: list[tuple[dict[str, str], bytes]], us: KeyPair, them: KeyPair) -> None:
    for headers, body in messages:
        msg = unwrap(headers, body, partner_certs=[them.certificate], our_keys=[us])
        build_mdn(
            original_message_id=headers["Message-ID"],
            final_recipient="GATEWAY",
            mic=msg.mic,
            sign_with=[us],
            micalg=msg.mic.algorithm,
        )


def pyas2lib_run(
    messages: list[tuple[dict[str, str], bytes]], us: KeyPair, them: KeyPair
) -> Callable[[], object] | None:
    try:
        from pyas2lib import as2 as pyas2
    except ImportError:
        return None
    key, cert = key_pair_pem(us, b"bench")
    org = pyas2.Organization(
        as2_name="GATEWAY",
        sign_key=key + cert,
        sign_key_pass="bench",
        decrypt_key=key + cert,
        decrypt_key_pass="bench",
        domain="gw.bench",
    )
    partner = pyas2.Partner(
        as2_name="THEM",
        verify_cert=key_pair_pem(them)[1],
        validate_certs=False,
        mdn_mode="SYNC",
        mdn_digest_alg="sha256",
    )
    raws = ["".join(f"{k}: {v}\r\n" for k, v in h.items()).encode() + b"\r\n" + b for h, b in messages]

    def run() -> None:
        for raw in raws:
            status, _, mdn = pyas2.Message().parse(
                raw, find_org_cb=lambda n: org, find_partner_cb=lambda n: partner
            )
            assert status == "processed" and mdn is not None

    return run


def rsa_private_ops_per_s(pair: KeyPair, seconds: float = 1.0) -> float:
    count, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        pair.key.sign(b"x" * 32, padding.PKCS1v15(), hashes.SHA256())
        count += 1
    return count / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--size-kb", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    us, them = generate_self_signed("GATEWAY"), generate_self_signed("THEM")
    messages = make_messages(args.messages, args.size_kb * 1024, them, us)
    # sanity: the options ask for what the MDN signs with
    assert "sha-256" in disposition_options("sha-256")

    ours_s = best_cpu_seconds(lambda: ours(messages, us, them), args.repeat)
    rsa = rsa_private_ops_per_s(us)
    result: dict[str, object] = {
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}",
        "messages": args.messages,
        "size_kb": args.size_kb,
        "ours_messages_per_s": round(args.messages / ours_s, 1),
        "rsa2048_private_ops_per_s": round(rsa, 1),
        "ours_vs_rsa_ceiling": round((args.messages / ours_s) / (rsa / 2), 2),
    }
    run = pyas2lib_run(messages, us, them)
    if run is not None:
        theirs_s = best_cpu_seconds(run, args.repeat)
        result["pyas2lib_messages_per_s"] = round(args.messages / theirs_s, 1)
        result["ours_vs_pyas2lib"] = round(theirs_s / ours_s, 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
