"""The partners directory: one folder per trading partner, each holding a
``profile.toml`` (and, optionally, a ``hooks.py``; certificates come with AS2).

:func:`check_partners` lists every problem in a directory (one line each, naming the
file and key) and :func:`load_partners` returns a :class:`PartnerDirectory` or raises
:class:`PartnersError` with the same lines. The directory answers the two questions
the engine asks: a profile by partner id, and a profile by the ISA sender address.

Rules enforced here, beyond each profile's own validation:

- the folder name equals the profile's ``id`` (so URLs, logs and folders agree);
- no ISA address (qualifier + id) belongs to two partners, and none is ours: one
  partner's interchange can never be taken for another's.

``hooks.py`` is compiled to catch syntax errors but never run here; this module
never imports partner code (gateway.hooks loads it where it is used).
Reading happens when a function is called, never at import.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gateway.as2_settings import load_partner_certificates
from gateway.partner_settings import SecretUnavailable, TransportSettings, parse_transport, split_profile
from translators.profile import OurIdentity, PartnerProfile, ProfileError, parse_profile_data

PROFILE_FILE = "profile.toml"
HOOKS_FILE = "hooks.py"


class PartnersError(Exception):
    """The partners directory cannot be used. ``errors`` holds one line per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class PartnerEntry:
    """One loaded partner: its profile and where it came from."""

    profile: PartnerProfile  # the X12 partnership (translators.profile)
    folder: Path
    hooks: Path | None = None  # hooks.py beside the profile, not imported here
    transport: TransportSettings = field(
        default_factory=TransportSettings
    )  # channels (gateway.partner_settings)


@dataclass(slots=True)
class PartnerDirectory:
    """Loaded partner profiles, by id and by ISA sender address (exact match)."""

    entries: dict[str, PartnerEntry] = field(default_factory=dict)
    # Our own ISA addresses (qualifier, id) when loaded with our identity: what the
    # engine checks ISA07/ISA08 against. None: no receiver check.
    receivers: frozenset[tuple[str, str]] | None = None
    _by_address: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)

    def get(self, partner_id: str) -> PartnerProfile | None:
        entry = self.entries.get(partner_id)
        return entry.profile if entry is not None else None

    def entry(self, partner_id: str) -> PartnerEntry | None:
        return self.entries.get(partner_id)

    def transport(self, partner_id: str) -> TransportSettings | None:
        """The partner's channel settings (REST key, delivery), None for an unknown id."""
        entry = self.entries.get(partner_id)
        return entry.transport if entry is not None else None

    def by_interchange(self, qualifier: str, interchange_id: str) -> PartnerProfile | None:
        """The partner whose ISA address is ``qualifier``/``interchange_id`` (ISA05/06,
        padding stripped). Case and every other character must match exactly."""
        partner_id = self._by_address.get((qualifier.strip(), interchange_id.strip()))
        return self.get(partner_id) if partner_id is not None else None

    def __iter__(self) -> Iterator[PartnerProfile]:
        return iter(entry.profile for entry in self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, partner_id: object) -> bool:
        return partner_id in self.entries


def load_partners(directory: Path, *, identity: OurIdentity | None = None) -> PartnerDirectory:
    """Load every partner under ``directory``; raise :class:`PartnersError` listing
    every problem if there is any (a half-loaded directory is never returned)."""
    partners, errors = _scan(Path(directory), identity)
    if errors:
        raise PartnersError(errors)
    return partners


def check_partners(directory: Path, *, identity: OurIdentity | None = None) -> list[str]:
    """Every problem in ``directory``, one line each; empty when all is well."""
    return _scan(Path(directory), identity)[1]


