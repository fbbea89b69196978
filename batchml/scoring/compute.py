"""One Dask cluster per run, shared by every task of the run.

Within a process, every task shares one client: to `[dask] scheduler_address`, or to an
embedded LocalCluster. When a run's tasks live in several processes (Luigi's `--workers N`
forks one per task), `shared_cluster` starts the run's cluster in a process of its own
(`python -m batchml.scoring.compute`) for all of them, so each Dask worker loads a model once for
the whole run; it stops when the process that owns the run exits.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from batchml.base.setting import count, setting

log = logging.getLogger(__name__)
_lock = threading.Lock()
_client = None
_settings: tuple | None = None  # what _client was made for


@dataclass(frozen=True)
class ClusterSettings:
    """[dask] settings: where scoring runs, an embedded LocalCluster or an existing Dask scheduler (the home of their
    defaults)."""

    scheduler_address: str = setting("", "Existing Dask scheduler (tcp://host:8786); empty starts a LocalCluster.")
    n_workers: int = count(2, "LocalCluster workers.")
    threads_per_worker: int = count(1, "LocalCluster threads per worker.")
    processes: bool = setting(False, "LocalCluster workers as processes instead of threads.")
    in_process_rows: int = count(
        100_000,
        "A date of at most this many rows is scored on threads of the run's own process, as many as the "
        "LocalCluster's, without starting it (0: always on the cluster). Only where the cluster would be the embedded "
        "one of threads: with a scheduler_address, processes or `luigi --workers N` every date is scored on the "
        "cluster.",
        least=0,
    )


def threads_here(cluster: ClusterSettings, *, forked: bool) -> int:
    """The threads a small date is scored on in this process (the embedded cluster's); 0 when the run's cluster is
    elsewhere (a scheduler, worker processes, a cluster shared by forked task processes) or small dates go to it too.

    The embedded cluster's workers are threads of this process: scoring on as many threads of a pool gives the same
    files and parallelism without importing `distributed` and starting a scheduler (0.15-0.25 s of CPU per run).
    """
    if cluster.scheduler_address or cluster.processes or forked or not cluster.in_process_rows:
        return 0
    return cluster.n_workers * cluster.threads_per_worker


# The embedded cluster runs a few long tasks (about one second per partition) on as many
# cores. Distributed's defaults suit an interactive cluster: a stack sampler every 10 ms per
# worker, an event-loop tick every 20 ms per server, memory checks every 100 ms. Scoring 5M
# rows on 2 cores, they kept the IO-loop thread busy for 0.4-0.8 s of CPU; 0.1-0.15 s here.
_EMBEDDED_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def get_client(
    scheduler_address: str = ClusterSettings.scheduler_address,
    *,
    n_workers: int = ClusterSettings.n_workers,
    threads_per_worker: int = ClusterSettings.threads_per_worker,
    processes: bool = ClusterSettings.processes,
):
    """The process's Dask client: connect to `scheduler_address`, or start a LocalCluster.

    The LocalCluster defaults to worker threads in this process: ONNX Runtime and
    pyarrow release the GIL, so threads score in parallel without copying partitions
    between processes (measured faster and leaner than worker processes: `bench/score.py
    --runtime pyfunc --processes` gave 0.61 of the limit and 1.3 GiB, threads 0.77-0.81 and 0.6 GiB).
    """
    global _client, _settings
    wanted = (scheduler_address, n_workers, threads_per_worker, processes)
    if _client is not None and _settings != wanted:
        close_client()  # configured for another cluster: do not score on the old one
    with _lock:
        if _client is not None and _client.status == "running":
            return _client
        from distributed import Client

        if scheduler_address:
            _client = Client(scheduler_address, timeout="30s")
            log.info("connected to Dask scheduler %s", scheduler_address)
        else:
            _client = Client(_local_cluster(n_workers, threads_per_worker, processes))
            log.info(
                "started a LocalCluster: %d workers x %d threads (processes=%s)",
                n_workers,
                threads_per_worker,
                processes,
            )
        _settings = wanted
        atexit.register(close_client)
        return _client


def _local_cluster(n_workers: int, threads_per_worker: int, processes: bool, *, reachable: bool = False):
    """A LocalCluster on loopback; `reachable` serves TCP (worker threads alone default to in-process transport)."""
    import dask
    from distributed import LocalCluster

    network = {"protocol": "tcp", "host": "127.0.0.1"} if reachable else {}
    with dask.config.set(_EMBEDDED_CONFIG):  # read when the scheduler and workers start
        return LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=processes,
            **network,
            # dashboard_address=None still serves HTTP on 0.0.0.0:8787: keep every
            # listener of the embedded cluster on loopback, on a free port.
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address="127.0.0.1:0",
            silence_logs=logging.WARNING,
        )


def shared_cluster(owner: int, *, n_workers: int, threads_per_worker: int) -> str:
    """The address of the cluster shared by the task processes of run `owner` (a pid).

    The first caller starts it, under a lock; the others read its address.
    """
    state = Path(tempfile.gettempdir(), f"batchml-dask-{owner}.json")
    with open(state.with_suffix(".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if state.exists():
            known = json.loads(state.read_text())
            if _alive(known["pid"]):
                return known["address"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "batchml.scoring.compute", str(owner), str(n_workers), str(threads_per_worker)],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # not killed with the task process that happened to start it
        )
        assert proc.stdout is not None  # stdout=PIPE
        line = proc.stdout.readline()  # the address, once the cluster is up
        proc.stdout.close()
        if not line.startswith("tcp://"):
            proc.kill()
            raise RuntimeError(
                f"the run's shared Dask cluster did not start (exit {proc.wait()}, said {line.strip()!r})"
            )
        address = line.strip()
        state.write_text(json.dumps({"address": address, "pid": proc.pid}))
        log.info("started the run's shared Dask cluster at %s for luigi pid %d", address, owner)
        return address


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _serve(owner: int, n_workers: int, threads_per_worker: int) -> None:
    """Run a cluster until process `owner` exits, then say what each worker loaded, and stop."""
    import select

    from distributed import Client

    state = Path(tempfile.gettempdir(), f"batchml-dask-{owner}.json")
    with _local_cluster(n_workers, threads_per_worker, False, reachable=True) as cluster, Client(cluster) as client:
        print(cluster.scheduler_address, flush=True)
        try:
            fd = os.pidfd_open(owner)
            select.select([fd], [], [])  # readable when the owner exits
        except ProcessLookupError:
            pass
        sessions = client.run(lambda: sorted(__import__("batchml.scoring.scoring", fromlist=["_models"])._models))
        print(
            f"batchml: the run's shared Dask cluster stops; ONNX sessions per worker: {sessions}",
            file=sys.stderr,
            flush=True,
        )
    state.unlink(missing_ok=True)
    state.with_suffix(".lock").unlink(missing_ok=True)


def close_client() -> None:
    global _client
    with _lock:
        if _client is None:
            return
        cluster = _client.cluster
        _client.close()
        if cluster is not None:
            cluster.close()
        _client = None


if __name__ == "__main__":
    _serve(*map(int, sys.argv[1:4]))
