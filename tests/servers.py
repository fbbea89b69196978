"""Real servers for tests, on 127.0.0.1 and free ports, stopped by whoever starts them."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BIN = Path(sys.executable).parent


def wait_until(
    ready, what: str, timeout: float = 60, proc: subprocess.Popen | None = None, log: Path | None = None
) -> None:
    """Poll `ready()` until it is true; fail naming `what` (and the server's log) otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.1)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise TimeoutError(f"{what} not ready after {timeout} s (exit {proc.poll() if proc else None})\n{tail}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


class Server:
    """A command in its own process group, with its output in a log file."""

    def __init__(self, name: str, argv: list[str], *, cwd: Path, health: str, env: dict | None = None):
        self.name, self.argv, self.cwd, self.health, self.env = name, argv, cwd, health, env
        self.log = cwd / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> Server:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_until(lambda: http_ok(self.health), self.name, timeout, self.proc, self.log)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the whole process group (servers fork workers) and wait for it."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None
        wait_until(lambda: not http_ok(self.health), f"{self.name} stopping", timeout=30)


def mlflow_server(
    tmp_path: Path, port: int, *, artifacts_destination: str | None = None, env: dict | None = None
) -> Server:
    """`mlflow server` with a SQLite store under tmp_path, serving artifacts itself."""
    home = tmp_path / "mlflow-server"
    home.mkdir(exist_ok=True)
    argv = [
        str(BIN / "mlflow"), "server",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
        "--artifacts-destination", artifacts_destination or str(home / "artifacts"),
    ]  # fmt: skip
    return Server("mlflow-server", argv, cwd=home, health=f"http://127.0.0.1:{port}/health", env=env)


def moto_server(tmp_path: Path, port: int) -> Server:
    """A moto S3 server: an S3 endpoint on 127.0.0.1 for object storage tests."""
    home = tmp_path / "moto"
    home.mkdir(exist_ok=True)
    return Server(
        "moto",
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        cwd=home,
        health=f"http://127.0.0.1:{port}/moto-api/",
    )


def s3_env(port: int) -> dict[str, str]:
    """What a process needs to reach the moto server at `port` through boto3, s3fs and MLflow."""
    return {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "MLFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


class DaskCluster:
    """`dask scheduler` and `dask worker` processes on 127.0.0.1, each in its own process group
    and folder with its output in a log file, as a cluster on other hosts would be: they share
    nothing with the test but the network and the environment they are given."""

    def __init__(self, home: Path, port: int, *, env: dict | None = None):
        self.home, self.env = home, env
        self.address = f"tcp://127.0.0.1:{port}"
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, workers: int = 2) -> DaskCluster:
        self._spawn(
            "scheduler",
            [
                str(BIN / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                self.address.rsplit(":", 1)[1],
                "--no-dashboard",
            ],
        )
        for i in range(workers):
            self.add_worker(f"w{i}")
        return self

    def add_worker(self, name: str, env: dict | None = None, timeout: float = 60) -> Path:
        """Start worker `name` (one thread, behind a nanny) and wait until the scheduler has it; its log."""
        folder = self.home / name
        argv = [str(BIN / "dask"), "worker", self.address, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1"]
        argv += ["--name", name, "--local-directory", str(folder), "--no-dashboard"]
        proc = self._spawn(name, argv, env)
        wait_until(lambda: name in self.worker_names(), f"dask worker {name}", timeout, proc, self.log(name))
        return self.log(name)

    def worker_names(self) -> set[str]:
        from distributed import Client

        try:
            with Client(self.address, timeout="5s") as client:
                return {w["name"] for w in client.scheduler_info(n_workers=-1)["workers"].values()}
        except OSError:
            return set()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal a process's whole group (the nanny and its worker) and wait for it."""
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def stop(self) -> None:
        for name in [n for n in self.procs if n != "scheduler"] + ["scheduler"] * ("scheduler" in self.procs):
            proc = self.procs[name]
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill(name)
            self.procs.pop(name, None)

    def log(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def _spawn(self, name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
        (self.home / name).mkdir(parents=True, exist_ok=True)
        with open(self.log(name), "ab") as log:
            proc = subprocess.Popen(
                argv,
                cwd=self.home / name,
                env={**(self.env or os.environ), **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc


class BasicAuthProxy:
    """An HTTP reverse proxy on 127.0.0.1 that forwards to `upstream` only the requests carrying
    `user:password` (HTTP basic auth), and answers 401 to the others: a tracking server behind an
    authenticating gateway. Runs in the test's process on a thread; `rejected` counts the 401s."""

    def __init__(self, upstream: str, user: str, password: str):
        import base64

        parts = upstream.removeprefix("http://").split(":")
        self.upstream = (parts[0], int(parts[1].rstrip("/")))
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.rejected = 0
        self.server = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> BasicAuthProxy:
        import threading
        from http.server import ThreadingHTTPServer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def _handler(self):
        import http.client
        from http.server import BaseHTTPRequestHandler

        proxy = self
        hop = {"authorization", "host", "connection", "keep-alive", "transfer-encoding", "content-length"}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # the test's output is the run's, not the proxy's
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    while self.rfile.readline().strip():  # trailers, then the blank line
                        pass
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in hop:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _forward(self):
                body = self._body()
                if self.headers.get("Authorization") != proxy.expected:
                    proxy.rejected += 1
                    self._reply(401, [("WWW-Authenticate", 'Basic realm="mlflow"')], b"unauthorized")
                    return
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=120)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in hop}
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    response = conn.getresponse()
                    self._reply(response.status, response.getheaders(), response.read())
                finally:
                    conn.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward

        return Handler


def postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs: Debian's newest /usr/lib/postgresql/N/bin, else the folder of
    `pg_ctl` on PATH; None when PostgreSQL is not installed."""
    import shutil

    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    if installed:
        return installed[-1].parent
    found = shutil.which("pg_ctl")
    return Path(found).resolve().parent if found else None


class Postgres:
    """A PostgreSQL server on 127.0.0.1:`port`, its data folder and unix socket in a folder of its own, with a
    superuser `batchml` trusted without a password. PostgreSQL refuses to run as root: when the tests run as root
    (CI), the server runs as the `postgres` account (Debian's package makes it) or else `nobody`, in a folder of the
    system's temporary directory owned by that user (pytest's own folders are private to root); it is removed on
    stop."""

    USER = "batchml"

    def __init__(self, home: Path, port: int, bindir: Path):
        self.port, self.bindir, self.log = port, bindir, home / "postgres.log"
        self.owner: tuple[int, int] | None = None
        self.home = home
        if os.geteuid() == 0:
            import tempfile

            account = next(a for a in (_account("postgres"), _account("nobody")) if a is not None)
            self.owner = (account.pw_uid, account.pw_gid)
            self.home = Path(tempfile.mkdtemp(prefix="batchml-pg-"))
            os.chown(self.home, *self.owner)
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> Postgres:
        data = self.home / "data"
        self._run([str(self.bindir / "initdb"), "-D", str(data), "-U", self.USER, "--auth=trust", "-E", "UTF8"]
                  + ["--no-locale", "--no-sync"])  # fmt: skip
        settings = ["listen_addresses=127.0.0.1", f"port={self.port}", f"unix_socket_directories={self.home}"]
        settings += ["fsync=off", "synchronous_commit=off", "full_page_writes=off"]  # a test's data need not survive
        argv = [str(self.bindir / "postgres"), "-D", str(data)] + [a for s in settings for a in ("-c", s)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=self.home, stdout=log, stderr=subprocess.STDOUT, **self._as_owner())
        wait_until(self.ready, "postgres", timeout, self.proc, self.log)
        return self

    def ready(self) -> bool:
        isready = [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.USER]
        return subprocess.run(isready, capture_output=True).returncode == 0

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of `database` on this server, through psycopg (3)."""
        return f"postgresql+psycopg://{self.USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database `name`; its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.USER} dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown (SIGINT: clients disconnected, no wait for them), then remove a folder of its own."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.proc = None
        if self.owner is not None:
            import shutil

            shutil.rmtree(self.home, ignore_errors=True)

    def _as_owner(self) -> dict:
        """Popen arguments: its own process group, and the unprivileged account's ids when running as root."""
        if self.owner is None:
            return {"start_new_session": True}
        return {"start_new_session": True, "user": self.owner[0], "group": self.owner[1], "extra_groups": []}

    def _run(self, argv: list[str]) -> None:
        with open(self.log, "ab") as log:
            done = subprocess.run(argv, cwd=self.home, stdout=log, stderr=subprocess.STDOUT, **self._as_owner())
        if done.returncode:
            raise RuntimeError(f"{argv[0]} exited {done.returncode}\n{self.log.read_text()[-3000:]}")


def _account(name: str):
    import pwd

    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


class Webhook:
    """A webhook on 127.0.0.1 in this process: answers each POST with the next of `statuses` (then 200), and queues what
    it got."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.received: queue.Queue = queue.Queue()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hook.received.put({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T0/B0/xyzSECRETpath"

    def get(self, timeout: float = 10) -> dict:
        return self.received.get(timeout=timeout)

    def __enter__(self) -> Webhook:
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
