"""Where NightScan keeps its state. Every setting has a default and an environment variable.

Precedence: explicit argument > environment > ``<home>/config.toml`` > default.
"""

from __future__ import annotations

import getpass
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ValidationError

BLOB_STORES = ("database", "local")


def default_home() -> Path:
    """``$NIGHTSCAN_HOME``, else ``$XDG_DATA_HOME/nightscan``, else ``~/.local/share/nightscan``."""
    if env := os.environ.get("NIGHTSCAN_HOME"):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg).expanduser() / "nightscan"


def default_actor() -> str:
    """Who the audit log names: ``$NIGHTSCAN_ACTOR`` or the login name."""
    if actor := os.environ.get("NIGHTSCAN_ACTOR"):
        return actor
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


def default_blob_store(database_url: str) -> str:
    """``database`` on PostgreSQL (weights reach every host through the database), else
    ``local`` (the files under the home, as a single host has always kept them)."""
    return "database" if database_url.startswith("postgresql") else "local"


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    actor: str = field(default_factory=default_actor)
    # Where version weights live: "database" (blobs in the database, a verified cache under
    # each home) or "local" (files under the home only). $NIGHTSCAN_BLOB_STORE or blob_store in
    # config.toml; default: default_blob_store(database_url).
    blob_store: str = "local"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @classmethod
    def load(
        cls, home: str | os.PathLike | None = None, database_url: str | None = None
    ) -> Settings:
        home_path = Path(home).expanduser() if home else default_home()
        file_values: dict = {}
        config_file = home_path / "config.toml"
        if config_file.is_file():
            with config_file.open("rb") as fh:
                file_values = tomllib.load(fh)
        url = (
            database_url
            or os.environ.get("NIGHTSCAN_DATABASE_URL")
            or file_values.get("database_url")
            or f"sqlite:///{home_path / 'nightscan.db'}"
        )
        actor = os.environ.get("NIGHTSCAN_ACTOR") or file_values.get("actor") or default_actor()
        blob_store = (
            os.environ.get("NIGHTSCAN_BLOB_STORE")
            or file_values.get("blob_store")
            or default_blob_store(url)
        )
        if blob_store not in BLOB_STORES:
            raise ValidationError(
                f"blob_store must be one of {', '.join(BLOB_STORES)}, not {blob_store!r} "
                "(NIGHTSCAN_BLOB_STORE or blob_store in config.toml)"
            )
        return cls(home=home_path, database_url=url, actor=actor, blob_store=blob_store)
