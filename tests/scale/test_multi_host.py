"""Three hosts x two workers on one PostgreSQL, behind HAProxy, each host in a network namespace
of its own with a home folder of its own (issue 13, item 3): the weights a CLI registers reach
every host through the database (the blob store), never through a shared folder.

The test builds everything itself (netns_cluster.py): a bridge, namespaces for a PostgreSQL it
starts (initdb, run as the ``postgres`` user), three ``nightscan serve --workers 2`` and a CLI,
and HAProxy in the root namespace with health checks on /health. From the CLI's namespace it
registers two versions, deploys, starts a canary and rolls back; after each change every worker
of every host serves the new state (its /ready: generation and traffic split). Under load through
HAProxy it kills -9 every process of one host: HAProxy routes around it, every answered
prediction is in the prediction table (the hosts run with NIGHTSCAN_DURABLE_PREDICTIONS=1), and
the canary is promoted on the remaining hosts' traffic. Feedback sent to another host than the
one that answered joins its prediction. Traffic goes only to the test's own addresses, bounded
in count (MAX_REQUESTS) and time (LOAD_CAP_S).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from model_helpers import LABELS
from netns_cluster import (
    HAProxy,
    Namespace,
    Network,
    Postgres,
    ServeHost,
    missing_requirements,
    remove_stale,
    tail,
    temp_folder,
    wait_for,
)

pytestmark = pytest.mark.slow

DEP = "wd_prod"
V1, V2 = "wd:v1.0.0", "wd:v2.0.0"
WORKERS = 2
CONVERGE_S = 3.0  # every host serves a change within this (the bound)
MAX_REQUESTS = 600  # through HAProxy, in all
LOAD_CAP_S = 60.0
KILL_AFTER = 24  # acknowledged requests through HAProxy before one host is killed
MIN_SAMPLES = 60  # canary requests before promotion: more than were served before the kill
START_TIMEOUT_S = 120.0


@dataclass
class Cluster:
    network: Network
    pg: Postgres
    cli_ns: Namespace
    cli_home: Path
    hosts: list[ServeHost]
    haproxy: HAProxy
    token: str = ""
    work: Path = field(default_factory=lambda: temp_folder("work"))

    def logs(self) -> list[Path]:
        return [h.log for h in self.hosts] + [self.pg.log, self.haproxy.log]

    def cli(self, *args: str, timeout: float = 120) -> str:
        env = {**os.environ, "NIGHTSCAN_HOME": str(self.cli_home),
               "NIGHTSCAN_DATABASE_URL": self.pg.url, "NIGHTSCAN_ACTOR": "cli"}  # fmt: skip
        argv = self.cli_ns.argv(sys.executable, "-m", "nightscan_tui.cli", *args)
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
        assert done.returncode == 0, f"nightscan {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.stdout

    def diagnose(self) -> str:
        return "\n".join(tail(p) for p in self.logs())


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    remove_stale()
    began = time.monotonic()
    teardown: list = []
    try:
        network = Network().start()
        teardown.append(network.close)
        db_ns = network.add("db", 2)
        cli_ns = network.add("cli", 3)
        host_ns = [network.add(f"h{i}", 10 + i) for i in (1, 2, 3)]
        pg = Postgres(db_ns, f"10.213.{network.subnet}.0/24")
        teardown.append(pg.stop)
        pg.start()
        # Each host: a home of its own, answering /predict only once the row is committed.
        env = {"NIGHTSCAN_DURABLE_PREDICTIONS": "1"}
        hosts = [ServeHost(ns, pg.url, WORKERS, env) for ns in host_ns]
        for host in hosts:
            teardown.append(host.stop)
            host.start()
        haproxy = HAProxy(network.gateway, 8080, [f"{h.ns.addr}:8000" for h in hosts])
        teardown.append(haproxy.stop)
        haproxy.start()
        made = Cluster(network, pg, cli_ns, temp_folder("cli"), hosts, haproxy)
        teardown.append(lambda: shutil.rmtree(made.cli_home, ignore_errors=True))
        teardown.append(lambda: shutil.rmtree(made.work, ignore_errors=True))
        print(f"cluster started in {time.monotonic() - began:.1f} s", flush=True)
        yield made
    finally:
        for step in reversed(teardown):
            try:
                step()
            except Exception as exc:  # every other step still runs
                print(f"teardown step {step} failed: {exc}")


# ---- helpers -----------------------------------------------------------------------------------


def weights_file(folder: Path, seed: int) -> Path:
    import torch
    from safetensors.torch import save_file

    from inference.architectures import build_model

    torch.manual_seed(seed)
    path = folder / f"wd_{seed}.safetensors"
    save_file(build_model("small_cnn", len(LABELS)).state_dict(), str(path))
    return path


def cached(home: Path, digest: str) -> bool:
    """Whether a host's own cache holds the weights with this sha256."""
    return any(p.is_file() for p in (home / "artifacts").rglob(digest))


