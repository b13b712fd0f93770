"""Persistence: SQLAlchemy 2 models, repositories and Alembic migrations.

Repositories receive a session and never make one; sessions are opened at the edge through
:class:`storage.uow.SqlUnitOfWork`, one per update or job.
"""
