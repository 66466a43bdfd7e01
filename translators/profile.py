"""Partner profiles: one trading partner's identity, X12 conventions and mapping
overrides (the X12 partnership), parsed from ``partners/<id>/profile.toml``. The
file's transport tables (``[rest]``, ``[delivery]``, ...) are the service's and are
parsed by ``gateway.partner_settings``; this module never sees them.

:func:`parse_profile` turns TOML text into a frozen :class:`PartnerProfile` or raises
:class:`ProfileError` listing every problem as ``file: dotted.key: what is wrong``,
so a person onboarding a partner can fix the file without reading a traceback.
Unknown keys are errors: a typo must never silently fall back to a default.

:class:`OurIdentity` is who *we* are in ISA/GS; it lives in the gateway settings,
never in a partner file.

This module is pure: text in, model out. It never opens files, reads settings or
imports ``gateway``. See docs/profile-reference.md for every key.
"""

# No postponed annotations here: pydantic evaluates every field annotation, and
# from strings it compiles each one first (docs/performance.md, issue 10 start-up).
import re
import tomllib
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    model_validator,
)

from translators.mapping.rules import MappingRules
from translators.x12.leniency import Action, Check
from translators.x12.model import Delimiters

__all__ = [
    "DelimiterSettings",
    "InterchangeAddress",
    "OurIdentity",
    "PartnerProfile",
    "ProfileError",
    "ValidationSettings",
    "X12Settings",
    "format_validation_error",
    "parse_identity",
    "parse_profile",
    "parse_profile_data",
]

# 00VRR0 from 003010 to 008070: the releases whose envelopes (ISA/GS) we read and
# write. Whether a *transaction set* of that version is understood is the grammar's
# business, not the profile's.
_VERSION = re.compile(r"00[3-8]0[1-7]0")
_PARTNER_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_QUALIFIER = re.compile(r"[0-9A-Z]{2}")
_INDUSTRY_ID = re.compile(r"[0-9A-Z]{0,6}")
# X12 basic and extended character sets are printable ASCII; control characters are
# what delimiters are made of, so they never belong in an identifier.
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_SUFFIXES = ("", "\n", "\r\n")
REPETITION_FROM = "004020"  # ISA11 became the repetition separator in 00402


