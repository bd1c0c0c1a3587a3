"""A traffic simulator: labelled synthetic calls sent to a running endpoint at a steady rate,
each followed by its ground truth on ``/feedback``, so live accuracy and experiment statistics
are real. Used by the demo and by load tests; it only ever talks to the URL it is given."""

from __future__ import annotations

import io
import logging
import threading
import time
import uuid
from collections.abc import Callable

import numpy as np

log = logging.getLogger(__name__)


def synthetic_clips(count: int, seed: int = 42) -> list[tuple[str, bytes]]:
    """(true label, WAV bytes) pairs, generated once so the sender spends no CPU on audio."""
    import soundfile as sf

    from inference.synthetic import LABELS, generate_call

    rng = np.random.default_rng(seed)
    clips = []
    for i in range(count):
        label = LABELS[i % len(LABELS)]
        buf = io.BytesIO()
        sf.write(buf, generate_call(label, rng), 22_050, format="WAV", subtype="PCM_16")
        clips.append((label, buf.getvalue()))
    return clips


class TrafficSimulator:
    def __init__(
        self,
        url: str,
        rate_per_s: float = 8.0,
        experiment_id: str | None = None,
        feedback_share: float = 1.0,
        clips: int = 100,
        on_error: Callable[[str], None] | None = None,
        on_refused: Callable[[int, str], None] | None = None,
        deployment_id: str | None = None,
        label_noise: dict[str, float] | None = None,
    ) -> None:
        """``label_noise`` maps a class to the share of its feedback given a wrong label (a
        reviewer's mistakes), so quality reflects imperfect ground truth too."""
        self.url = url.rstrip("/")
        self.rate_per_s = rate_per_s
        self.experiment_id = experiment_id
        self.feedback_share = feedback_share
        self.deployment_id = deployment_id
        self.label_noise = dict(label_noise or {})
        self.sent = 0
        self.failed = 0
        self.served = 0
        self.refused = 0  # answers other than 200 (409 for a stopped experiment, 503, ...)
        self.refusal_streak = 0  # refusals since the last request that was served
        self.last_refusal = ""  # "409: experiment x is COMPLETED", for the console
        self._clips_wanted = clips
        self._on_error = on_error
        self._on_refused = on_refused
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> TrafficSimulator:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="traffic-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _refused(self, response) -> None:
        self.refused += 1
        self.refusal_streak += 1
        try:
            detail = response.json().get("detail", "")
        except ValueError:
            detail = response.text[:200]
        self.last_refusal = f"{response.status_code}: {detail}"
        if self._on_refused:
            self._on_refused(response.status_code, str(detail))

    def _run(self) -> None:
        import httpx

        clips = synthetic_clips(self._clips_wanted)
        rng = np.random.default_rng(7)
        labels = sorted({label for label, _ in clips})
        with httpx.Client(timeout=30) as client:
            i = 0
            while not self._stop.is_set():
                started = time.monotonic()
                label, wav = clips[i % len(clips)]
                i += 1
                request_id = f"sim_{uuid.uuid4().hex[:16]}"
                # Read per request: whoever follows the experiments (the demo) may retarget it.
                experiment_id = self.experiment_id
                params = {"experiment_id": experiment_id} if experiment_id else {}
                if self.deployment_id:
                    params["deployment_id"] = self.deployment_id
                try:
                    r = client.post(
                        f"{self.url}/predict",
                        params={**params, "request_id": request_id},
                        files={"file": ("call.wav", wav, "audio/wav")},
                    )
                    self.sent += 1
                    if r.status_code == 200 and rng.random() < self.feedback_share:
                        given = label
                        if rng.random() < self.label_noise.get(label, 0.0):
                            given = str(rng.choice([x for x in labels if x != label]))
                        client.post(
                            f"{self.url}/feedback",
                            json={"request_id": request_id, "true_label": given},
                        )
                    if r.status_code == 200:
                        self.served += 1
                        self.refusal_streak = 0
                    else:
                        self.failed += 1
                        self._refused(r)
                except httpx.HTTPError as exc:
                    self.failed += 1
                    if self._on_error:
                        self._on_error(str(exc))
                # Steady rate: sleep what is left of this request's slot.
                self._stop.wait(max(0.0, 1.0 / self.rate_per_s - (time.monotonic() - started)))
