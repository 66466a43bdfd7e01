"""The offline CLI: translate, ack and render on files written here and on corpus
files; exit codes 0/1/2 and never a traceback on unusable input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = str(ROOT / "examples" / "partners")
NOW = "2024-03-01T12:30:00"


def isa(
    sender: tuple[str, str],
    control: int,
    *,
    e: str = "*",
    version: str = "00401",
    rep: str = "U",
    ack_requested: str = "0",
    receiver: tuple[str, str] = ("ZZ", "GATEWAY"),
    comp: str = ">",
) -> str:
    return (
        e.join(
            [
                "ISA",
                "00",
                " " * 10,
                "00",
                " " * 10,
                sender[0],
                sender[1].ljust(15),
                receiver[0],
                receiver[1].ljust(15),
                "240301",
                "1230",
                rep,
                version,
                f"{control:09d}",
                ack_requested,
                "P",
                comp,
            ]
        )
        + "~"
    )


def order_set(control: str, po: str, *, e: str = "*", wrong_count: bool = False) -> str:
    body = [
        f"ST{e}850{e}{control}",
        f"BEG{e}00{e}SA{e}{po}{e}{e}20240301",
        f"DTM{e}002{e}20240315",
        f"N1{e}ST{e}STORE 42{e}92{e}0042",
        f"PO1{e}1{e}10{e}EA{e}2.50{e}PE{e}IN{e}88001{e}UP{e}012345678905",
        f"CTT{e}1",
    ]
    body.append(f"SE{e}{len(body) + 1 + (2 if wrong_count else 0)}{e}{control}")
    return "~\n".join(body) + "~\n"


def interchange(
    sender: tuple[str, str],
    sets: list[str],
    *,
    control: int = 101,
    iea_control: int | None = None,
    e: str = "*",
    version: str = "00401",
    gs08: str = "004010",
    rep: str = "U",
    ack_requested: str = "0",
) -> str:
    return (
        isa(sender, control, e=e, version=version, rep=rep, ack_requested=ack_requested)
        + "\n"
        + e.join(["GS", "PO", sender[1], "GATEWAY", "20240301", "1230", "1", "X", gs08])
        + "~\n"
        + "".join(sets)
        + e.join(["GE", str(len(sets)), "1"])
        + "~\n"
        + e.join(["IEA", "1", f"{iea_control if iea_control is not None else control:09d}"])
        + "~\n"
    )


HOLD = ("ZZ", "HOLDRETAIL")


@pytest.fixture(autouse=True)
def no_gateway_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# --------------------------------------------------------------------------- translate


def test_translate_finds_the_partner_from_the_isa_sender(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(tmp_path, "in.edi", interchange(HOLD, [order_set("0001", "PO-1")]))
    code, out, err = run(capsys, "translate", source, "--partners", EXAMPLES)
    assert (code, err) == (0, "")
    [line] = out.splitlines()
    doc = json.loads(line)
    assert doc["kind"] == "order"
    assert doc["partner_id"] == "holdretail"
    assert doc["envelope"]["interchange_control"] == "000000101"
    assert doc["envelope"]["sender_id"] == "HOLDRETAIL"
    assert doc["document"]["po_number"] == "PO-1"
    assert doc["document"]["dates"]["requested_delivery"] == "2024-03-15"
    assert doc["document"]["lines"][0]["product_ids"]["buyer_item"] == "88001"


def test_translate_prints_accepted_sets_and_explains_rejected_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sets = [order_set("0001", "PO-1"), order_set("0002", "PO-2", wrong_count=True), order_set("0003", "PO-3")]
    source = write(tmp_path, "in.edi", interchange(HOLD, sets))
    code, out, err = run(capsys, "translate", source, "--partners", EXAMPLES)
    assert code == 1
    assert [json.loads(line)["document"]["po_number"] for line in out.splitlines()] == ["PO-1", "PO-3"]
    [reason] = err.splitlines()
    assert reason.startswith("interchange 000000101 from ZZ/HOLDRETAIL, group 1, set 850 0002: ")
    assert "segment count wrong" in reason


def test_translate_unknown_sender_is_rejected_until_a_partner_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(tmp_path, "in.edi", interchange(("ZZ", "STRANGER"), [order_set("0001", "PO-9")]))
    code, out, err = run(capsys, "translate", source, "--partners", EXAMPLES)
    assert (code, out) == (1, "")
    assert "no partner profile for sender ZZ/STRANGER" in err
    code, out, err = run(capsys, "translate", source, "--partners", EXAMPLES, "--partner", "holdretail")
    assert (code, err) == (0, "")
    assert json.loads(out)["partner_id"] == "holdretail"


def test_translate_envelope_error_is_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write(tmp_path, "in.edi", interchange(HOLD, [order_set("0001", "PO-1")], iea_control=999))
    code, _out, err = run(capsys, "translate", source, "--partners", EXAMPLES)
    assert code == 1
    assert "interchange 000000101 from ZZ/HOLDRETAIL rejected: TA1 note 001 (control number mismatch)" in err


def test_translate_reads_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = interchange(HOLD, [order_set("0001", "PO-1")]).encode()
    stdin = tmp_path / "stdin"
    stdin.write_bytes(data)
    with stdin.open("rb") as handle:
        monkeypatch.setattr(sys, "stdin", type("S", (), {"buffer": handle})())
        code, out, _err = run(capsys, "translate", "-", "--partners", EXAMPLES)
    assert code == 0
    assert json.loads(out)["document"]["po_number"] == "PO-1"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "gateway: {path}: no such file"),
        ("DIR", "gateway: {path}: is a directory, not a file"),
        (b"", "gateway: {path}: not X12: no ISA interchange header found: the input is empty"),
        (b"\n \r\n", "gateway: {path}: not X12: no ISA interchange header found: the input is empty"),
        (b"hello, this is not EDI\n", "gateway: {path}: not X12: "),
        (bytes(range(256)) * 4, "gateway: {path}: not X12: "),
    ],
    ids=["missing", "directory", "empty", "blank", "text", "binary"],
)
@pytest.mark.parametrize("command", ["translate", "ack"])
def test_unusable_input_is_exit_2_with_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    content: bytes | str | None,
    expected: str,
) -> None:
    path = tmp_path / "input.edi"
    if content == "DIR":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    code, out, err = run(capsys, command, str(path), "--partners", EXAMPLES)
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1
    assert err.startswith(expected.format(path=path))


def test_unknown_partner_and_broken_partners_dir_are_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(tmp_path, "in.edi", interchange(HOLD, [order_set("0001", "PO-1")]))
    code, _out, err = run(capsys, "translate", source, "--partners", EXAMPLES, "--partner", "nobody")
    assert code == 2
    assert err == "gateway: unknown partner 'nobody' (known: holdretail, northwind3pl)\n"
    (tmp_path / "bad" / "x").mkdir(parents=True)
    code, _out, err = run(capsys, "translate", source, "--partners", str(tmp_path / "bad"))
    assert code == 2
    assert err.startswith(
        f"gateway: the partners directory has 1 error(s); run 'gateway partners check {tmp_path / 'bad'}'"
    )


def test_translate_subprocess_garbage_has_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "junk.edi").write_bytes(b"\x00\x01garbage\xff")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "translate", "junk.edi", "--partners", EXAMPLES],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("gateway: junk.edi: not X12: ")
    assert len(result.stderr.splitlines()) == 1


# --------------------------------------------------------------------------- ack


def test_ack_accepted_4010_is_a_997_from_our_identity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(tmp_path, "in.edi", interchange(HOLD, [order_set("0001", "PO-1")]))
    code, out, err = run(capsys, "ack", source, "--partners", EXAMPLES, "--now", NOW)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "ISA*00*          *00*          *ZZ*GATEWAY        *ZZ*HOLDRETAIL     *240301*1230*U*00401*000000001*0*P*>~",
        "GS*FA*GATEWAY*HOLDRETAIL*20240301*1230*1*X*004010~",
        "ST*997*0001~",
        "AK1*PO*1~",
        "AK2*850*0001~",
        "AK5*A~",
        "AK9*A*1*1*1~",
        "SE*6*0001~",
        "GE*1*1~",
        "IEA*1*000000001~",
    ]


def test_ack_partial_acceptance_and_identity_from_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gateway.toml").write_text(
        '[identity]\ninterchange_qualifier = "01"\ninterchange_id = "123456789"\ngroup_id = "OURS"\n'
    )
    sets = [order_set("0001", "PO-1"), order_set("0002", "PO-2", wrong_count=True)]
    text = interchange(HOLD, sets).replace("*ZZ*GATEWAY        *", "*01*123456789      *")
    source = write(tmp_path, "in.edi", text)
    code, out, _err = run(
        capsys, "ack", source, "--partners", EXAMPLES, "--now", NOW, "--control-number", "42"
    )
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("ISA*00*          *00*          *01*123456789      *ZZ*HOLDRETAIL     *")
    assert "*000000042*" in lines[0]
    assert lines[1] == "GS*FA*OURS*HOLDRETAIL*20240301*1230*42*X*004010~"
    assert "AK5*R*4~" in lines
    assert "AK9*P*2*2*1~" in lines


def test_ack_envelope_error_gets_a_ta1_for_holdretail_and_nothing_for_northwind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(tmp_path, "in.edi", interchange(HOLD, [order_set("0001", "PO-1")], iea_control=999))
    code, out, _err = run(capsys, "ack", source, "--partners", EXAMPLES, "--now", NOW)
    assert code == 1
    assert "TA1*000000101*240301*1230*R*001~" in out.splitlines()
    assert "ST*997" not in out  # a rejected envelope's groups are not acknowledged
    # Northwind's profile says ta1 = "never".
    code, out, err = run(
        capsys, "ack", source, "--partners", EXAMPLES, "--partner", "northwind3pl", "--now", NOW
    )
    assert (code, out) == (1, "")
    assert "no acknowledgment due" in err


def test_ack_5010_pipe_input_gets_a_999_for_northwind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = interchange(
        ("01", "NORTHWIND3PL"),
        [order_set("0001", "PO-7", e="|")],
        e="|",
        version="00501",
        gs08="005010",
        rep="^",
    )
    source = write(tmp_path, "in.edi", text)
    code, out, err = run(capsys, "ack", source, "--partners", EXAMPLES, "--now", NOW)
    assert (code, err) == (0, "")
    assert "|01|NORTHWIND3PL   |" in out.splitlines()[0]
    assert "GS|FA|GATEWAY|NW3PL|20240301|1230|1|X|005010X231A1~" in out.splitlines()
    assert any(line.startswith("ST|999|0001") for line in out.splitlines())
    assert "IK5|A~" in out.splitlines()


def test_ack_unknown_sender_sends_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write(tmp_path, "in.edi", interchange(("ZZ", "STRANGER"), [order_set("0001", "PO-9")]))
    code, out, err = run(capsys, "ack", source, "--partners", EXAMPLES, "--now", NOW)
    assert (code, out) == (0, "")
    assert err == (
        "interchange 000000101: no partner profile for sender ZZ/STRANGER: the gateway quarantines it "
        "and sends no acknowledgment (use --partner to pick one)\n"
    )


def test_ack_is_byte_stable_with_now(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write(tmp_path, "in.edi", interchange(HOLD, [order_set("0001", "PO-1")]))
    first = run(capsys, "ack", source, "--partners", EXAMPLES, "--now", NOW)
    second = run(capsys, "ack", source, "--partners", EXAMPLES, "--now", NOW)
    assert first == second


# --------------------------------------------------------------------------- render


def test_render_round_trips_a_translated_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write(
        tmp_path, "in.edi", interchange(HOLD, [order_set("0001", "PO-1"), order_set("0002", "PO-2")])
    )
    code, jsonl, _err = run(capsys, "translate", source, "--partners", EXAMPLES)
    assert code == 0
    docs = write(tmp_path, "docs.jsonl", jsonl)
    code, x12, err = run(
        capsys, "render", "--partner", "holdretail", docs, "--partners", EXAMPLES, "--now", NOW
    )
    assert (code, err) == (0, "")
    lines = x12.splitlines()
    # from the id the partner knows us by (its profile's our_ids), not [identity]
    assert lines[0] == (
        "ISA*00*          *00*          *ZZ*OURCOMPANY     *ZZ*HOLDRETAIL     *240301*1230*U*00401*000000001*0*P*>~"
    )
    assert lines[1] == "GS*PO*OURCOMPANY*HOLDRETAIL*20240301*1230*1*X*004010~"
    assert [line for line in lines if line.startswith("ST*")] == ["ST*850*0001~", "ST*850*0002~"]
    assert lines[-2:] == ["GE*2*1~", "IEA*1*000000001~"]
    # What we wrote reads back as the same orders.
    back = write(tmp_path, "out.edi", x12)
    code, again, err = run(capsys, "translate", back, "--partners", EXAMPLES, "--partner", "holdretail")
    assert (code, err) == (0, "")
    before = [json.loads(line)["document"] for line in jsonl.splitlines()]
    after = [json.loads(line)["document"] for line in again.splitlines()]
    assert after == before


def test_render_uses_the_partners_delimiters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write(tmp_path, "in.edi", interchange(HOLD, [order_set("0001", "PO-1")]))
    _code, jsonl, _err = run(capsys, "translate", source, "--partners", EXAMPLES)
    single = write(tmp_path, "doc.json", json.dumps(json.loads(jsonl), indent=2))
    code, x12, err = run(
        capsys, "render", "--partner", "northwind3pl", single, "--partners", EXAMPLES, "--now", NOW
    )
    assert (code, err) == (0, "")
    assert x12.startswith(
        "ISA|00|          |00|          |ZZ|OURCOMPANY     |01|NORTHWIND3PL   |240301|1230|^|00501|"
    )
    assert "\r\nGS|PO|OURCOMPANY|NW3PL|20240301|1230|1|X|005010~\r\n" in x12


def test_render_bare_document_needs_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write(tmp_path, "in.edi", interchange(HOLD, [order_set("0001", "PO-1")]))
    _code, jsonl, _err = run(capsys, "translate", source, "--partners", EXAMPLES)
    bare = write(tmp_path, "bare.json", json.dumps(json.loads(jsonl)["document"]))
    code, out, err = run(capsys, "render", "--partner", "holdretail", bare, "--partners", EXAMPLES)
    assert (code, out) == (2, "")
    assert 'no "kind"' in err
    code, out, _err = run(
        capsys,
        "render",
        "--partner",
        "holdretail",
        "--kind",
        "order",
        bare,
        "--partners",
        EXAMPLES,
        "--now",
        NOW,
    )
    assert code == 0
    assert "BEG*00*SA*PO-1**20240301~" in out.splitlines()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "gateway: {path}: empty, expected a canonical JSON document"),
        ('{"kind": "order",', "gateway: {path}: not JSON: "),
        ('{"kind": "order", "document": {}}', "gateway: {path}: not a canonical document: "),
        ('{"kind": "recipe", "document": {}}', "gateway: {path}: not a canonical document: kind: "),
    ],
)
def test_render_bad_json_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    path = write(tmp_path, "doc.json", content)
    code, out, err = run(capsys, "render", "--partner", "holdretail", path, "--partners", EXAMPLES)
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1
    assert err.startswith(expected.format(path=path))


def test_render_requires_a_partner(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["render", "doc.json"])
    assert caught.value.code == 2
    assert "--partner" in capsys.readouterr().err


# --------------------------------------------------------------------------- corpus


def test_corpus_samples(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x12 = corpus / "x12"
    good = x12 / "850" / "nodex12_850_4010VICS_tilde_LF.edi"
    code, out, err = run(capsys, "translate", str(good), "--partners", EXAMPLES, "--partner", "holdretail")
    assert (code, err) == (0, "")
    assert json.loads(out)["document"]["po_number"] == "08292233294"

    bad_count = x12 / "mixed" / "edinet_850_BAL_wrong_SE_count.edi"
    code, out, err = run(
        capsys, "translate", str(bad_count), "--partners", EXAMPLES, "--partner", "holdretail"
    )
    assert (code, out) == (1, "")
    assert "segment count wrong" in err

    code, out, _err = run(
        capsys, "ack", str(good), "--partners", EXAMPLES, "--partner", "holdretail", "--now", NOW
    )
    assert code == 0
    assert "AK1*PO*1421~" in out.splitlines()


def test_every_corpus_x12_file_gets_a_defined_exit_code(
    corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No file makes the CLI crash: each ends in 0, 1 or 2 with a reason on stderr."""
    outcomes: dict[str, int] = {}
    for path in sorted((corpus / "x12").rglob("*")):
        if not path.is_file():
            continue
        for command in ("translate", "ack"):
            extra = ["--now", NOW] if command == "ack" else []
            code, _out, err = run(
                capsys, command, str(path), "--partners", EXAMPLES, "--partner", "holdretail", *extra
            )
            assert code in (0, 1, 2), (command, path.name, err)
            assert "internal error" not in err, (command, path.name, err)
            if code != 0 and command == "translate":
                assert err.strip(), path.name
            outcomes[f"{command} {path.name}"] = code
    assert outcomes  # the corpus was found and walked


