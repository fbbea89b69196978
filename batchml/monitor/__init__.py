"""What a date's results say: checks, monitoring documents, reports, the dashboard, failures, alerts, backfill plans."""
