"""SourceData (external) and ExtractFeatures: a date's validated features and quarantine."""

from __future__ import annotations

import luigi

from batchml.store.layout import FEATURES
from batchml.dataset.extract import extract_date
from batchml.base.provenance import new_run_id
from tasks.config import hooks, load_contract, make_source, make_storage, schema, storage
from tasks.targets import PartitionTarget
from tasks.identity import InProject


class SourceData(InProject, luigi.ExternalTask):
    """The rows of a date at the source; missing means Luigi's missing-data exit code.

    Files with no row of the date (a header-only CSV, a 0-row Parquet) or without their
    completeness marker are missing too: a later run picks the date up when its rows arrive.
    """

    date = luigi.DateParameter()

    def complete(self) -> bool:
        return make_source().exists(self.date)


class ExtractFeatures(InProject, luigi.Task):
    """features/date=D (valid rows, model features) and quarantine/date=D (rejected rows, reasons)."""

    date = luigi.DateParameter()

    def requires(self):
        return SourceData(self.date)

    def output(self) -> PartitionTarget:
        return PartitionTarget(FEATURES, self.date)

    def run(self):
        self.set_status_message("validating rows against the schema contract")
        result = extract_date(
            make_source(),
            load_contract(),
            make_storage(),
            self.date,
            transform=hooks()["features"],
            run_id=new_run_id(),
            max_reject_share=schema().max_reject_share,
            rows_per_file=storage().rows_per_file,
        )
        self.set_status_message(f"{result.rows_valid} valid, {result.rows_rejected} quarantined of {result.rows_in}")
