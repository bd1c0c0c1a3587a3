"""Weights reach every host through the database: two homes (two hosts' local folders) on one
database, blobs stored in it, each home a verified cache.

On PostgreSQL (NIGHTSCAN_TEST_POSTGRES_URL) the database blob store is the default; on SQLite it
is chosen explicitly (NIGHTSCAN_BLOB_STORE=database) with the database file outside both homes,
so the same paths run without a server too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from blob_helpers import flip_cached_byte, flip_database_byte
from model_helpers import register_version
from sqlalchemy import func, select

from core import IntegrityError, context, get_model_registry
from core.deployments.crash_points import CRASH_ENV
from core.events import recent_events
from data.artifacts import ArtifactStore
from data.blob_tables import BlobChunkRow, BlobRow
from data.tables import ModelVersionRow
from data.types import utcnow

ROOT = Path(__file__).resolve().parents[2]
MODEL = "wd"

Host = Callable[[str], context.Context]


@pytest.fixture
def shared_url(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The conftest's fresh database (a SQLite file outside every host's home, or a PostgreSQL
    schema), with blobs stored in it."""
    if database_url.startswith("sqlite"):
        monkeypatch.setenv("NIGHTSCAN_BLOB_STORE", "database")
    else:
        monkeypatch.delenv("NIGHTSCAN_BLOB_STORE", raising=False)  # the default on PostgreSQL
    return database_url


@pytest.fixture
def host(tmp_path: Path, shared_url: str) -> Iterator[Host]:
    """``host("a")`` makes the process act as host a: its own home, the shared database."""

    def switch(name: str) -> context.Context:
        return context.configure(tmp_path / f"host-{name}", shared_url)

    yield switch
    context.close_context()


def blob_counts(ctx, digest: str) -> tuple[int, int]:
    with ctx.db.session() as s:
        blobs = s.execute(select(func.count()).where(BlobRow.digest == digest)).scalar_one()
        chunks = s.execute(select(func.count()).where(BlobChunkRow.digest == digest)).scalar_one()
    return blobs, chunks


def test_database_blobs_are_the_default_on_postgresql_only(host, shared_url) -> None:
    a = host("a")
    assert a.weights.kind == "database"  # env on SQLite, default on PostgreSQL
    assert a.settings.blob_store == "database"


def test_weights_registered_on_one_host_load_on_another(host) -> None:
    a = host("a")
    meta = register_version(MODEL, "v1", seed=1)
    on_a = get_model_registry().load_weights(MODEL, "v1")
    assert blob_counts(a, meta.checksum) == (1, 1)

    b = host("b")
    assert not b.artifacts.exists(meta.checksum)  # nothing shared but the database
    assert get_model_registry().load_weights(MODEL, "v1") == on_a
    assert b.artifacts.exists(meta.checksum)  # cached for the next load
    assert b.artifacts.digest_of(meta.checksum)[0] == meta.checksum
    model = get_model_registry().load_model(MODEL, "v1")
    assert not model.training


def test_a_tampered_cache_file_is_detected_and_fetched_again(host) -> None:
    host("a")
    meta = register_version(MODEL, "v1", seed=1)
    good = get_model_registry().load_weights(MODEL, "v1")

    b = host("b")
    registry = get_model_registry()
    assert registry.verify_weights(MODEL, "v1")["cache"] == "fetched"
    assert registry.verify_weights(MODEL, "v1")["cache"] == "ok"
    flip_cached_byte(b, meta.checksum)
    assert registry.load_weights(MODEL, "v1") == good  # verified, found wrong, fetched again
    assert b.artifacts.digest_of(meta.checksum)[0] == meta.checksum
    flip_cached_byte(b, meta.checksum)
    checked = registry.verify_weights(MODEL, "v1")
    assert checked["store"] == "database" and checked["cache"] == "repaired"
    assert b.artifacts.read(meta.checksum) == good
    repaired = recent_events(kind="model.cache_repaired")
    assert len(repaired) == 2 and repaired[0].severity == "warning"
    assert meta.checksum in repaired[0].message and repaired[0].data["digest"] == meta.checksum


