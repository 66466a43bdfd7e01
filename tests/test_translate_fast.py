"""`gateway translate`'s fast path: its JSON Lines are byte for byte what the CLI
wrote before it (every set's ``model_dump_json``, only documents of sets whose
group and interchange stand), on one core and on several, and the file is cut
between interchanges only where one process would see the same thing."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.generate import generate
from gateway.cli import main
from gateway.config import load_settings
from gateway.partners import PartnerDirectory, load_partners
from gateway.translate_cli import TranslateOptions, plan_chunks, translated, write_documents
from translators.engine import TranslatedInterchange, TranslatedSet, translate

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "partners"
GOLDEN = sorted((ROOT / "fixtures" / "engine").glob("*.edi"))


def todays_output(source: bytes, partners: PartnerDirectory, *, reject_duplicates: bool = True) -> bytes:
    """What `gateway translate` printed before the fast path: pydantic's JSON of
    every document whose set, group and interchange were accepted, in input order."""
    lines: list[str] = []
    waiting: list[TranslatedSet] = []
    for item in translate(source, partners=partners, reject_duplicates=reject_duplicates):
        if isinstance(item, TranslatedInterchange):
            lines += [t.document.model_dump_json() + "\n" for t in waiting if item.rejection_of(t) is None]  # type: ignore[union-attr]
            waiting = []
        elif item.document is not None:
            waiting.append(item)
    return "".join(lines).encode()


def example_partners() -> PartnerDirectory:
    return load_partners(EXAMPLES, identity=load_settings(None, environ={}).identity.ours)


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_translate_prints_todays_bytes_for_every_golden(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    monkeypatch.chdir(tmp_path)  # no gateway.toml: the embedded defaults, as the reference
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    code = main(["translate", str(path), "--partners", str(EXAMPLES), "--jobs", "1"])
    out, _err = capsysbinary.readouterr()
    assert code in (0, 1)
    assert out == todays_output(path.read_bytes(), example_partners())


def chunked(
    data: bytes, chunks: list[tuple[int, int]], partners: PartnerDirectory
) -> tuple[bytes, list[str]]:
    """What the pool's workers write, one chunk after the other, in this process."""
    out = io.BytesIO()
    errors: list[str] = []
    options = TranslateOptions(name="test")
    for start, end in chunks:
        write_documents(translated(data[start:end], options, partners), partners, out, errors.append, False)
    return out.getvalue(), errors


def serial(data: bytes, partners: PartnerDirectory) -> tuple[bytes, list[str]]:
    return chunked(data, [(0, len(data))], partners)


def interchanges(count: int, *, sender: str = "HOLDRETAIL", first: int = 1) -> bytes:
    """Copies of a golden interchange, each with its own ISA13/IEA02."""
    template = (ROOT / "fixtures" / "engine" / "850_4010_holdretail_valid.edi").read_bytes()
    control = template[90:99]
    parts = []
    for n in range(first, first + count):
        number = b"%09d" % n
        parts.append(template.replace(control, number).replace(b"HOLDRETAIL     ", sender.encode().ljust(15)))
    return b"".join(parts)


def test_cuts_between_well_formed_interchanges_give_the_same_output() -> None:
    partners = example_partners()
    data = interchanges(6)
    chunks = plan_chunks(data, 2, min_chunk=1)
    assert chunks is not None and len(chunks) == 6
    assert chunked(data, chunks, partners) == serial(data, partners)
    assert serial(data, partners)[0].count(b"\n") == 12  # two orders in each


def test_no_cut_where_one_process_would_see_something_else() -> None:
    good = interchanges(2)
    second = good.index(b"ISA", 10)
    # text between interchanges belongs to the next one's report
    stray = good[:second] + b"NOT X12 AT ALL~\n" + good[second:]
    assert plan_chunks(stray, 2, min_chunk=1) == [(0, len(stray))]
    # an interchange without its IEA ends where the next ISA begins
    iea = good.rindex(b"IEA", 0, second)
    missing = good[:iea] + good[second:]
    assert plan_chunks(missing, 2, min_chunk=1) == [(0, len(missing))]
    # the reader switches to Latin-1 for good at the first chunk that is not UTF-8
    assert plan_chunks(good.replace(b"CAF\xc3\x89", b"CAF\xc9"), 2, min_chunk=1) is None
    # a repeated sender and ISA13 is TA1 025 only if the whole file is seen
    assert plan_chunks(good[:second] * 2, 2, min_chunk=1) is None
    assert plan_chunks(good[:second] * 2, 2, min_chunk=1, check_duplicates=False) is not None
    # something that may be an ISA but is not a fixed 106-character one
    odd = good[:second] + b"ISA*00*short~" + good[second:]
    assert plan_chunks(odd, 2, min_chunk=1) is None
    # "ISA" inside a word is text
    worded = good.replace(b"CAF\xc3\x89 VERDE", b"VISA CARDS")
    assert plan_chunks(worded, 2, min_chunk=1) is not None
    partners = example_partners()
    for data in (stray, missing):
        assert chunked(data, [(0, len(data))], partners) == serial(data, partners)