def _scan(directory: Path, identity: OurIdentity | None) -> tuple[PartnerDirectory, list[str]]:
    partners = PartnerDirectory()
    errors: list[str] = []
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "not found"
        return partners, [f"{directory}: partners directory {what}"]

    owners: dict[tuple[str, str], str] = {}
    as2_owners: dict[str, str] = {}
    if identity is not None:
        partners.receivers = frozenset({(identity.interchange_qualifier, identity.interchange_id)})
        owners[(identity.interchange_qualifier, identity.interchange_id)] = (
            "our own identity (gateway settings)"
        )

    for folder in sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        source = folder / PROFILE_FILE
        if not source.is_file():
            errors.append(f"{folder}: no {PROFILE_FILE} in this partner folder")
            continue
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(f"{source}: cannot read: {exc}")
            continue
        try:
            profile, transport = parse_partner(text, source=str(source))
        except ProfileError as exc:
            errors.extend(exc.errors)
            continue
        transport, problem = _resolve_sftp_key(transport, folder, source)
        if problem is not None:
            errors.append(problem)
            continue
        transport, problem = _resolve_delivery_secret(transport, folder, source)
        if problem is not None:
            errors.append(problem)
            continue
        if transport.as2 is not None:
            cert_errors, _ = load_partner_certificates(transport.as2, folder, str(source))
            as2_owner = as2_owners.setdefault(transport.as2.id, folder.name)
            if as2_owner != folder.name:
                cert_errors.append(
                    f"{source}: as2.id: {transport.as2.id!r} is already used by partner {as2_owner!r}"
                )
            if cert_errors:
                errors.extend(cert_errors)
                continue
        if profile.id != folder.name:
            errors.append(f"{source}: id: must equal the folder name {folder.name!r} (got {profile.id!r})")
            continue
        clashes = False
        for address in profile.x12.addresses:
            key = (address.qualifier, address.id)
            owner = owners.get(key)
            if owner is not None:
                errors.append(f"{source}: x12: interchange address {address} is already used by {owner}")
                clashes = True
            else:
                owners[key] = f"partner {profile.id!r} ({source})"
        if clashes:
            continue
        hooks = folder / HOOKS_FILE
        if hooks.is_file():
            problem = _hooks_problem(hooks)
            if problem is not None:
                errors.append(problem)
                continue
        partners.entries[profile.id] = PartnerEntry(
            profile, folder, hooks if hooks.is_file() else None, transport
        )
        for address in profile.x12.addresses:
            partners._by_address[(address.qualifier, address.id)] = profile.id
    return partners, errors


def parse_partner(text: str, *, source: str = PROFILE_FILE) -> tuple[PartnerProfile, TransportSettings]:
    """One profile file: its X12 partnership and its transport settings. Raises
    ProfileError listing the problems of both halves, in file order of the keys."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError([f"{source}: not valid TOML: {exc}"]) from None
    x12_part, transport_part = split_profile(data)
    errors: list[str] = []
    profile: PartnerProfile | None = None
    transport: TransportSettings | None = None
    try:
        profile = parse_profile_data(x12_part, source=source)
    except ProfileError as exc:
        errors += exc.errors
    try:
        transport = parse_transport(transport_part, source=source)
    except ProfileError as exc:
        errors += exc.errors
    if errors or profile is None or transport is None:
        raise ProfileError(errors)
    return profile, transport


def _resolve_sftp_key(
    transport: TransportSettings, folder: Path, source: Path
) -> tuple[TransportSettings, str | None]:
    """A polled partner's ``private_key`` made absolute (relative to its folder) and
    read once, so a missing or unreadable key stops the load, not the first poll; its
    ``password_file`` made absolute and the password's reference read once the same way
    (only the reference is kept; each login reads the secret again)."""
    sftp = transport.sftp
    if sftp is None or sftp.mode != "poll":
        return transport, None
    from gateway.transports.sftp_keys import SshKeyError, load_private_key

    update: dict[str, str] = {}
    if sftp.private_key is not None:
        path = (folder / sftp.private_key).resolve()
        try:
            load_private_key(path)
        except SshKeyError as exc:
            return transport, f"{source}: sftp.private_key: {exc}"
        update["private_key"] = str(path)
    if sftp.password_file is not None:
        update["password_file"] = str((folder / sftp.password_file).resolve())
    sftp = sftp.model_copy(update=update)
    if sftp.has_password:
        try:
            sftp.secret_value()
        except SecretUnavailable as exc:
            return transport, f"{source}: sftp.{exc}"
    return transport.model_copy(update={"sftp": sftp}), None


def _resolve_delivery_secret(
    transport: TransportSettings, folder: Path, source: Path
) -> tuple[TransportSettings, str | None]:
    """A REST delivery's secret reference: a ``*_file`` made absolute (relative to the
    partner folder), and the variable or file read once, so a missing secret stops
    the load (and ``partners check``), not the first delivery. Only the reference is
    kept; the transport reads the secret again at each send."""
    delivery = transport.delivery
    if delivery.channel != "rest" or delivery.auth is None:
        return transport, None
    auth = delivery.auth
    key, where = auth.reference()
    if key.endswith("_file"):
        auth = auth.model_copy(update={key: str((folder / where).resolve())})
    try:
        auth.secret_value()
    except SecretUnavailable as exc:
        return transport, f"{source}: delivery.auth.{exc}"
    return transport.model_copy(update={"delivery": delivery.model_copy(update={"auth": auth})}), None


def _hooks_problem(path: Path) -> str | None:
    """A hooks file that does not even compile is reported like a broken profile
    (and so never replaces a working partner on reload). Compiled, never run: the
    functions are loaded where they are used (gateway.hooks)."""
    try:
        compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        return f"{path}:{exc.lineno or 0}: hooks.py does not compile: {exc.msg}"
    except (OSError, ValueError) as exc:
        return f"{path}: cannot read hooks.py: {exc}"
    return None
