"""Apply the Alembic migrations on start. The common case (schema already at head) costs one
small query and never imports Alembic."""

from __future__ import annotations

from sqlalchemy import text

from data.database import Database
from data.schema_version import MIGRATIONS_DIR, head_revision

__all__ = ["MIGRATIONS_DIR", "current_revision", "head_revision", "upgrade"]


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:  # no table yet: a new database
            return None


def upgrade(db: Database) -> None:
    if current_revision(db) == head_revision():
        return
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.write_engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        conn.commit()