def test_a_tampered_database_blob_is_refused_with_a_clear_error(host) -> None:
    a = host("a")
    meta = register_version(MODEL, "v1", seed=1)
    flip_database_byte(a, meta.checksum)

    b = host("b")
    with pytest.raises(IntegrityError) as info:
        get_model_registry().load_weights(MODEL, "v1")
    message = str(info.value)
    assert f"{MODEL}:v1" in message and meta.checksum in message
    assert "actual" in message and "database blob" in message
    assert not b.artifacts.exists(meta.checksum)  # never cached
    assert not list(b.settings.artifacts_dir.glob("**/.tmp-*"))  # nor left half-written

    host("a")  # its cache file is intact, and loads; verify checks the database blob too
    registry = get_model_registry()
    assert len(registry.load_weights(MODEL, "v1")) == meta.file_size_bytes
    with pytest.raises(IntegrityError, match="database blob"):
        registry.verify_weights(MODEL, "v1")


def test_deleting_the_last_version_that_uses_a_blob_removes_it(host) -> None:
    a = host("a")
    first = register_version(MODEL, "v1", seed=1)
    register_version(MODEL, "v2", seed=1)  # the same weights: the same blob
    other = register_version(MODEL, "v3", seed=2)
    registry = get_model_registry()

    registry.delete_model(MODEL, "v1")
    assert blob_counts(a, first.checksum) == (1, 1)  # v2 still names it
    registry.delete_model(MODEL, "v2")
    assert blob_counts(a, first.checksum) == (0, 0)
    assert not a.artifacts.exists(first.checksum)
    assert blob_counts(a, other.checksum) == (1, 1)

    host("b")
    assert len(get_model_registry().load_weights(MODEL, "v3")) == other.file_size_bytes