class ProfileError(ValueError):
    """A profile cannot be used. ``errors`` holds one line per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


# --------------------------------------------------------------------------- field checks


def _partner_id(value: str) -> str:
    if not _PARTNER_ID.fullmatch(value):
        raise ValueError(
            "must be 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit "
            f"(it is also the folder name) (got {value!r})"
        )
    return value


def _qualifier(value: str) -> str:
    if not _QUALIFIER.fullmatch(value):
        raise ValueError(
            f"must be exactly 2 characters, digits or uppercase letters, e.g. ZZ or 01 (got {value!r})"
        )
    return value


def _envelope_id(limit: int) -> Any:
    def check(value: str) -> str:
        if not value or not value.strip():
            raise ValueError("must not be empty")
        if value != value.strip():
            raise ValueError(
                f"must not start or end with spaces (padding is added when writing) (got {value!r})"
            )
        if len(value) > limit:
            raise ValueError(f"must be at most {limit} characters (got {value!r}, {len(value)} characters)")
        if not _PRINTABLE.fullmatch(value):
            raise ValueError(f"must be printable ASCII (got {value!r})")
        return value

    return AfterValidator(check)


def _version(value: str) -> str:
    if not _VERSION.fullmatch(value):
        raise ValueError(
            f"must be a six-digit X12 version/release such as 004010 or 005010, 003010 to 008070 (got {value!r})"
        )
    return value


def _industry_id(value: str) -> str:
    if not _INDUSTRY_ID.fullmatch(value):
        raise ValueError(f"must be up to 6 uppercase letters or digits, e.g. VICS or UCS (got {value!r})")
    return value


def _delimiter(value: str) -> str:
    if len(value) != 1:
        raise ValueError(f"must be exactly one character (got {value!r})")
    if value.isalnum() or value == " ":
        raise ValueError(f"must not be a letter, digit or space (got {value!r})")
    return value


def _suffix(value: str) -> str:
    if value not in _SUFFIXES:
        raise ValueError(f'must be "", "\\n" or "\\r\\n" (got {value!r})')
    return value


PartnerId = Annotated[str, AfterValidator(_partner_id)]
Qualifier = Annotated[str, AfterValidator(_qualifier)]
InterchangeId = Annotated[str, _envelope_id(15)]
GroupId = Annotated[str, _envelope_id(15)]
Version = Annotated[str, AfterValidator(_version)]
IndustryId = Annotated[str, AfterValidator(_industry_id)]
Delimiter = Annotated[str, AfterValidator(_delimiter)]
Suffix = Annotated[str, AfterValidator(_suffix)]


class _Strict(BaseModel):
    # built when a profile is first validated, as one validator (see CanonicalModel)
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


# --------------------------------------------------------------------------- identities


class InterchangeAddress(_Strict):
    """An ISA address: qualifier (ISA05/07) and id (ISA06/08, unpadded)."""

    qualifier: Qualifier
    id: InterchangeId

    def __str__(self) -> str:
        return f"{self.qualifier}/{self.id}"


class OurIdentity(_Strict):
    """Who we are in the envelopes we write (sender) and expect (receiver)."""

    interchange_qualifier: Qualifier
    interchange_id: InterchangeId
    group_id: GroupId

    @property
    def address(self) -> InterchangeAddress:
        return InterchangeAddress(qualifier=self.interchange_qualifier, id=self.interchange_id)


# --------------------------------------------------------------------------- sections


class DelimiterSettings(_Strict):
    """Separators for interchanges we write to this partner. ``repetition`` unset
    means ``^`` from 004020 on and none before (ISA11 is then ``U``)."""

    element: Delimiter = "*"
    component: Delimiter = ">"
    repetition: Delimiter | None = None
    segment: Delimiter = "~"
    suffix: Suffix = "\n"


ValidationAction = Literal["reject", "note", "ignore"]


class ValidationSettings(_Strict):
    """``[x12.validation]``: per check, what a finding in this partner's inbound sets
    does. ``reject`` (default): AK5 R. ``note``: the set is accepted, the 997/999
    says E with the same AK3/AK4 detail, the document lists it in ``warnings``.
    ``ignore``: dropped. ``line_count`` is the CTT01 check (see also
    ``[mapping.order] line_count``); the other keys are ``translators.x12.leniency.Check``.
    """

    element_length: ValidationAction = "reject"
    code_values: ValidationAction = "reject"
    conditional: ValidationAction = "reject"
    segment_order: ValidationAction = "reject"
    unknown_segments: ValidationAction = "reject"
    line_count: ValidationAction = "reject"

    def leniency(self) -> dict[Check, Action]:
        """The grammar checks that are not ``reject``, for ``validate_set``."""
        return {
            check: Action(getattr(self, check.value))
            for check in Check
            if getattr(self, check.value) != "reject"
        }


class X12Settings(_Strict):
    """The partner's X12 envelope conventions, both directions."""

    interchange_qualifier: Qualifier
    interchange_id: InterchangeId
    group_id: GroupId
    version: Version
    industry_id: IndustryId = ""  # appended to version in the GS08 we write: 004010 + VICS
    # Extra ISA addresses the partner sends from (a test id, a second division).
    # Each is matched exactly, like the main one.
    additional_ids: tuple[InterchangeAddress, ...] = ()
    # ISA receivers (ISA07/08) this partner may address us by besides the gateway's
    # own identity: a DUNS number, the id of an older system. Anything else is an
    # interchange sent to the wrong company and is rejected (TA1 009).
    our_ids: tuple[InterchangeAddress, ...] = ()
    functional_ack: Literal["auto", "997", "999", "none"] = "auto"
    ta1: Literal["always", "on-error", "never"] = "on-error"
    # When our TA1/997/999 may leave: "erp" once every document is with the ERP (a
    # positive 997 means "we have it"); "translation" as soon as the message is
    # durably translated (partners that resend when the 997 is late).
    ack_after: Literal["translation", "erp"] = "erp"
    usage: Literal["P", "T"] = "P"  # ISA15 we write
    request_ta1: StrictBool = False  # ISA14 we write
    reject_duplicates: StrictBool = True
    duplicate_window_days: float | None = Field(default=None, ge=0)  # None: the gateway's setting
    expect_functional_ack: StrictBool = True  # track their 997/999 to our outbound sets
    ack_overdue_hours: float = Field(default=24.0, gt=0)
    delimiters: DelimiterSettings = DelimiterSettings.model_construct()
    validation: ValidationSettings = ValidationSettings.model_construct()

    @property
    def address(self) -> InterchangeAddress:
        return InterchangeAddress(qualifier=self.interchange_qualifier, id=self.interchange_id)

    @property
    def addresses(self) -> tuple[InterchangeAddress, ...]:
        """Every ISA address this partner sends from, the main one first."""
        return (self.address, *self.additional_ids)

    @property
    def interchange_version(self) -> str:
        """ISA12 we write: 004010 -> 00401."""
        return self.version[:5]

    @property
    def group_version(self) -> str:
        """GS08 we write: version plus industry identifier."""
        return self.version + self.industry_id

    @property
    def outbound_delimiters(self) -> Delimiters:
        d = self.delimiters
        repetition = d.repetition
        if repetition is None and self.version >= REPETITION_FROM:
            repetition = "^"
        return Delimiters(
            element=d.element,
            component=d.component,
            repetition=repetition,
            segment=d.segment,
            suffix=d.suffix,
        )

    @model_validator(mode="after")
    def _delimiters_fit(self) -> "X12Settings":
        d = self.outbound_delimiters
        if self.delimiters.repetition is not None and self.version < REPETITION_FROM:
            raise ValueError(
                f"delimiters.repetition: version {self.version} has no repetition separator "
                f"(ISA11 is the standards id 'U' before {REPETITION_FROM}); remove the key"
            )
        chosen = [("element", d.element), ("component", d.component), ("segment", d.segment)]
        if d.repetition is not None:
            chosen.append(("repetition", d.repetition))
        seen: dict[str, str] = {}
        for name, char in chosen:
            if char in seen:
                raise ValueError(f"delimiters.{name}: {char!r} is already the {seen[char]} separator")
            seen[char] = name
        for key, value in (("interchange_id", self.interchange_id), ("group_id", self.group_id)):
            for char, name in seen.items():
                if char in value:
                    raise ValueError(f"{key}: contains the {name} separator {char!r} (got {value!r})")
        return self


