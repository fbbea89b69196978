"""What every stage uses: errors, failpoints, redaction, retries, progress, provenance hashes, the project's hooks."""