def call_wav() -> bytes:
    from inference.synthetic import generate_call

    samples = generate_call("owl", np.random.default_rng(0), sample_rate=22_050, seconds=1.0)
    buffer = io.BytesIO()
    sf.write(buffer, samples, 22_050, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def ready_of(url: str) -> tuple[int, dict | None]:
    """(worker pid, this deployment as that worker serves it) on a fresh connection."""
    with httpx.Client(timeout=5) as client:
        r = client.get(f"{url}/ready")
    found = [d for d in r.json().get("deployments", []) if d["deployment_id"] == DEP]
    return int(r.headers["x-nightscan-worker"]), (found[0] if found else None)


def converge(hosts: list[ServeHost], traffic: dict[str, float], since: float, cl: Cluster) -> float:
    """Seconds from ``since`` until every worker of every host serves ``traffic`` (each host's
    workers are told apart by the pid header; fresh connections reach both)."""
    pending = {h.url: set() for h in hosts}
    deadline = time.monotonic() + 60
    while pending:
        for url in list(pending):
            pid, dep = ready_of(url)
            if dep is not None and dep["traffic"] == traffic and dep["healthy"]:
                pending[url].add(pid)
                if len(pending[url]) >= WORKERS:
                    del pending[url]
        assert time.monotonic() < deadline, (
            f"not converged to {traffic}: {pending}\n" + cl.diagnose()
        )
        time.sleep(0.02)
    return time.monotonic() - since


def worker_pids(host: ServeHost) -> set[int]:
    seen: set[int] = set()
    for _ in range(200):
        seen.add(ready_of(host.url)[0])
        if len(seen) >= WORKERS:
            return seen
    raise AssertionError(f"{host.url}: only workers {seen} answered")


@dataclass
class Answer:
    status: int
    request_id: str = ""
    pid: int = 0
    version: str = ""


def predict(client: httpx.Client, url: str, wav: bytes, token: str) -> Answer:
    try:
        r = client.post(f"{url}/predict", files={"file": ("call.wav", wav, "audio/wav")},
                        headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    except httpx.HTTPError:
        return Answer(0)
    if r.status_code != 200:
        return Answer(r.status_code)
    body = r.json()
    return Answer(200, body["request_id"], int(r.headers["x-nightscan-worker"]),
                  body["model_version"])  # fmt: skip


# ---- the test ----------------------------------------------------------------------------------


def test_three_hosts_converge_survive_a_host_kill_and_judge_the_canary_together(
    cluster: Cluster,
) -> None:
    from sqlmodel import col, select

    from core import context
    from data.canary_tables import CanaryRow
    from data.deployment_tables import PredictionRow

    cl = cluster
    h1, h2, h3 = cl.hosts
    t0 = time.monotonic()

    def phase(what: str) -> None:  # with -s: where the time goes
        print(f"{time.monotonic() - t0:6.1f} s  {what}", flush=True)

    wav = call_wav()

    # From the CLI's namespace: two versions, an operator token for /predict and /feedback.
    digests = {}
    for version, seed in (("v1.0.0", 0), ("v2.0.0", 1)):
        said = cl.cli("registry", "register", "--weights", str(weights_file(cl.work, seed)),
                      f"wd:{version}", "--labels", ",".join(LABELS))  # fmt: skip
        digests[f"wd:{version}"] = said.split("sha256:")[1].split()[0]
    # No shared filesystem: the weights reach the hosts through the database (blobs).
    assert not any(cached(h.home, d) for h in cl.hosts for d in digests.values())
    phase("registered")
    cl.token = json.loads(cl.cli("token", "create", "--role", "operator", "--json"))["token"]

    phase("token")
    # An observer in the root namespace reads the database the hosts share.
    observer = context.configure(cl.work / "observer", cl.pg.url)
    try:
        wait_for(lambda: all(h.answers() for h in cl.hosts), "every host to answer /health",
                 START_TIMEOUT_S, logs=cl.logs())  # fmt: skip
        phase("hosts answer")
        took: dict[str, float] = {}

        # Deploy: every worker of every host serves v1.
        config = cl.work / "deploy.toml"
        config.write_text('deployment_id = "wd_prod"\n')
        cl.cli("deploy", "wd", "v1.0.0", "--config", str(config))
        took["deploy"] = converge(cl.hosts, {V1: 100.0}, time.monotonic(), cl)
        phase("deployed")
        assert all(cached(h.home, digests[V1]) for h in cl.hosts)  # fetched, verified
        pids = {h.url: worker_pids(h) for h in cl.hosts}
        host_of = {pid: url for url, found in pids.items() for pid in found}

        # HAProxy reaches every host.
        with httpx.Client(timeout=30) as client:
            seen: set[str] = set()
            for _ in range(200):
                answer = predict(client, cl.haproxy.url, wav, cl.token)
                if answer.status == 200:
                    seen.add(host_of[answer.pid])
                if len(seen) == 3:
                    break
            assert len(seen) == 3, f"HAProxy reached only {seen}\n" + cl.diagnose()

            # Feedback sent to another host than the one that answered joins its prediction.
            answer = predict(client, h1.url, wav, cl.token)
            assert answer.status == 200 and host_of[answer.pid] == h1.url
            r = client.post(f"{h2.url}/feedback", json={"request_id": answer.request_id,
                            "true_label": "hawk"},
                            headers={"Authorization": f"Bearer {cl.token}"})  # fmt: skip
            assert r.status_code == 200, r.text
            assert host_of[int(r.headers["x-nightscan-worker"])] == h2.url
        with observer.db.session() as session:
            row = session.get(PredictionRow, answer.request_id)
        assert row is not None and row.true_label == "hawk" and row.model_ref == V1
        acked = {answer.request_id}

        phase("haproxy + feedback")
        # A canary at 50 %: every worker of every host splits the traffic.
        canary = cl.work / "canary.toml"
        canary.write_text(
            'deployment_id = "wd_prod"\n'
            "[canary]\n"
            "steps = [50, 100]\n"
            "step_seconds = 2\n"
            "analysis_interval_s = 0.5\n"
            f"min_samples = {MIN_SAMPLES}\n"
            "calibration_samples = 20\n"
            "latency_tolerance = 1.0\n"
            "latency_margin_ms = 100\n"
        )
        cl.cli("deploy", "wd", "v2.0.0", "--config", str(canary), "--canary", "--traffic", "50")
        took["canary"] = converge(cl.hosts, {V1: 50.0, V2: 50.0}, time.monotonic(), cl)
        assert all(cached(h.home, digests[V2]) for h in cl.hosts)

        phase("canary")
        # Load through HAProxy; after KILL_AFTER answers, kill -9 every process of host 3
        # while requests are in flight. Go on until the canary is promoted (bounded).
        answers: list[Answer] = []
        killed_at_answer = -1
        canary_before_kill = 0
        promoted = None
        started = time.monotonic()
        with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=8)) as client:
            with ThreadPoolExecutor(6) as pool:
                while promoted is None:
                    assert len(answers) < MAX_REQUESTS, "canary not promoted\n" + cl.diagnose()
                    assert time.monotonic() - started < LOAD_CAP_S, cl.diagnose()
                    batch = [pool.submit(predict, client, cl.haproxy.url, wav, cl.token)
                             for _ in range(12)]  # fmt: skip
                    ok_so_far = sum(a.status == 200 for a in answers)
                    if killed_at_answer < 0 and ok_so_far >= KILL_AFTER:
                        time.sleep(0.05)  # some of the batch are in flight now
                        canary_before_kill = sum(a.version == V2 for a in answers)
                        killed_pids = h3.crash()
                        killed_at_answer = len(answers)
                    answers += [f.result() for f in batch]
                    with observer.db.session() as session:
                        row = session.exec(
                            select(CanaryRow).where(CanaryRow.deployment_id == DEP)
                        ).one()
                    assert row.state in ("progressing", "promoted"), (row.state, row.reason)
                    if row.state == "promoted":
                        promoted = row
        phase("promoted")
        took["promotion"] = converge([h1, h2], {V2: 100.0}, time.monotonic(), cl)
        assert killed_at_answer >= 0 and set(pids[h3.url]) <= set(killed_pids)

        # HAProxy routed around the dead host: answers after the kill came from hosts 1 and 2.
        after = [a for a in answers[killed_at_answer + 12 :] if a.status == 200]
        assert after and {host_of[a.pid] for a in after} <= {h1.url, h2.url}
        ok = [a for a in answers if a.status == 200]
        assert len(ok) >= len(answers) - 12, [a.status for a in answers]  # at most the in-flight
        acked |= {a.request_id for a in ok}

        # The canary was judged on the remaining hosts' traffic: it needed MIN_SAMPLES canary
        # requests and fewer than that had been answered before the kill.
        assert canary_before_kill < MIN_SAMPLES
        judged = promoted.policy_state["canary"]["requests"]
        assert judged >= MIN_SAMPLES, promoted.policy_state

        phase("checked")
        # Roll back from the CLI: the remaining hosts serve v1 again.
        cl.cli("deployment", "rollback", DEP, "--reason", "multi-host test")
        took["rollback"] = converge([h1, h2], {V1: 100.0}, time.monotonic(), cl)

        phase("rolled back")
        # No acknowledged prediction is lost, not even the killed host's.
        with observer.db.session() as session:
            rows = session.exec(
                select(PredictionRow.request_id).where(col(PredictionRow.request_id).in_(acked))
            ).all()
        assert set(rows) == acked, f"{len(acked - set(rows))} acknowledged predictions lost"
        print(f"converged in {took}; {len(ok)} answered, {len(answers) - len(ok)} refused")
        assert all(seconds <= CONVERGE_S for seconds in took.values()), took
    finally:
        observer.close()
        context._context = None