class PartnerProfile(_Strict):
    """Everything the gateway knows about one trading partner."""

    id: PartnerId
    name: str = Field(min_length=1, max_length=200)
    x12: X12Settings
    mapping: MappingRules = MappingRules.model_construct()


# --------------------------------------------------------------------------- parsing


def parse_profile(text: str, *, source: str = "profile.toml") -> PartnerProfile:
    """Parse profile TOML. Raises :class:`ProfileError` with one line per problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError([f"{source}: not valid TOML: {exc}"]) from None
    return parse_profile_data(data, source=source)


def parse_profile_data(data: dict[str, Any], *, source: str = "profile.toml") -> PartnerProfile:
    """Validate an already parsed profile table (the service takes its transport
    tables out first: they are not the X12 partnership's business)."""
    try:
        return PartnerProfile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(format_validation_error(exc, source=source)) from None


def parse_identity(data: dict[str, Any], *, source: str = "identity") -> OurIdentity:
    """Validate our identity from a mapping (e.g. the ``[identity]`` settings table)."""
    try:
        return OurIdentity.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(format_validation_error(exc, source=source)) from None


_TYPE_NAMES = {
    "string_type": "a string",
    "bool_type": "true or false",
    "float_type": "a number",
    "int_type": "an integer",
    "dict_type": "a table",
    "model_type": "a table",
    "tuple_type": "an array",
    "list_type": "an array",
}


def format_validation_error(exc: ValidationError, *, source: str) -> list[str]:
    """One ``source: dotted.key: message`` line per pydantic error, worded for people."""
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        key = _dotted(err["loc"])
        message = _describe(err)
        # Model-level checks name their own sub-key ("delimiters.repetition: ...").
        if err["type"] == "value_error" and re.match(r"[a-z_.]+: ", message):
            sub, _, message = message.partition(": ")
            key = f"{key}.{sub}" if key else sub
        lines.append(f"{source}: {key or '(top level)'}: {message}")
    return lines


def _dotted(loc: tuple[int | str, ...]) -> str:
    """``("x12", "additional_ids", 1, "id")`` -> ``x12.additional_ids[2].id``: array
    entries are counted from 1, as a person counts them in the file."""
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part + 1}]"
        else:
            key += f".{part}" if key else part
    return key


def _describe(err: Any) -> str:
    kind = err["type"]
    value = err.get("input")
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key (see docs/profile-reference.md for the keys a profile may hold)"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    if kind == "literal_error":
        return f"must be one of {err['ctx']['expected']} (got {value!r})"
    if kind in _TYPE_NAMES:
        return f"must be {_TYPE_NAMES[kind]} (got {value!r})"
    if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        return f"{err['msg'][0].lower()}{err['msg'][1:]} (got {value!r})"
    if kind in {"string_too_short", "string_too_long"}:
        return f"{err['msg'][0].lower()}{err['msg'][1:]} (got {value!r})"
    return f"{err['msg']} (got {value!r})"
