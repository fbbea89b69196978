"""`batchml init` on a sample with nulls: the default null checks suit it, no [checks] override is written."""

import configparser

from batchml.project.starter import init_project
from tests.unit.test_init import orders, write_csv


def test_a_sample_with_a_fifth_of_a_column_null_gets_no_null_rate_override(tmp_path):
    rows = orders()
    rows.loc[rows.index % 5 == 0, "Amount"] = None  # an optional amount: a model input with 20% nulls
    sample = write_csv(rows, tmp_path / "orders_2026-06-01.csv.gz")
    init_project(tmp_path / "shop", sample)
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(tmp_path / "shop" / "luigi.cfg")
    assert not cfg.has_option("checks", "max_null_rate")  # nullable columns are judged against their training window
    assert "nullable: true" in (tmp_path / "shop" / "contract.yaml").read_text().split("amount:")[1].splitlines()[0]