def test_ack_for_a_forced_partner_goes_to_the_partners_own_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--partner on a file from another ISA address (a damaged one here): the answer is
    addressed to the partner's profile address, never to the foreign or broken one."""
    path = tmp_path / "foreign.edi"
    path.write_bytes(
        b"ISA|00|          |00|          |~1|NORTHWIND3PL   |ZZ|OURCOMPANY     |261122|0930|^|00501|000000203|0|P|:~\r\n"
        b"GS|IN|NW3PL|OURCOMPANY|20261122|0930|203|X|005010~\r\nST|810|0001|005010~\r\n"
        b"BIG|20261122|INV-3001|20261120|PO-1001~\r\nSE|3|0001~\r\nGE|1|203~\r\nIEA|1|000000203~\r\n"
    )
    code, out, _err = run(
        capsys, "ack", str(path), "--partners", EXAMPLES, "--partner", "northwind3pl", "--now", NOW
    )
    assert code == 1
    isa = out.split("~", 1)[0].split("|")
    assert (isa[7], isa[8].strip()) == ("01", "NORTHWIND3PL")
    assert "IK5|R|5~" in out


def test_configured_identity_rejects_an_interchange_for_someone_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With [identity] configured, an interchange addressed to another company is
    answered TA1 009 and none of its documents is printed."""
    (tmp_path / "gateway.toml").write_text(
        '[identity]\ninterchange_qualifier = "01"\ninterchange_id = "123456789"\ngroup_id = "OURS"\n'
    )
    source = write(tmp_path, "in.edi", interchange(HOLD, [order_set("0001", "PO-1")]))  # to ZZ/GATEWAY
    code, out, err = run(capsys, "translate", source, "--partners", EXAMPLES)
    assert code == 1
    assert out == ""
    assert "TA1 note 009" in err
    code, out, _ = run(capsys, "ack", source, "--partners", EXAMPLES, "--now", NOW)
    assert code == 1
    assert "TA1*000000101*240301*1230*R*009~" in out.splitlines()
    assert "AK1" not in out


def test_documents_of_a_rejected_group_are_not_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """GE01 says 3 sets, the group has 1: AK9 R, so its valid 850 is not used."""
    text = interchange(HOLD, [order_set("0001", "PO-1")]).replace("GE*1*1~", "GE*3*1~")
    source = write(tmp_path, "in.edi", text)
    code, out, err = run(capsys, "translate", source, "--partners", EXAMPLES)
    assert code == 1
    assert out == ""
    assert "not used: group 1 rejected: AK9 code 5" in err


def test_translate_and_render_run_the_partners_hooks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    partners = tmp_path / "partners"
    shutil.copytree(EXAMPLES, partners)
    (partners / "holdretail" / "hooks.py").write_text(
        "def inbound(document, context):\n"
        "    document['document']['references'].append({'qualifier': 'ZZ', 'value': 'IN-HOOK', 'description': None})\n"
        "def outbound(document, context):\n"
        "    document['document']['po_number'] = document['document']['po_number'] + '-X'\n"
    )
    source = write(tmp_path, "in.edi", interchange(HOLD, [order_set("0001", "PO-1")]))
    code, out, err = run(capsys, "translate", source, "--partners", str(partners))
    assert (code, err) == (0, "")
    [line] = out.splitlines()
    assert {"qualifier": "ZZ", "value": "IN-HOOK", "description": None} in json.loads(line)["document"][
        "references"
    ]
    doc = write(tmp_path, "doc.json", line)
    code, out, err = run(capsys, "render", "--partner", "holdretail", "--partners", str(partners), doc)
    assert (code, err) == (0, "")
    assert "BEG*00*SA*PO-1-X*" in out


def test_a_repeated_interchange_is_rejected_025_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Same sender and ISA13 twice in one file: the second is a duplicate (TA1 025)."""
    text = interchange(HOLD, [order_set("0001", "PO-1")]) + interchange(HOLD, [order_set("0001", "PO-1")])
    source = write(tmp_path, "in.edi", text)
    code, out, err = run(capsys, "translate", source, "--partners", EXAMPLES)
    assert code == 1
    assert len(out.splitlines()) == 1  # only the first interchange's order
    assert err == "interchange 000000101 from ZZ/HOLDRETAIL rejected: TA1 note 025 (duplicate interchange)\n"
    code, out, _err = run(capsys, "ack", source, "--partners", EXAMPLES, "--now", NOW)
    assert code == 1
    lines = out.splitlines()
    assert "AK9*A*1*1*1~" in lines  # the first is acknowledged as usual
    assert "TA1*000000101*240301*1230*R*025~" in lines
    assert lines.count("ST*997*0001~") == 1
    code, out, err = run(capsys, "translate", source, "--partners", EXAMPLES, "--allow-duplicates")
    assert (code, err) == (0, "")
    assert len(out.splitlines()) == 2
    code, out, err = run(capsys, "ack", source, "--partners", EXAMPLES, "--now", NOW, "--allow-duplicates")
    assert (code, err) == (0, "")
    assert "TA1" not in out
    assert out.splitlines().count("AK9*A*1*1*1~") == 2