def test_weights_stored_only_on_one_host_are_published_by_verify(
    host, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Versions registered on PostgreSQL before blobs lived in it: the registering host's
    ``registry verify`` copies them into the database."""
    monkeypatch.setenv("NIGHTSCAN_BLOB_STORE", "local")
    a = host("a")
    meta = register_version(MODEL, "v1", seed=1)
    assert blob_counts(a, meta.checksum) == (0, 0)
    monkeypatch.setenv("NIGHTSCAN_BLOB_STORE", "database")

    host("b")
    with pytest.raises(IntegrityError, match="missing from the database blob store"):
        get_model_registry().load_weights(MODEL, "v1")
    host("a")
    assert get_model_registry().verify_weights(MODEL, "v1")["cache"] == "published"
    host("b")
    assert len(get_model_registry().load_weights(MODEL, "v1")) == meta.file_size_bytes


REGISTER = textwrap.dedent("""
    import sys
    from core import context
    from model_helpers import register_version

    context.configure(sys.argv[1], sys.argv[2])
    register_version("wd", "v1", seed=1)
    print("survived")
""")


@pytest.mark.parametrize(
    "crash_at", ["blob:chunk", "register:blob_stored", "register:before_commit"]
)
def test_a_kill_during_registration_never_leaves_a_version_without_its_blob(
    host, shared_url: str, tmp_path: Path, crash_at: str
) -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}", CRASH_ENV: crash_at}
    killed = subprocess.run(
        [sys.executable, "-c", REGISTER, str(tmp_path / "host-a"), shared_url],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    b = host("b")
    with b.db.session() as s:
        versions = s.execute(select(func.count()).select_from(ModelVersionRow)).scalar_one()
        blobs = s.execute(select(BlobRow.digest, BlobRow.chunk_count)).all()
        chunks = s.execute(select(func.count()).select_from(BlobChunkRow)).scalar_one()
    assert versions == 0  # the row comes last, and was not committed
    if crash_at == "blob:chunk":
        assert blobs == [] and chunks == 0  # a half-written blob is not visible at all
    else:
        assert len(blobs) == 1 and chunks == blobs[0].chunk_count  # a whole orphan blob
    assert b.weights.origin is not None
    assert b.weights.origin.sweep_orphans(older_than_s=0) == len(blobs)
    assert blob_counts(b, blobs[0].digest if blobs else "") == (0, 0)

    meta = register_version(MODEL, "v1", seed=1)  # the registration can simply be repeated
    host("c")
    assert len(get_model_registry().load_weights(MODEL, "v1")) == meta.file_size_bytes


def test_the_orphan_sweep_spares_young_blobs_and_named_ones(host) -> None:
    a = host("a")
    meta = register_version(MODEL, "v1", seed=1)
    orphan, _ = a.weights.put(b"weights whose version row never came")
    origin = a.weights.origin
    assert origin is not None
    assert origin.sweep_orphans() == 0  # younger than the grace period: maybe in flight
    assert origin.sweep_orphans(older_than_s=0) == 1
    assert blob_counts(a, orphan) == (0, 0)
    assert blob_counts(a, meta.checksum) == (1, 1)


STREAM = textwrap.dedent(r"""
    import json, re, sys
    import psutil
    from data.artifacts import ArtifactStore
    from data.blob_store import DatabaseBlobStore
    from data.database import Database
    from data.migrate import upgrade
    from data.weights_store import WeightsStore

    url, source, home_a, home_b = sys.argv[1:]
    db = Database(url)
    upgrade(db)

    def growth(step):
        # the peak resident set during step() above the resident set before it, in bytes
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets the peak (VmHWM) to the current resident set
        before = psutil.Process().memory_info().rss
        result = step()
        with open("/proc/self/status") as fh:
            peak = int(re.search(r"VmHWM:\s+(\d+) kB", fh.read()).group(1)) * 1024
        return result, peak - before

    a = WeightsStore(db, ArtifactStore(home_a), DatabaseBlobStore(db))
    b = WeightsStore(db, ArtifactStore(home_b), DatabaseBlobStore(db))
    warm, _ = a.put(bytes(range(256)) * 40_000)  # drivers, statements: every path once
    b.fetch(warm)
    (digest, size), registered = growth(lambda: a.put_file(source))
    _, fetched = growth(lambda: b.fetch(digest))
    print(json.dumps({"digest": digest, "size": size, "registered": registered,
                      "fetched": fetched}))
""")
BIG_MIB = 256
GROWTH_BOUND = 64 << 20  # a few 4 MiB chunks and their copies in the driver, not the blob


@pytest.mark.slow
def test_storing_and_fetching_a_large_blob_streams_in_bounded_memory(
    host, shared_url: str, tmp_path: Path
) -> None:
    if not os.access("/proc/self/clear_refs", os.W_OK):
        pytest.skip("/proc/self/clear_refs is not writable: the peak resident set cannot be reset")
    source = tmp_path / "big.safetensors"
    with source.open("wb") as fh:
        for _ in range(BIG_MIB // 4):
            fh.write(os.urandom(4 << 20))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    homes = [str(tmp_path / f"host-{n}" / "artifacts") for n in ("a", "b")]
    try:
        done = subprocess.run(
            [sys.executable, "-c", STREAM, shared_url, str(source), *homes],
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["size"] == BIG_MIB << 20
        assert report["registered"] < GROWTH_BOUND, report
        assert report["fetched"] < GROWTH_BOUND, report
        cached = Path(homes[1]) / "sha256" / report["digest"][:2] / report["digest"]
        assert cached.stat().st_size == BIG_MIB << 20
        assert ArtifactStore(Path(homes[1])).digest_of(report["digest"])[0] == report["digest"]
    finally:
        source.unlink(missing_ok=True)
        for home in homes:
            shutil.rmtree(home, ignore_errors=True)


def test_registry_verify_on_another_host_checks_the_blob_and_fills_the_cache(
    host, shared_url: str, tmp_path: Path
) -> None:
    host("a")
    meta = register_version(MODEL, "v1", seed=1)
    cli = Path(sys.executable).with_name("nightscan")
    argv = [str(cli), "--home", str(tmp_path / "host-b"), "--database-url", shared_url]
    env = {**os.environ, "NIGHTSCAN_HOME": str(tmp_path / "host-b")}
    done = subprocess.run(
        [*argv, "registry", "verify", f"{MODEL}:v1"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"sha256:{meta.checksum}  database blob ok, cache fetched" in done.stdout
    assert ArtifactStore(tmp_path / "host-b" / "artifacts").exists(meta.checksum)


def test_a_delete_waits_for_a_registration_that_holds_the_blob(host) -> None:
    """The race a version row could lose to: a delete of the blob (its last version just
    deleted) while another registration of the same weights writes its row. The registration
    holds the blob in its transaction; the delete waits for the commit, then sees the row."""
    a = host("a")
    digest, _ = a.weights.put(b"weights that a version is about to name")
    origin = a.weights.origin
    assert origin is not None
    outcome: list[bool] = []
    with a.db.write() as session:
        assert a.weights.hold(session, digest)
        deleter = threading.Thread(
            target=lambda: outcome.append(origin.delete_unreferenced(digest))
        )
        deleter.start()
        deleter.join(timeout=0.5)
        assert deleter.is_alive()  # waiting on the held blob (or on SQLite's write lock)
        session.add(
            ModelVersionRow(
                model_id=MODEL, version="v1", version_key="v1", created_at=utcnow(),
                status="validation", checksum=digest,
            )
        )  # fmt: skip
    deleter.join(timeout=60)
    assert outcome == [False]  # it saw the committed row: the blob stays
    assert blob_counts(a, digest) == (1, 1)
