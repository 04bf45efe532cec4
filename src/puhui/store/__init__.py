"""Persistence: SQLAlchemy 2 models, repositories and the unit of work; Alembic migrations.

SQLite (WAL) is the embedded default; PostgreSQL is the production database. The same models
and migrations serve both.
"""
