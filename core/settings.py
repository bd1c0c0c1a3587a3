"""Where NightScan keeps its state. Every setting has a default and an environment variable.

Precedence: explicit argument > environment > ``<home>/config.toml`` > default.
"""

from __future__ import annotations

import getpass
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


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


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    actor: str = field(default_factory=default_actor)

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
        return cls(home=home_path, database_url=url, actor=actor)
