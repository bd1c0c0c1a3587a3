"""Where /predict decodes a body: on the event loop for a lone small plain WAV, else in a thread."""

from __future__ import annotations

import io

import anyio
import numpy as np
import pytest
import soundfile as sf

from core.server import request_body
from core.server.limits import AudioLimits
from core.server.request_body import PredictsInFlight


def _wav(rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.linspace(-0.5, 0.5, rate // 2, dtype=np.float32), rate, format="WAV")
    return buf.getvalue()


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every decode handed to a worker thread (and still runs it there)."""
    seen: list[str] = []
    real = anyio.to_thread.run_sync

    async def recording(fn, *args, **kwargs):
        seen.append(fn.__name__)
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(request_body.anyio.to_thread, "run_sync", recording)
    return seen


def _decode(data: bytes, in_flight: int):
    async def run():
        for _ in range(in_flight):
            PredictsInFlight().__enter__()
        try:
            return await request_body._decode(data, AudioLimits())
        finally:
            for _ in range(in_flight):
                PredictsInFlight().__exit__(None, None, None)

    return anyio.run(run)


def test_a_lone_small_wav_at_the_model_rate_is_decoded_without_a_thread(hops) -> None:
    alone = _decode(_wav(22_050), in_flight=1)
    assert hops == []
    busy = _decode(_wav(22_050), in_flight=2)  # others under way: decode beside the loop
    assert hops == ["from_file_bytes"]
    np.testing.assert_array_equal(alone.samples, busy.samples)
    assert PredictsInFlight.count == 0


def test_a_wav_that_needs_resampling_always_goes_to_a_thread(hops) -> None:
    waveform = _decode(_wav(44_100), in_flight=1)
    assert hops == ["from_file_bytes"] and waveform.sample_rate == 22_050
