"""LitServe peer: ``python litserve_app.py SPEC PORT MAX_BATCH BATCH_TIMEOUT_S`` (peer venv).

One CPU inference worker process (LitServe's own), the API server in front of it; the
multipart field ``file`` carries the WAV, as for ``nightscan serve``'s /predict.
"""

from __future__ import annotations

import sys

import litserve as ls
from peer_model import PeerModel


class AudioAPI(ls.LitAPI):
    def setup(self, device: str) -> None:
        self.peer = PeerModel(self.spec_path)

    def decode_request(self, request):
        upload = request["file"]
        data = upload.file.read() if hasattr(upload, "file") else upload
        return self.peer.windows(data)

    def batch(self, inputs):
        return inputs

    def predict(self, batch):
        return self.peer.predict(batch)

    def unbatch(self, output):
        return output

    def encode_response(self, output):
        return output


if __name__ == "__main__":
    spec, port, max_batch, timeout = (
        sys.argv[1],
        int(sys.argv[2]),
        int(sys.argv[3]),
        float(sys.argv[4]),
    )
    api = AudioAPI(max_batch_size=max_batch, batch_timeout=timeout)
    api.spec_path = spec
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1, timeout=120)
    server.run(port=port, host="127.0.0.1", generate_client_file=False, log_level="warning")