def test_blank_lines_and_newline_terminators_between_interchanges() -> None:
    newline = (ROOT / "fixtures" / "engine" / "850_4010_newline_terminator.edi").read_bytes()
    data = (
        newline
        + b"\r\n\r\n"
        + interchanges(1, first=7)
        + b"\n\n"
        + newline.replace(b"000000106", b"000000099")
    )
    chunks = plan_chunks(data, 2, min_chunk=1)
    assert chunks is not None and len(chunks) == 3
    partners = example_partners()
    assert chunked(data, chunks, partners) == serial(data, partners)


def test_jobs_2_on_a_big_file_prints_what_one_process_prints(tmp_path: Path) -> None:
    """Real processes on a generated file above the size threshold."""
    partners = tmp_path / "partners" / "senderco"
    partners.mkdir(parents=True)
    (partners / "profile.toml").write_text(
        'id = "senderco"\nname = "Sender Co"\n[x12]\ninterchange_qualifier = "ZZ"\n'
        'interchange_id = "SENDERCO"\ngroup_id = "SENDERCO"\nversion = "004010"\n'
    )
    source = tmp_path / "850.edi"
    with source.open("wb") as out:
        generate("850", 5 << 20, out)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}

    def run(jobs: str) -> bytes:
        command = ["translate", str(source), "--partners", str(tmp_path / "partners"), "--jobs", jobs]
        done = subprocess.run(
            [sys.executable, "-m", "gateway", *command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    one, two = run("1"), run("2")
    assert one.count(b"\n") > 2000
    assert two == one


def test_jobs_2_with_rejected_sets_in_later_chunks_says_what_one_process_says(tmp_path: Path) -> None:
    """Workers write their output to standard output themselves, in turn: sets
    rejected here and there leave the same lines out, the same messages in the same
    order and the same exit status as one process, to a pipe and to a file."""
    partners = tmp_path / "partners" / "senderco"
    partners.mkdir(parents=True)
    (partners / "profile.toml").write_text(
        'id = "senderco"\nname = "Sender Co"\n[x12]\ninterchange_qualifier = "ZZ"\n'
        'interchange_id = "SENDERCO"\ngroup_id = "SENDERCO"\nversion = "004010"\n'
    )
    buffer = io.BytesIO()
    generate("850", 5 << 20, buffer)
    data = buffer.getvalue()
    # an undefined segment after the BEG of sets at a third and at two thirds of the file
    for third in (1, 2):
        at = data.index(b"BEG*", len(data) * third // 3)
        end = data.index(b"~", at) + 1
        data = data[:end] + b"ZZZ*1~" + data[end:]
    source = tmp_path / "850.edi"
    source.write_bytes(data)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}

    def run(jobs: str, to_file: bool) -> tuple[int, bytes, bytes]:
        command = ["translate", str(source), "--partners", str(tmp_path / "partners"), "--jobs", jobs]
        target = tmp_path / f"out-{jobs}-{to_file}.jsonl"
        with target.open("wb") as file:
            done = subprocess.run(
                [sys.executable, "-m", "gateway", *command],
                cwd=tmp_path,
                env=env,
                stdout=file if to_file else subprocess.PIPE,
                stderr=subprocess.PIPE,
                check=False,
            )
        return done.returncode, target.read_bytes() if to_file else done.stdout, done.stderr

    one = run("1", to_file=False)
    assert one[0] == 1
    assert one[2].count(b"ZZZ") == 2, one[2]
    assert one[1].count(b"\n") > 2000
    assert run("2", to_file=False) == one
    assert run("2", to_file=True) == one


def test_translate_starts_without_the_service_stack(tmp_path: Path) -> None:
    """What start-up costs most: none of it is imported to translate a file."""
    source = ROOT / "fixtures" / "engine" / "850_4010_holdretail_valid.edi"
    probe = (
        "import sys\n"
        "from gateway.cli import main\n"
        f"code = main(['translate', {str(source)!r}, '--partners', {str(EXAMPLES)!r}])\n"
        "heavy = {'sqlalchemy', 'aiohttp', 'cryptography', 'asn1crypto', 'as2', 'paramiko', 'alembic',\n"
        "         'asyncio', 'multiprocessing', 'importlib_metadata'}\n"
        "heavy = heavy & {m.split('.')[0] for m in sys.modules}\n"
        "heavy |= {'gateway.config'} & set(sys.modules)  # nothing configured: the defaults\n"
        "print(code, sorted(heavy), file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    assert done.stderr.strip() == "0 []"
    assert done.stdout.count("\n") == 2


def test_translate_builds_only_the_models_it_uses(tmp_path: Path) -> None:
    """Models are built on first use: translating an 850 builds the order's validator,
    never the other kinds' nor the wrapper's (which would build every kind's)."""
    source = ROOT / "fixtures" / "engine" / "850_4010_holdretail_valid.edi"
    probe = (
        "import sys\n"
        "from gateway.cli import main\n"
        f"code = main(['translate', {str(source)!r}, '--partners', {str(EXAMPLES)!r}])\n"
        "from translators.canonical import CanonicalDocument, Invoice, Order, OrderAck, Shipment\n"
        "models = (CanonicalDocument, Invoice, Order, OrderAck, Shipment)\n"
        "built = [m.__name__ for m in models if m.__pydantic_complete__]\n"
        "print(code, built, file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    assert done.stderr.strip() == "0 ['Order']"
    assert done.stdout.count("\n") == 2


def test_version_is_printed_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    out, err = capsys.readouterr()
    assert out.startswith("gateway ") and err == ""
