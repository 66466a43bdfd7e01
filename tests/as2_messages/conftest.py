"""Key pairs shared by the AS2 tests (RSA-2048, generated once per session)."""

from __future__ import annotations

import pytest

from as2 import KeyPair, generate_self_signed


@pytest.fixture(scope="session")
def us() -> KeyPair:
    return generate_self_signed("gateway-test")


@pytest.fixture(scope="session")
def them() -> KeyPair:
    return generate_self_signed("partner-test")


@pytest.fixture(scope="session")
def stranger() -> KeyPair:
    return generate_self_signed("stranger")
