"""A throw-away PostgreSQL database for a benchmark run, dropped afterwards.

Shared by the benchmark scripts (run as ``python benchmarks/bench_*.py``, so this folder is on
``sys.path``). The server is the local one the test suite uses (``PUHUI_TEST_POSTGRES_URL``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_ADMIN = os.environ.get("PUHUI_TEST_POSTGRES_URL", "postgresql+pg8000://postgres@127.0.0.1/test")


def postgres_scratch() -> tuple[str, Callable[[], None]] | None:
    """A fresh database's URL and the function that drops it; None when PostgreSQL is down."""
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text("select 1"))
    except Exception as exc:
        print(f"PostgreSQL unreachable, skipped: {exc}")
        admin.dispose()
        return None
    name = f"puhui_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False), drop
