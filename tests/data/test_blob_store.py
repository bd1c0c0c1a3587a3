"""The blob store seam: the database store on SQLite and PostgreSQL, the file store, and the
setting that chooses between them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.errors import ValidationError
from core.settings import Settings
from data.artifacts import ArtifactIntegrityError, ArtifactStore
from data.blob_store import BlobMissingError, BlobStore, DatabaseBlobStore
from data.blob_tables import BlobChunkRow, BlobRow


@pytest.fixture
def store(ctx) -> DatabaseBlobStore:
    return DatabaseBlobStore(ctx.db, chunk_size=1000)


def rows(store: DatabaseBlobStore) -> tuple[int, int]:
    with store.db.session() as s:
        blobs = s.execute(select(func.count()).select_from(BlobRow)).scalar_one()
        chunks = s.execute(select(func.count()).select_from(BlobChunkRow)).scalar_one()
    return blobs, chunks


def test_both_stores_are_blob_stores(store, tmp_path: Path) -> None:
    assert isinstance(store, BlobStore)
    assert isinstance(ArtifactStore(tmp_path / "artifacts"), BlobStore)


def test_a_blob_is_stored_in_chunks_and_read_back_verified(store) -> None:
    data = bytes(range(256)) * 10  # 2560 bytes: chunks of 1000, 1000, 560
    digest, size = store.put(data)
    assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert [len(c) for c in store.open(digest)] == [1000, 1000, 560]
    assert store.read(digest) == data
    assert store.digest_of(digest) == (digest, len(data))
    assert store.exists(digest) and store.size(digest) == len(data)
    assert store.put(data) == (digest, size)  # idempotent
    assert rows(store) == (1, 3)
    store.delete(digest)
    assert rows(store) == (0, 0) and not store.exists(digest) and store.size(digest) is None


def test_a_file_is_stored_in_chunks_whatever_the_read_size(store, tmp_path: Path) -> None:
    source = tmp_path / "w.bin"
    source.write_bytes(b"x" * 4321)
    digest, size = store.put_file(source)
    assert size == 4321 and rows(store) == (1, 5)
    assert b"".join(store.open(digest)) == source.read_bytes()


def test_a_stream_that_does_not_hash_to_its_digest_stores_nothing(store) -> None:
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(ArtifactIntegrityError) as info:
        store.put_chunks(wrong, [b"a" * 1500, b"b" * 700])
    assert info.value.expected == wrong
    assert rows(store) == (0, 0)


def test_a_missing_blob_is_a_file_not_found(store) -> None:
    with pytest.raises(BlobMissingError):
        store.open("0" * 64)
    with pytest.raises(FileNotFoundError):
        store.read("0" * 64)


def test_a_tampered_chunk_is_refused_on_read(store) -> None:
    digest, _ = store.put(b"z" * 2500)
    with store.db.write() as s:
        s.connection().execute(
            BlobChunkRow.__table__.update()
            .where(BlobChunkRow.digest == digest, BlobChunkRow.seq == 1)
            .values(data=b"y" * 1000)
        )
    with pytest.raises(ArtifactIntegrityError, match="database blob"):
        store.read(digest)
    assert store.digest_of(digest)[0] != digest


def test_the_file_store_caches_only_a_stream_that_verifies(tmp_path: Path) -> None:
    cache = ArtifactStore(tmp_path / "artifacts")
    good = hashlib.sha256(b"abc").hexdigest()
    with pytest.raises(ArtifactIntegrityError):
        cache.put_verified(good, [b"ab", b"d"])
    assert not cache.exists(good) and not list((tmp_path / "artifacts").glob("**/.tmp-*"))
    assert cache.put_verified(good, [b"ab", b"c"]) == 3
    assert list(cache.open(good)) == [b"abc"] and cache.size(good) == 3


@pytest.mark.parametrize(
    "url,env,expected",
    [
        ("sqlite:///x.db", None, "local"),
        ("postgresql://u@h/db", None, "database"),
        ("postgresql+psycopg://u@h/db", None, "database"),
        ("postgresql://u@h/db", "local", "local"),
        ("sqlite:///x.db", "database", "database"),
    ],
)
def test_the_blob_store_setting_defaults_by_database(
    url, env, expected, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if env is None:
        monkeypatch.delenv("NIGHTSCAN_BLOB_STORE", raising=False)
    else:
        monkeypatch.setenv("NIGHTSCAN_BLOB_STORE", env)
    assert Settings.load(tmp_path, url).blob_store == expected


def test_the_blob_store_setting_is_read_from_config_and_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NIGHTSCAN_BLOB_STORE", raising=False)
    (tmp_path / "config.toml").write_text('blob_store = "local"\n')
    assert Settings.load(tmp_path, "postgresql://u@h/db").blob_store == "local"
    monkeypatch.setenv("NIGHTSCAN_BLOB_STORE", "s3")
    with pytest.raises(ValidationError, match="blob_store must be one of database, local"):
        Settings.load(tmp_path, "postgresql://u@h/db")
