"""Real audit databases for tests: a SQLite file, and a fresh database on a real PostgreSQL server.

tests/run.sh starts PostgreSQL (Debian's package) and exports GUARD_TEST_POSTGRES_URL, a URL of a
role allowed to create databases. Without it the PostgreSQL half of the suite errors instead of
quietly skipping, so a green run always means both back-ends were exercised.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

BACKENDS = ("sqlite", "postgresql")
ENV_VAR = "GUARD_TEST_POSTGRES_URL"


def postgres_admin_url() -> str:
    url = os.environ.get(ENV_VAR, "")
    if not url:
        pytest.fail(f"{ENV_VAR} is not set: run the suite with tests/run.sh, which starts PostgreSQL "
                    f"(or export {ENV_VAR}=postgresql://USER:PASSWORD@127.0.0.1:5432/postgres)")
    return url


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty database for one test (or one session); dropped afterwards."""
    admin = make_url(postgres_admin_url()).set(drivername="postgresql+psycopg")
    name = "guard_test_" + secrets.token_hex(6)
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_admin_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@contextmanager
def audit_database(backend: str, directory: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'audit.db'}"
    else:
        with postgres_database() as url:
            yield url
