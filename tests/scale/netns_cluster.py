"""Test hosts in network namespaces: one bridge in the root namespace, one namespace per role
(a PostgreSQL, serving hosts, a CLI) joined to it by a veth pair, HAProxy in the root namespace.

Everything is named ``n13<pid>...`` after the test process that created it, so two runs never
collide and a run that crashed is recognised (its pid is gone) and removed by the next one.
Each process a namespace runs is ended with the namespace: ``ip netns pids`` names every
process inside it, whatever session or process group it started. Nothing reaches beyond the
test's own private subnet (10.213.X.0/24, X picked where no route exists).
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PREFIX = "n13"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_PORT = 5432
SERVE_PORT = 8000
REPO = Path(__file__).resolve().parents[2]


def missing_requirements() -> str | None:
    """Why this machine cannot build the cluster (None: it can)."""
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "haproxy", "runuser"):
        if shutil.which(tool) is None:
            return (
                f"`{tool}` is not installed (haproxy: Debian package haproxy; .ci/run installs it)"
            )
    for tool in ("initdb", "pg_ctl"):
        if not (PG_BIN / tool).exists():
            return f"PostgreSQL 15's {tool} is not in {PG_BIN}"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no `postgres` OS user to run PostgreSQL as (it refuses root)"
    probe = f"{PREFIX}{os.getpid()}probe"
    made = _run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"the kernel refuses network namespaces: {made.stderr.strip()}"
    _run("ip", "netns", "del", probe, check=False)
    made = _run("ip", "link", "add", probe[:15], "type", "bridge", check=False)
    if made.returncode != 0:
        return f"the kernel refuses a bridge: {made.stderr.strip()}"
    _run("ip", "link", "del", probe[:15], check=False)
    return None


def _run(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip() or done.stdout.strip()}")
    return done


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner(name: str) -> int | None:
    """The pid in a name this module made (``n13<pid>...``), else None."""
    if not name.startswith(PREFIX):
        return None
    digits = ""
    for ch in name[len(PREFIX) :]:
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else None


def namespace_pids(name: str) -> list[int]:
    done = _run("ip", "netns", "pids", name, check=False)
    return [int(p) for p in done.stdout.split()]


def kill_namespace_processes(name: str, sig: int = signal.SIGKILL) -> list[int]:
    pids = namespace_pids(name)
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    return pids


def _stale(pid: int | None) -> bool:
    # Ours too: this process has made nothing yet, so a name with its pid is a crashed run's
    # whose pid came round again.
    return pid is not None and (pid == os.getpid() or not _pid_alive(pid))


def remove_stale() -> list[str]:
    """Namespaces and links left by runs whose process is gone (call before making any)."""
    removed = []
    for line in _run("ip", "netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if _stale(_owner(name)):
            kill_namespace_processes(name)
            _run("ip", "netns", "del", name, check=False)
            removed.append(name)
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*-*"):
        if _stale(_owner(folder.name)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(str(folder))
    for line in _run("ip", "-o", "link", "show", check=False).stdout.splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@")[0]
        if _stale(_owner(name)):
            _run("ip", "link", "del", name, check=False)
            removed.append(name)
    return removed


def temp_folder(role: str) -> Path:
    """A folder in the temp dir named after this process (so a later run can tell it stale)."""
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-{role}-"))


def _free_subnet() -> int:
    routes = _run("ip", "-4", "route", "show", check=False).stdout
    free = [x for x in range(1, 255) if f"10.213.{x}." not in routes]
    if not free:
        raise RuntimeError("no free 10.213.X.0/24 subnet")
    return random.choice(free)


@dataclass
class Namespace:
    name: str
    addr: str

    def argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]


@dataclass
class Network:
    """A bridge in the root namespace (it holds ``.1``) and namespaces on it."""

    pid: int = field(default_factory=os.getpid)
    subnet: int = field(default_factory=_free_subnet)
    namespaces: list[Namespace] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"{PREFIX}{self.pid}br"

    @property
    def gateway(self) -> str:
        return f"10.213.{self.subnet}.1"

    def start(self) -> Network:
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        return self

    def add(self, role: str, octet: int) -> Namespace:
        ns = Namespace(f"{PREFIX}{self.pid}{role}", f"10.213.{self.subnet}.{octet}")
        outer, inner = f"{PREFIX}{self.pid}{role}"[:15], f"{PREFIX}{self.pid}{role}i"[:15]
        _run("ip", "netns", "add", ns.name)
        self.namespaces.append(ns)
        _run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        _run("ip", "link", "set", outer, "master", self.bridge)
        _run("ip", "link", "set", outer, "up")
        _run("ip", "link", "set", inner, "netns", ns.name)
        _run(*ns.argv("ip", "link", "set", inner, "name", "eth0"))
        _run(*ns.argv("ip", "addr", "add", f"{ns.addr}/24", "dev", "eth0"))
        _run(*ns.argv("ip", "link", "set", "eth0", "up"))
        _run(*ns.argv("ip", "link", "set", "lo", "up"))
        return ns

    def close(self) -> None:
        for ns in self.namespaces:
            kill_namespace_processes(ns.name)
        deadline = time.monotonic() + 10
        for ns in self.namespaces:
            while namespace_pids(ns.name) and time.monotonic() < deadline:
                time.sleep(0.05)
            _run("ip", "netns", "del", ns.name, check=False)  # its veth end goes with it
        _run("ip", "link", "del", self.bridge, check=False)
        self.namespaces.clear()


def wait_for(check, what: str, timeout_s: float, *, logs=()) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for {what}\n" + "\n".join(tail(p) for p in logs)
            )
        time.sleep(0.05)


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"--- {path}: unreadable"
    return f"--- {path.name}\n" + "\n".join(text)


@dataclass
class Postgres:
    """A PostgreSQL of the test's own, run as the ``postgres`` OS user in ``ns``."""

    ns: Namespace
    subnet_cidr: str
    data: Path = field(default_factory=lambda: temp_folder("pg"))

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{self.ns.addr}:{PG_PORT}/postgres"

    @property
    def log(self) -> Path:
        return self.data / "server.log"

    def _as_postgres(self, *argv: str, timeout: float = 60) -> None:
        _run(*self.ns.argv("runuser", "-u", "postgres", "--", *argv), timeout=timeout)

    def start(self) -> Postgres:
        os.chmod(self.data, 0o700)
        shutil.chown(self.data, "postgres", "postgres")
        cluster = self.data / "cluster"
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(cluster), "-A", "trust",
                          "-U", "postgres", "--no-sync", "--no-instructions")  # fmt: skip
        with open(cluster / "pg_hba.conf", "a") as fh:
            fh.write(f"host all all {self.subnet_cidr} trust\n")
        options = (
            f"-c listen_addresses={self.ns.addr} -p {PG_PORT} -c unix_socket_directories='' "
            "-c fsync=off -c max_connections=200"
        )
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(cluster), "-l", str(self.log),
                          "-o", options, "-w", "-t", "60", "start")  # fmt: skip
        return self

    def stop(self) -> None:
        cluster = self.data / "cluster"
        if (cluster / "postmaster.pid").exists():
            _run(*self.ns.argv("runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"),
                               "-D", str(cluster), "-m", "immediate", "stop"),
                 check=False, timeout=30)  # fmt: skip
        shutil.rmtree(self.data, ignore_errors=True)


