"""Messages that thread workers post back to the UI thread, each with a typed payload.

A worker collects data from ``core`` and draws nothing; the screen's ``@on`` handler renders.
Compound payloads are frozen dataclasses, so a handler reads ``message.payload.info``, never a
string key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from textual.message import Message

if TYPE_CHECKING:
    from core.audit import AuditEntry
    from core.deployments.info import DeploymentInfo
    from core.deployments.tracker import PerformanceMetrics, SecondSample
    from core.events import Event
    from core.experiments.analysis_view import AnalysisView
    from core.experiments.models import AllocationChange, ExperimentInfo
    from core.model_metadata import ModelMetadata
    from core.registry import StatusChange

T = TypeVar("T")


class Loaded(Message, Generic[T]):
    """Base for "a worker fetched this"; each subclass names the payload's type."""

    def __init__(self, payload: T) -> None:
        super().__init__()
        self.payload: T = payload


# ---- payloads --------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionDetail:
    meta: ModelMetadata
    history: list[StatusChange]


@dataclass(frozen=True)
class ExperimentRow:
    info: ExperimentInfo
    units: dict[str, int]  # progress units per variant on the primary metric


@dataclass(frozen=True)
class ExperimentDetail:
    info: ExperimentInfo
    analysis: AnalysisView | None  # None until the experiment has started
    history: list[AllocationChange]

    def same_as(self, other: ExperimentDetail) -> bool:
        """Equal but for the analysis time stamp (a redraw would change nothing)."""

        def strip(view: AnalysisView | None) -> AnalysisView | None:
            return view and replace(view, analyzed_at="")

        return (
            self.info == other.info
            and strip(self.analysis) == strip(other.analysis)
            and self.history == other.history
        )


@dataclass(frozen=True)
class DeploymentRow:
    info: DeploymentInfo
    metrics: PerformanceMetrics | None


@dataclass(frozen=True)
class DeploymentList:
    rows: list[DeploymentRow]
    canaries: dict[str, dict[str, Any]]  # deployment id -> its running canary's summary


@dataclass(frozen=True)
class LiveData:
    info: DeploymentInfo
    metrics: PerformanceMetrics | None
    history: list[SecondSample]
    canary: dict[str, Any] | None  # the active canary's status, if one runs
    # This host's serving processes, each one's own numbers (empty with a single process).
    processes: dict[str, PerformanceMetrics] = field(default_factory=dict)


@dataclass(frozen=True)
class Feed:
    events: list[Event]  # oldest first
    audit: list[AuditEntry]


# ---- registry ------------------------------------------------------------------------------


class VersionsLoaded(Loaded["list[ModelMetadata]"]):
    """Every registered version."""


class VersionDetailLoaded(Loaded[VersionDetail]):
    """The highlighted version and its status history."""


class ComparisonLoaded(Loaded["dict[str, Any]"]):
    """The registry's comparison dict for the two marked versions."""


# ---- experiments ---------------------------------------------------------------------------


class ExperimentsLoaded(Loaded["list[ExperimentRow]"]):
    """Every experiment with its progress."""


class ExperimentDetailLoaded(Loaded[ExperimentDetail]):
    """The selected experiment."""


# ---- deployments ---------------------------------------------------------------------------


class DeploymentsLoaded(Loaded[DeploymentList]):
    """Every deployment with its live numbers, and the running canaries."""


class LiveSample(Loaded[LiveData]):
    """One sample for the live panel."""


# ---- events --------------------------------------------------------------------------------


class FeedLoaded(Loaded[Feed]):
    """New events and audit entries."""


# ---- mutations -----------------------------------------------------------------------------


class ActionDone(Message):
    """A mutation succeeded; the screen notifies and reloads."""

    def __init__(self, text: str, select: str | None = None) -> None:
        super().__init__()
        self.text = text
        self.select = select  # a row key to move the cursor to after the reload
