"""Messages that thread workers post back to the UI thread.

A worker collects data from ``core`` and draws nothing; the screen's ``@on`` handler renders.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message


class Loaded(Message):
    """Base for "a worker fetched this"; ``what`` names the payload for handlers that share."""

    def __init__(self, payload: Any) -> None:
        super().__init__()
        self.payload = payload


# ---- registry ------------------------------------------------------------------------------


class VersionsLoaded(Loaded):
    """Every registered version (list of ModelMetadata)."""


class VersionDetailLoaded(Loaded):
    """(ModelMetadata, list[StatusChange]) for the highlighted version."""


class ComparisonLoaded(Loaded):
    """The registry's comparison dict for the two marked versions."""


# ---- experiments ---------------------------------------------------------------------------


class ExperimentsLoaded(Loaded):
    """list[(ExperimentInfo, progress units per variant on the primary metric)]."""


class ExperimentDetailLoaded(Loaded):
    """{"info", "analysis", "history"} for the selected experiment."""


# ---- deployments ---------------------------------------------------------------------------


class DeploymentsLoaded(Loaded):
    """(list[(DeploymentInfo, PerformanceMetrics | None)], {deployment id: running canary})."""


class LiveSample(Loaded):
    """{"info", "metrics", "history", "canary"} for the live panel."""


# ---- events --------------------------------------------------------------------------------


class FeedLoaded(Loaded):
    """{"events": [...], "audit": [...], "initial": bool}, oldest first."""


# ---- mutations -----------------------------------------------------------------------------


class ActionDone(Message):
    """A mutation succeeded; the screen notifies and reloads."""

    def __init__(self, text: str, select: str | None = None) -> None:
        super().__init__()
        self.text = text
        self.select = select  # a row key to move the cursor to after the reload
