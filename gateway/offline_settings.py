"""What the offline commands (`gateway translate`, `ack`, `render`) read from the
settings: our identity, the receiver check and the partners folder, without building
the service's settings models when nothing configures them.

With no configuration file in use (no ``--config``, no ``$GATEWAY_CONFIG``, no
``./gateway.toml``) and no ``GATEWAY_*`` variable setting a key, every setting is
its default: :func:`unconfigured` then answers with those defaults and the command
does not import :mod:`gateway.config` (its ~15 pydantic models, most of them for the
service, cost a start-up that only needs three values). Otherwise the command calls
:func:`gateway.config.load_settings`, which validates the whole file and
environment as the service does and fails the same way.

The defaults, the names of the environment and :class:`ConfigError` live here and
:mod:`gateway.config` takes them from here, so the two cannot drift.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from translators.profile import OurIdentity

ENV_PREFIX = "GATEWAY_"
# GATEWAY_* variables that are not settings: the file to read, and the test suite's own
# (GATEWAY_TEST_DATABASE_URL, GATEWAY_TEST_ARTEFACTS, ...: docs/console.md, README).
NOT_SETTINGS = frozenset({"GATEWAY_CONFIG"})
NOT_SETTINGS_PREFIX = "GATEWAY_TEST_"

# [identity] and partners_dir defaults (gateway.config.IdentitySettings, Settings)
DEFAULT_INTERCHANGE_QUALIFIER = "ZZ"
DEFAULT_INTERCHANGE_ID = "GATEWAY"
DEFAULT_GROUP_ID = "GATEWAY"
DEFAULT_PARTNERS_DIR = Path("partners")


class ConfigError(Exception):
    """The configuration cannot be used; the message says which key and why."""


def default_config_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """``$GATEWAY_CONFIG``, else ``./gateway.toml`` when it exists, else None (defaults)."""
    env = os.environ if environ is None else environ
    if env.get("GATEWAY_CONFIG"):
        return Path(env["GATEWAY_CONFIG"])
    local = Path("gateway.toml")
    return local if local.is_file() else None


def is_setting(name: str) -> bool:
    """Whether the environment variable ``name`` sets a key of the settings."""
    return (
        name.startswith(ENV_PREFIX) and name not in NOT_SETTINGS and not name.startswith(NOT_SETTINGS_PREFIX)
    )


@dataclass(frozen=True, slots=True)
class DefaultIdentity:
    """``[identity]`` at its defaults, shaped as :class:`gateway.config.IdentitySettings`
    is read by the offline commands (``ours``, ``check_receiver``)."""

    ours: OurIdentity
    check_receiver: bool = True


@dataclass(frozen=True, slots=True)
class DefaultSettings:
    """The settings nothing configured, as far as the offline commands read them."""

    identity: DefaultIdentity
    partners_dir: Path = field(default=DEFAULT_PARTNERS_DIR)


def unconfigured(config: Path | None, environ: Mapping[str, str] | None = None) -> DefaultSettings | None:
    """The settings defaults when nothing configures them (no ``config`` given, no
    default file, no ``GATEWAY_*`` setting variable in ``environ``), else None: the
    caller then loads them with :func:`gateway.config.load_settings`."""
    env = os.environ if environ is None else environ
    if config is not None or default_config_path(env) is not None or any(is_setting(name) for name in env):
        return None
    ours = OurIdentity(
        interchange_qualifier=DEFAULT_INTERCHANGE_QUALIFIER,
        interchange_id=DEFAULT_INTERCHANGE_ID,
        group_id=DEFAULT_GROUP_ID,
    )
    return DefaultSettings(identity=DefaultIdentity(ours=ours))
