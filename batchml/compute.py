"""One Dask client per process, shared by every task of the run."""

from __future__ import annotations

import atexit
import logging
import threading

log = logging.getLogger(__name__)
_lock = threading.Lock()
_client = None


def get_client(scheduler_address: str = "", *, n_workers: int = 2, threads_per_worker: int = 1, processes: bool = False):
    """The process's Dask client: connect to `scheduler_address`, or start a LocalCluster.

    The LocalCluster defaults to worker threads in this process: ONNX Runtime and
    pyarrow release the GIL, so threads score in parallel without copying partitions
    between processes (measured faster and leaner than worker processes; see bench/).
    """
    global _client
    with _lock:
        if _client is not None and _client.status == "running":
            return _client
        from distributed import Client, LocalCluster

        if scheduler_address:
            _client = Client(scheduler_address, timeout="30s")
            log.info("connected to Dask scheduler %s", scheduler_address)
        else:
            cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=threads_per_worker,
                processes=processes,
                dashboard_address=None,
                silence_logs=logging.WARNING,
            )
            _client = Client(cluster)
            log.info("started a LocalCluster: %d workers x %d threads (processes=%s)", n_workers, threads_per_worker, processes)
        atexit.register(close_client)
        return _client


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
