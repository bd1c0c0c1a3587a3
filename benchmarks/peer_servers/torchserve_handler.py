"""TorchServe peer handler (packed into a .mar by ``peer_serving_bench.py``).

TorchServe batches requests itself (``batchSize``/``maxBatchDelay``); every row of ``data``
is one request whose multipart field ``file`` (or raw body) is the WAV.
"""

from __future__ import annotations

import json
import os
import sys

from ts.torch_handler.base_handler import BaseHandler


class AudioHandler(BaseHandler):
    def initialize(self, context) -> None:
        model_dir = context.system_properties.get("model_dir")
        sys.path.insert(0, model_dir)
        spec = os.path.join(model_dir, "spec.json")
        with open(spec) as fh:  # where the project's ``inference`` package lives
            os.environ.setdefault("NIGHTSCAN_ROOT", json.load(fh)["root"])
        from peer_model import PeerModel

        self.peer = PeerModel(spec)
        self.initialized = True

    def handle(self, data, context):
        batch = []
        for row in data:
            body = row.get("file") or row.get("data") or row.get("body")
            batch.append(self.peer.windows(body))
        return self.peer.predict(batch)
