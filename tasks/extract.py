"""SourceData (external) and ExtractFeatures: a date's validated features and quarantine."""

from __future__ import annotations

import datetime as dt

import luigi

from batchml.base.provenance import new_run_id
from batchml.dataset.extract import ExtractResult, extract_date
from batchml.store.layout import FEATURES
from tasks.config import hooks, load_contract, make_source, make_storage, schema, storage
from tasks.identity import InProject
from tasks.targets import PartitionTask


class SourceData(InProject, luigi.ExternalTask):
    """The rows of a date at the source; missing means Luigi's missing-data exit code.

    Files with no row of the date (a header-only CSV, a 0-row Parquet) or without their
    completeness marker are missing too: a later run picks the date up when its rows arrive.
    """

    date = luigi.DateParameter()

    def complete(self) -> bool:
        """Whether the source has the date's rows."""
        return make_source().exists(self.date)


def extract(date: dt.date, *, replace: bool = False) -> ExtractResult:
    """Commit a date's features and quarantine from the source, with the configured contract, hook and limits.

    `replace` re-extracts a committed date (a changed source, contract or hook; a damaged date).
    """
    return extract_date(
        make_source(),
        load_contract(),
        make_storage(),
        date,
        transform=hooks()["features"],
        run_id=new_run_id(),
        max_reject_share=schema().max_reject_share,
        rows_per_file=storage().rows_per_file,
        replace=replace,
    )


class ExtractFeatures(PartitionTask):
    """features/date=D (valid rows, model features) and quarantine/date=D (rejected rows, reasons)."""

    dataset = FEATURES

    def requires(self):
        """The date's rows at the source."""
        return SourceData(self.date)

    def run(self):
        """Validate and extract the date's rows."""
        self.set_status_message("validating rows against the schema contract")
        result = extract(self.date)
        self.set_status_message(f"{result.rows_valid} valid, {result.rows_rejected} quarantined of {result.rows_in}")
