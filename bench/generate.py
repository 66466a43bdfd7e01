"""Synthetic but realistic X12 files for benchmarks: retail 850 purchase orders,
856 ship notices (S-O-P-I with SSCC-18 cartons) and 810 invoices, in several
interchanges and groups, from a fixed seed so every run writes the same bytes.

Usage: ``python -m bench.generate 850 10MB out.edi``. Importable as
``generate(kind, size_bytes, out) -> documents written``.

It must never be used as test data for business rules: values are plausible, not
consistent across documents.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from datetime import datetime
from typing import BinaryIO

from translators.x12.model import Delimiters, Segment
from translators.x12.writer import OutboundGroup, write_interchange

_AT = datetime(2024, 3, 5, 14, 30)
_CITIES = [
    ("MINNEAPOLIS", "MN", "55403"),
    ("BENTONVILLE", "AR", "72716"),
    ("COLUMBUS", "OH", "43219"),
    ("ATLANTA", "GA", "30339"),
    ("RENO", "NV", "89502"),
    ("MONTREAL", "QC", "H4T1E8"),
]
_PRODUCTS = [
    "CAFÉ VERDE ESPRESSO 1KG",
    "COTTON TEE CREW NECK BLK M",
    "LED DESK LAMP 40W",
    "STAINLESS WATER BOTTLE 750ML",
    "WOOL SOCKS 3PK GRY",
    "CERAMIC MUG 12OZ WHT",
    "YOGA MAT 6MM BLUE",
    "USB-C CABLE 2M",
    "ORGANIC GREEN TEA 100CT",
    "KIDS RAIN BOOTS SZ 11",
]


def _address(rng: random.Random, qualifier: str, name: str) -> list[Segment]:
    city, state, postal = rng.choice(_CITIES)
    return [
        ["N1", qualifier, name, "92", f"{rng.randint(1, 9999):04d}"],
        ["N3", f"{rng.randint(10, 9999)} {rng.choice(['MAIN', 'COMMERCE', 'INDUSTRIAL', 'HARBOR'])} ST"],
        ["N4", city, state, postal, "CA" if state == "QC" else "US"],
    ]


def _upc(rng: random.Random) -> str:
    return f"{rng.randrange(10**11, 10**12)}"


def _po_850(rng: random.Random, number: int) -> list[Segment]:
    lines = rng.randint(3, 40)
    segs: list[Segment] = [
        ["ST", "850", f"{number:04d}"],
        ["BEG", "00", "SA", f"PO{rng.randrange(10**7, 10**8)}", "", "20240305"],
        ["REF", "DP", f"{rng.randint(1, 999):03d}"],
        ["REF", "IA", f"{rng.randrange(10**6, 10**7)}"],
        ["PER", "BD", "BUYER DESK", "TE", "6125550100"],
        ["FOB", "PP"],
        ["ITD", "01", "3", "2", "", "30", "", "60"],
        ["DTM", "002", "20240320"],
        ["TD5", "", "2", "UPSN", "M"],
    ]
    segs += _address(rng, "ST", "STORE 0" + str(rng.randint(100, 999)))
    segs += _address(rng, "BT", "ACCOUNTS PAYABLE")
    total = 0
    for line in range(1, lines + 1):
        qty = rng.randint(1, 240)
        total += qty
        segs.append(
            [
                "PO1",
                str(line),
                str(qty),
                "EA",
                f"{rng.randint(100, 99999) / 100:.2f}",
                "",
                "UP",
                _upc(rng),
                "VN",
                f"V{rng.randrange(10**5, 10**6)}",
            ]
        )
        segs.append(["PID", "F", "", "", "", rng.choice(_PRODUCTS)])
        segs.append(
            ["PO4", str(rng.choice([6, 12, 24])), "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""]
        )
        if rng.random() < 0.3:
            stores = rng.sample(range(1000, 9999), 4)
            sdq = ["SDQ", "EA", "92"]
            for store in stores:
                sdq += [str(store), str(rng.randint(1, 24))]
            segs.append(sdq)
    segs.append(["CTT", str(lines), str(total)])
    return segs


def _asn_856(rng: random.Random, number: int) -> list[Segment]:
    segs: list[Segment] = [
        ["ST", "856", f"{number:04d}"],
        ["BSN", "00", f"SH{rng.randrange(10**6, 10**7)}", "20240305", "1430", "0001"],
        ["HL", "1", "", "S"],
        ["TD1", "CTN25", str(rng.randint(1, 40)), "", "", "", "G", str(rng.randint(10, 900)), "LB"],
        ["TD5", "", "2", "FDEG", "M"],
        ["REF", "BM", f"{rng.randrange(10**9, 10**10)}"],
        ["DTM", "011", "20240305"],
    ]
    segs += _address(rng, "ST", "DISTRIBUTION CENTER")
    segs += _address(rng, "SF", "WAREHOUSE EAST")
    hl = 1
    for _order in range(rng.randint(1, 3)):
        hl += 1
        order_hl = hl
        segs += [["HL", str(hl), "1", "O"], ["PRF", f"PO{rng.randrange(10**7, 10**8)}"]]
        for _pack in range(rng.randint(1, 6)):
            hl += 1
            pack_hl = hl
            segs += [["HL", str(hl), str(order_hl), "P"], ["MAN", "GM", f"00{rng.randrange(10**15, 10**16)}"]]
            for _item in range(rng.randint(1, 4)):
                hl += 1
                segs += [
                    ["HL", str(hl), str(pack_hl), "I"],
                    ["LIN", "", "UP", _upc(rng), "VN", f"V{rng.randrange(10**5, 10**6)}"],
                    ["SN1", "", str(rng.randint(1, 48)), "EA"],
                    ["PID", "F", "", "", "", rng.choice(_PRODUCTS)],
                ]
    segs.append(["CTT", str(hl)])
    return segs


def _invoice_810(rng: random.Random, number: int) -> list[Segment]:
    lines = rng.randint(2, 30)
    segs: list[Segment] = [
        ["ST", "810", f"{number:04d}"],
        [
            "BIG",
            "20240305",
            f"INV{rng.randrange(10**6, 10**7)}",
            "20240301",
            f"PO{rng.randrange(10**7, 10**8)}",
        ],
        ["CUR", "SE", "USD"],  # 810 heading order: BIG NTE CUR REF
        ["REF", "IA", f"{rng.randrange(10**6, 10**7)}"],
    ]
    segs += _address(rng, "RI", "SUPPLIER REMIT")
    segs += _address(rng, "ST", "STORE 0" + str(rng.randint(100, 999)))
    segs.append(["ITD", "01", "3", "", "", "", "", "30"])
    total = 0
    for line in range(1, lines + 1):
        qty, cents = rng.randint(1, 120), rng.randint(100, 99999)
        total += qty * cents
        segs.append(["IT1", str(line), str(qty), "EA", f"{cents / 100:.2f}", "", "UP", _upc(rng)])
        segs.append(["PID", "F", "", "", "", rng.choice(_PRODUCTS)])
    segs += [["TDS", str(total)], ["SAC", "C", "D240", "", "", "1500"], ["CTT", str(lines)]]
    return segs


_KINDS: dict[str, tuple[str, Callable[[random.Random, int], list[Segment]]]] = {
    "850": ("PO", _po_850),
    "856": ("SH", _asn_856),
    "810": ("IN", _invoice_810),
}


def parse_size(text: str) -> int:
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "B": 1}
    for unit, factor in units.items():
        if text.upper().endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def generate(kind: str, size_bytes: int, out: BinaryIO, *, seed: int = 850, varied: bool = False) -> int:
    """Write at least ``size_bytes`` of ``kind`` (850, 856, 810) documents to ``out``
    (whole interchanges, so slightly more); returns the number of transaction sets.
    Every interchange uses ``*``, ``>`` and ``~`` plus a line break unless ``varied``,
    which rotates through other delimiter styles as a multi-partner feed would."""
    functional_id, build = _KINDS[kind]
    rng = random.Random(seed)
    written = documents = 0
    interchange = 0
    styles = [Delimiters(suffix="\n")]
    if varied:
        styles += [Delimiters(element="|", component=":", segment="~", suffix="\r\n"), Delimiters(suffix="")]
    while written < size_bytes:
        interchange += 1
        groups = []
        for _ in range(rng.randint(1, 3)):
            sets = [build(rng, documents + i + 1) for i in range(rng.randint(5, 40))]
            documents += len(sets)
            groups.append(
                OutboundGroup(
                    functional_id, "SENDERCO", "RETAILER", interchange * 10 + len(groups) + 1, "004010", sets
                )
            )
        text = write_interchange(
            sender=("ZZ", "SENDERCO"),
            receiver=("12", "6125550100"),
            control_number=interchange,
            at=_AT,
            groups=groups,
            delimiters=styles[interchange % len(styles)],
        )
        data = text.encode("utf-8")
        out.write(data)
        written += len(data)
    return documents


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in _KINDS:
        print("usage: python -m bench.generate {850|856|810} SIZE[KB|MB|GB] OUT", file=sys.stderr)
        return 2
    with open(argv[2], "wb") as out:
        count = generate(argv[0], parse_size(argv[1]), out)
    print(f"wrote {count} {argv[0]} documents to {argv[2]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
