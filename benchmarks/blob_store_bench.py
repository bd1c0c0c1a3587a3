"""Blob store benchmark (issue 13): how fast weights go into the database and reach another
host's cache, and how much memory that costs. For each size, in a fresh process: register
(the cache file, then the database blob), fetch into a second home's empty cache, and verify a
cached copy (the check before every load). Peak resident-set growth per phase is measured by
resetting the peak (/proc/self/clear_refs) before it.

    .venv/bin/python benchmarks/blob_store_bench.py [--database-url URL] [--mib 16,64,256]

The URL defaults to $NIGHTSCAN_TEST_POSTGRES_URL; a PostgreSQL URL gets a schema of its own,
dropped afterwards. A SQLite URL (blob_store = "database" chosen explicitly) works too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from datetime import date
from pathlib import Path

from machine import RESULTS, ROOT, cpu_model
from rich.console import Console
from rich.table import Table

console = Console()

CHILD = textwrap.dedent(r"""
    import json, re, sys, time
    import psutil
    from data.artifacts import ArtifactStore
    from data.blob_store import DatabaseBlobStore
    from data.database import Database
    from data.migrate import upgrade
    from data.weights_store import WeightsStore

    url, source, home_a, home_b = sys.argv[1:]
    db = Database(url)
    upgrade(db)

    def phase(step):
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        before = psutil.Process().memory_info().rss
        t0 = time.perf_counter()
        result = step()
        took = time.perf_counter() - t0
        with open("/proc/self/status") as fh:
            peak = int(re.search(r"VmHWM:\s+(\d+) kB", fh.read()).group(1)) * 1024
        return result, took, peak - before

    a = WeightsStore(db, ArtifactStore(home_a), DatabaseBlobStore(db))
    b = WeightsStore(db, ArtifactStore(home_b), DatabaseBlobStore(db))
    warm, _ = a.put(bytes(range(256)) * 40_000)
    b.fetch(warm)
    (digest, size), put_s, put_rss = phase(lambda: a.put_file(source))
    _, fetch_s, fetch_rss = phase(lambda: b.fetch(digest))
    _, verify_s, verify_rss = phase(lambda: b.verify_cache(digest))
    print(json.dumps(dict(size=size, put_s=put_s, put_rss=put_rss, fetch_s=fetch_s,
                          fetch_rss=fetch_rss, verify_s=verify_s, verify_rss=verify_rss)))
""")


def schema_url(url: str) -> tuple[str, str | None]:
    if not url.startswith("postgresql"):
        return url, None
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(
        url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as c:
        c.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}", schema


def drop_schema(url: str, schema: str | None) -> None:
    if schema is None:
        return
    import psycopg

    with psycopg.connect(
        url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as c:
        c.execute(f'DROP SCHEMA "{schema}" CASCADE')


def measure(url: str, mib: int, workdir: Path) -> dict:
    source = workdir / f"w{mib}.bin"
    with source.open("wb") as fh:
        for _ in range(max(1, mib // 4)):
            fh.write(os.urandom(min(mib, 4) << 20))
    homes = [str(workdir / f"{n}{mib}") for n in ("a", "b")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, url, str(source), *homes],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        source.unlink(missing_ok=True)
        for home in homes:
            shutil.rmtree(home, ignore_errors=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", default=os.environ.get("NIGHTSCAN_TEST_POSTGRES_URL"))
    ap.add_argument("--mib", default="16,64,256")
    args = ap.parse_args()
    if not args.database_url:
        sys.exit("give --database-url or set NIGHTSCAN_TEST_POSTGRES_URL")
    sizes = [int(x) for x in args.mib.split(",")]
    url, schema = schema_url(args.database_url)
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="blob-bench-") as tmp:
            for mib in sizes:
                rows.append((mib, measure(url, mib, Path(tmp))))
    finally:
        drop_schema(args.database_url, schema)

    table = Table(title=f"blob store on {args.database_url.split(':')[0]}")
    cols = ["MiB", "register s", "MiB/s", "+RSS MiB", "fetch s", "MiB/s", "+RSS MiB",
            "verify s", "+RSS MiB"]  # fmt: skip
    for col in cols:
        table.add_column(col, justify="right")
    lines = []
    for _mib, r in rows:
        size = r["size"] / 2**20
        cells = [
            f"{size:.0f}",
            f"{r['put_s']:.2f}", f"{size / r['put_s']:.0f}", f"{r['put_rss'] / 2**20:.1f}",
            f"{r['fetch_s']:.2f}", f"{size / r['fetch_s']:.0f}", f"{r['fetch_rss'] / 2**20:.1f}",
            f"{r['verify_s']:.2f}", f"{r['verify_rss'] / 2**20:.1f}",
        ]  # fmt: skip
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    console.print(table)

    backend = args.database_url.split(":")[0]
    command = "python benchmarks/blob_store_bench.py " + " ".join(sys.argv[1:])
    with RESULTS.open("a") as fh:
        fh.write(
            f"\n## Blob store ({backend}), {date.today().isoformat()}\n\n"
            f"`{command.strip()}` - nproc {os.cpu_count()}, {cpu_model()}, "
            f"Python {platform.python_version()}; register = cache file + database blob "
            "(4 MiB chunk rows, one transaction), fetch = database blob into an empty cache, "
            "verify = re-hash of the cached file; +RSS = peak resident-set growth in the phase.\n\n"
            "| " + " | ".join(cols) + " |\n|" + "---:|" * len(cols) + "\n" + "\n".join(lines) + "\n"
        )
    console.print(f"appended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
