"""One Dask client per process, shared by every task of the run."""

from __future__ import annotations

import atexit
import logging
import threading

log = logging.getLogger(__name__)
_lock = threading.Lock()
_client = None
_settings: tuple | None = None  # what _client was made for

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


def get_client(scheduler_address: str = "", *, n_workers: int = 2, threads_per_worker: int = 1, processes: bool = False):
    """The process's Dask client: connect to `scheduler_address`, or start a LocalCluster.

    The LocalCluster defaults to worker threads in this process: ONNX Runtime and
    pyarrow release the GIL, so threads score in parallel without copying partitions
    between processes (measured faster and leaner than worker processes; see bench/).
    """
    global _client, _settings
    wanted = (scheduler_address, n_workers, threads_per_worker, processes)
    if _client is not None and _settings != wanted:
        close_client()  # configured for another cluster: do not score on the old one
    with _lock:
        if _client is not None and _client.status == "running":
            return _client
        import dask
        from distributed import Client, LocalCluster

        if scheduler_address:
            _client = Client(scheduler_address, timeout="30s")
            log.info("connected to Dask scheduler %s", scheduler_address)
        else:
            with dask.config.set(_EMBEDDED_CONFIG):  # read when the scheduler and workers start
                cluster = LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=threads_per_worker,
                    processes=processes,
                    # dashboard_address=None still serves HTTP on 0.0.0.0:8787: keep every
                    # listener of the embedded cluster on loopback, on a free port.
                    dashboard_address="127.0.0.1:0",
                    worker_dashboard_address="127.0.0.1:0",
                    silence_logs=logging.WARNING,
                )
            _client = Client(cluster)
            log.info("started a LocalCluster: %d workers x %d threads (processes=%s)", n_workers, threads_per_worker, processes)
        _settings = wanted
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