@dataclass
class ServeHost:
    """``nightscan serve --workers N`` in a namespace, with a home folder of its own."""

    ns: Namespace
    database_url: str
    workers: int = 2
    env: dict[str, str] = field(default_factory=dict)
    home: Path = field(default_factory=lambda: temp_folder("home"))
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.ns.addr}:{SERVE_PORT}"

    @property
    def log(self) -> Path:
        return self.home / "serve.log"

    def start(self) -> ServeHost:
        env = {
            **os.environ,
            **self.env,
            "NIGHTSCAN_HOME": str(self.home),
            "NIGHTSCAN_DATABASE_URL": self.database_url,
            "NIGHTSCAN_ACTOR": f"host-{self.ns.addr}",
        }
        argv = self.ns.argv(sys.executable, "-m", "nightscan_tui.cli", "serve",
                            "--workers", str(self.workers), "--host", self.ns.addr,
                            "--port", str(SERVE_PORT), "--no-access-log")  # fmt: skip
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         cwd=REPO, start_new_session=True)  # fmt: skip
        return self

    def crash(self) -> list[int]:
        """kill -9 every process of the host (its parent and every worker)."""
        return kill_namespace_processes(self.ns.name)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        kill_namespace_processes(self.ns.name)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.home, ignore_errors=True)

    def answers(self, path: str = "/health") -> bool:
        try:
            return httpx.get(self.url + path, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


@dataclass
class HAProxy:
    """HAProxy in the root namespace, on the bridge's address, balancing the hosts with health
    checks on /health every 200 ms (down after 2 failures)."""

    bind: str
    port: int
    servers: list[str]
    folder: Path = field(default_factory=lambda: temp_folder("haproxy"))
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.bind}:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "haproxy.log"

    def config(self) -> str:
        lines = [
            "global",
            "  maxconn 2000",
            "  tune.bufsize 262144",  # a whole clip fits, so a failed attempt can be retried
            "defaults",
            "  mode http",
            "  timeout connect 1s",
            "  timeout client 60s",
            "  timeout server 60s",
            "  option http-buffer-request",
            "  retries 3",
            "  retry-on conn-failure empty-response",
            "  option redispatch 1",
            "frontend nightscan",
            f"  bind {self.bind}:{self.port}",
            "  default_backend hosts",
            "backend hosts",
            "  balance roundrobin",
            "  option httpchk GET /health",
            "  default-server inter 200ms fastinter 100ms downinter 200ms fall 2 rise 2",
        ]
        lines += [f"  server host{i} {addr} check" for i, addr in enumerate(self.servers, 1)]
        return "\n".join(lines) + "\n"

    def start(self) -> HAProxy:
        cfg = self.folder / "haproxy.cfg"
        cfg.write_text(self.config())
        _run("haproxy", "-c", "-f", str(cfg))
        with open(self.log, "wb") as out:
            argv = ["haproxy", "-db", "-f", str(cfg)]
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)
