"""One exception hierarchy for every face: the CLI maps these to an exit code, HTTP to a status,
the console to a notification. A user never sees a traceback for their own mistake."""

from __future__ import annotations


class NightScanError(Exception):
    """Base of every error a user can cause or must act on."""

    exit_code = 1
    http_status = 400


class ValidationError(NightScanError):
    """Input that breaks a rule (bad config, malformed id, out-of-range value)."""

    exit_code = 2
    http_status = 422


class NotFoundError(NightScanError):
    """A model, experiment or deployment that does not exist."""

    exit_code = 3
    http_status = 404


class ConflictError(NightScanError):
    """The thing exists already, or its state forbids the operation."""

    exit_code = 4
    http_status = 409


class InvalidTransitionError(ConflictError):
    """A lifecycle transition that the transition table does not allow."""


class IntegrityError(NightScanError):
    """A stored artifact whose bytes no longer match the recorded checksum."""

    exit_code = 5
    http_status = 500


class UnsafeArtifactError(ValidationError):
    """Weights that would need unrestricted pickle to load; refused."""


class DeploymentFailedError(NightScanError):
    """A deploy whose load, warm-up or health check failed; the previous version keeps serving."""

    exit_code = 6
    http_status = 422


class OverloadedError(NightScanError):
    """The bounded queue is full: try again after ``retry_after_s``."""

    exit_code = 7
    http_status = 503

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InferenceFailedError(NightScanError):
    """The model itself failed on a valid request (not the client's fault)."""

    exit_code = 8
    http_status = 503


class PayloadTooLargeError(ValidationError):
    """Audio longer than the deployment's maximum."""

    http_status = 413


class UnreachableError(NightScanError):
    """A NightScan server that does not answer (wrong URL, not running, network down)."""

    exit_code = 10
    http_status = 502
