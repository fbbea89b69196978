from distributed import LocalCluster

from batchml.scoring.compute import close_client, get_client


def test_one_client_per_process_until_the_settings_change():
    embedded = get_client("", n_workers=1, threads_per_worker=1)
    assert get_client("", n_workers=1, threads_per_worker=1) is embedded
    with LocalCluster(n_workers=1, processes=False, dashboard_address="127.0.0.1:0") as other:
        remote = get_client(other.scheduler_address)
        assert remote is not embedded and remote.scheduler.address == other.scheduler_address
        assert embedded.status != "running"
        assert remote.submit(sum, [1, 2]).result() == 3
        close_client()
