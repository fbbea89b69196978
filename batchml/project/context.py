"""One context per process: the project folder, storage (with its Iceberg tables), registry, dataset contract and hooks,
built once.

Every target's exists() and nearly every task asks for the storage, and many for the registry
or the contract. `current_context(key, build)` builds them once per process and configuration:

- `key` is what the caller reads its settings from (tasks/config.py: the settings as Luigi holds
  them in memory, the command line, and the folder and environment that locate the project).
  A change of configuration within the process (a test's settings, Luigi's config helpers,
  another project) gives a new context, never a stale storage.
- the process id is part of the key: a process forked by `luigi --workers N` builds its own,
  because an MLflow client (its SQLAlchemy engine and connection pool) and an object store's
  connections are not safe to share across a fork.
- `reset_context()` forgets it, for what a key cannot see (a contract file edited in place);
  the test suite calls it around every test.

Members are made on first use: a target's exists() opens the storage and nothing else, and a
registry that cannot be reached or a contract that does not parse fails only what needs it.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from batchml.base.errors import ConfigError
from batchml.base.hooks import add_project_path
from batchml.base.retry import RetryPolicy
from batchml.dataset.contract import Contract
from batchml.model.preflight import check_sqlite_store, check_tracking_uri
from batchml.model.registry import Registry, configure_http
from batchml.store.storage import open_storage
from batchml.store.tables import Tables, TableSettings

if TYPE_CHECKING:
    from batchml.store.manifest import Manifest


def in_folder(folder: Path, path: str) -> str:
    """A path setting resolved against `folder` (URLs and absolute paths as given, `~` expanded)."""
    if not path or "://" in path or os.path.isabs(os.path.expanduser(path)):
        return os.path.expanduser(path)
    return str(folder / path)


@dataclass(frozen=True)
class Settings:
    """What a context is built from, as plain values; paths already resolved against the project folder."""

    project_dir: Path
    storage_setting: str  # [storage] root as set, for messages
    storage_root: str  # a folder (absolute) or an object-store URL: the storage and the start-up lock key both use it
    lease_seconds: float
    contract_path: str
    tracking_uri: str
    registered_model: str  # empty: the contract's dataset name
    artifact_location: str  # empty: MLflow's default
    http_request_max_retries: int
    http_request_timeout: int
    retry: RetryPolicy
    hooks: Mapping[str, str]  # role (features, labels, recipe) -> 'module:function', "" when not set
    tables: TableSettings = TableSettings()  # [tables]: the Iceberg catalog each committed date is registered in


@dataclass(frozen=True)
class Context:
    """A process's project, and the storage, registry and contract its settings name."""

    settings: Settings

    @property
    def project_dir(self) -> Path:
        return self.settings.project_dir

    @property
    def hooks(self) -> Mapping[str, str]:
        return self.settings.hooks

    @functools.cached_property
    def storage(self):
        root = self.settings.storage_root
        if "://" not in root and os.path.exists(root) and not os.path.isdir(root):
            raise ConfigError(f"[storage] root = {self.settings.storage_setting}: {root} is a file, not a folder")
        storage = open_storage(root, lease_seconds=self.settings.lease_seconds)
        if self.settings.tables.kept_for(root):
            storage.after_commit = self._commit_table
            storage.tables = self.tables  # batchml's own reads of committed dates go through the tables
        return storage

    @functools.cached_property
    def tables(self) -> Tables:
        """The Iceberg tables of the storage root, in the catalog [tables] names; each table loaded once per process for
        reads, and kept current by this process's own commits."""
        return Tables(self.settings.storage_root, self.settings.tables)

    def _commit_table(self, dataset: str, date: dt.date, manifest: Manifest) -> None:
        """After a date's manifest commit, under its lock: the date's snapshot in the dataset's table."""
        if dataset in self.settings.tables.datasets:
            self.tables.commit_manifest(self.storage, dataset, date, manifest)

    def heal_tables(self, date: dt.date) -> list[str]:
        """Commit to its table each dataset of `date` whose table files are not its manifest's (a run killed between
        the two commits); the datasets healed. The rerun of a finished date calls it (tasks/daily.py)."""
        if not self.settings.tables.kept_for(self.settings.storage_root) or not self.tables.catalog_exists():
            return []
        healed = []
        for dataset in self.settings.tables.datasets:
            manifest = self.storage.manifest(dataset, date)
            behind = manifest is not None and self.tables.check(dataset, date, manifest.files)
            if behind and self.tables.heal(self.storage, dataset, date)[1]:  # under the date's lock
                healed.append(dataset)
        return healed

    @functools.cached_property
    def contract(self) -> Contract:
        return Contract.load(self.settings.contract_path)

    @functools.cached_property
    def registry(self) -> Registry:
        s = self.settings
        check_tracking_uri(s.tracking_uri)  # named errors before MLflow's own
        check_sqlite_store(s.tracking_uri)
        configure_http(s.http_request_max_retries, s.http_request_timeout)
        return Registry(
            s.tracking_uri,
            s.registered_model or self.contract.dataset,
            s.artifact_location,
            retry=s.retry,
            # every process of the project (pods, --workers N); the storage opened only when a lock is taken
            lock=lambda name: self.storage.locked(name),
        )


def build_context(settings: Settings) -> Context:
    """A new context; the project's modules (its hooks) become importable."""
    add_project_path(settings.project_dir)
    return Context(settings)


_current: tuple[Hashable, Context] | None = None  # (key, context) of the latest configuration
_lock = threading.Lock()


def current_context(key: Hashable, build: Callable[[], Context]) -> Context:
    """The context built for `key` in this process: the one held when the key is unchanged, else `build()`'s."""
    global _current
    key = (os.getpid(), key)
    held = _current
    if held is not None and held[0] == key:
        return held[1]
    with _lock:
        if _current is None or _current[0] != key:
            _current = (key, build())
        return _current[1]


def reset_context() -> None:
    """Forget the process's context: the next call builds it again."""
    global _current
    _current = None