def test_a_profile_without_reject_duplicates_takes_a_repeated_interchange(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    partners = tmp_path / "partners"
    shutil.copytree(EXAMPLES, partners)
    profile = partners / "holdretail" / "profile.toml"
    profile.write_text(profile.read_text().replace("reject_duplicates = true", "reject_duplicates = false"))
    text = interchange(HOLD, [order_set("0001", "PO-1")]) + interchange(HOLD, [order_set("0001", "PO-1")])
    source = write(tmp_path, "in.edi", text)
    code, out, err = run(capsys, "translate", source, "--partners", str(partners))
    assert (code, err) == (0, "")
    assert len(out.splitlines()) == 2


def test_unknown_senders_are_mapped_with_default_rules_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Onboarding: a first look at a new partner's sample before its profile exists."""
    stranger = ("ZZ", "NEWPARTNER")
    source = write(tmp_path, "in.edi", interchange(stranger, [order_set("0001", "PO-9")]))
    code, out, err = run(capsys, "translate", source, "--partners", EXAMPLES)
    assert code == 1 and out == "" and "no partner profile for sender ZZ/NEWPARTNER" in err
    code, out, err = run(capsys, "translate", source, "--partners", EXAMPLES, "--unknown-senders")
    assert (code, err) == (0, "")
    [line] = out.splitlines()
    document = json.loads(line)
    assert document["partner_id"] is None and document["document"]["po_number"] == "PO-9"


def test_check_receiver_false_turns_the_receiver_check_off_offline_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gateway.toml").write_text(
        '[identity]\ninterchange_qualifier = "01"\ninterchange_id = "123456789"\ngroup_id = "OURS"\n'
        "check_receiver = false\n"
    )
    source = write(tmp_path, "in.edi", interchange(HOLD, [order_set("0001", "PO-1")]))  # to ZZ/GATEWAY
    code, out, err = run(capsys, "translate", source, "--partners", EXAMPLES)
    assert (code, err) == (0, "")
    assert len(out.splitlines()) == 1


def test_all_errors_prints_every_segment_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Five segments in error (a currency code too long, four times, and a bad date): the
    # default line names three and counts the rest; --all-errors names them all.
    bad = order_set("0001", "PO-1").replace(
        "DTM*002*20240315~", "DTM*002*2024031~\n" + "CUR*BYXX*USDD~\n" * 4
    )
    source = write(tmp_path, "in.edi", interchange(HOLD, [bad]))
    code, _, err = run(capsys, "translate", source, "--partners", EXAMPLES)
    assert code == 1
    assert "more segment errors" in err
    code, _, every = run(capsys, "translate", source, "--partners", EXAMPLES, "--all-errors")
    assert code == 1
    assert "more segment errors" not in every
    assert every.count(" at segment ") > err.count(" at segment ") >= 3
    code, _, acked = run(capsys, "ack", source, "--partners", EXAMPLES, "--all-errors", "--now", NOW)
    assert code == 1
    assert acked.count(" at segment ") == every.count(" at segment ")
