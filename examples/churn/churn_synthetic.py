"""A synthetic subscription-accounts table: one snapshot row per account per day, with its churn outcome.

Deterministic per (seed, date): the same date always yields the same rows, so a re-run
scores the same data and labels can be derived again later. From `drift_start` on, both
the inputs (a new cheaper `lite` plan takes share, more accounts from Brazil and India,
more paid-search signups on Android, newer accounts) and the relation between inputs and
churn change (lite accounts and inactive ones churn much more, autopay no longer protects),
so a model trained before the drift is both out of distribution and miscalibrated.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

COUNTRIES = np.array(["US", "CA", "GB", "DE", "FR", "IN", "AU", "JP", "BR", "MX"])
REGION_OF = {
    "US": "na",
    "CA": "na",
    "GB": "eu",
    "DE": "eu",
    "FR": "eu",
    "IN": "apac",
    "AU": "apac",
    "JP": "apac",
    "BR": "latam",
    "MX": "latam",
}
PLANS = np.array(["lite", "basic", "standard", "premium"])
CHANNELS = np.array(["organic", "paid_search", "referral", "partner"])
DEVICES = np.array(["ios", "android", "web"])
_PRICE = {"lite": 6.0, "basic": 15.0, "standard": 30.0, "premium": 60.0}

# Shares before and after the drift.
_COUNTRY_P = (
    [0.30, 0.06, 0.12, 0.12, 0.08, 0.08, 0.05, 0.05, 0.08, 0.06],
    [0.18, 0.04, 0.08, 0.08, 0.05, 0.20, 0.04, 0.03, 0.22, 0.08],
)
_PLAN_P = ([0.0, 0.45, 0.35, 0.20], [0.40, 0.25, 0.22, 0.13])
_CHANNEL_P = ([0.45, 0.25, 0.20, 0.10], [0.25, 0.50, 0.15, 0.10])
_DEVICE_P = ([0.35, 0.35, 0.30], [0.25, 0.55, 0.20])


def accounts(
    date: dt.date,
    *,
    rows_per_day: int,
    seed: int,
    drift_start: dt.date | str | None = None,
    bad_row_share: float = 0.0,
    missing_login_share: float = 0.08,
    missing_spend_share: float = 0.03,
) -> pd.DataFrame:
    """The account snapshots of `date`, as the billing warehouse exports them (outcome included)."""
    if isinstance(drift_start, str):
        drift_start = dt.date.fromisoformat(drift_start) if drift_start else None
    drifted = int(drift_start is not None and date >= drift_start)
    rng = np.random.default_rng([seed, date.toordinal()])
    n = rows_per_day

    country = COUNTRIES[rng.choice(len(COUNTRIES), n, p=_COUNTRY_P[drifted])]
    region = pd.Series(country).map(REGION_OF).to_numpy()
    plan = PLANS[rng.choice(len(PLANS), n, p=_PLAN_P[drifted])]
    channel = CHANNELS[rng.choice(len(CHANNELS), n, p=_CHANNEL_P[drifted])]
    device = DEVICES[rng.choice(len(DEVICES), n, p=_DEVICE_P[drifted])]
    new_share = 0.45 if drifted else 0.15  # accounts younger than a few months
    young = rng.random(n) < new_share
    tenure = np.where(young, rng.exponential(45, n), rng.exponential(700, n)).astype("int64").clip(0, 4000)
    spend = np.round(pd.Series(plan).map(_PRICE).to_numpy() * rng.lognormal(0, 0.25, n), 2)
    login = rng.exponential(12 if drifted else 7, n).astype("int64").clip(0, 365)
    tickets = rng.poisson(0.8 if drifted else 0.4, n).astype("int64")
    autopay = rng.random(n) < (0.45 if drifted else 0.6)
    no_login = rng.random(n) < missing_login_share  # never logged in to the app: unknown, not zero
    no_spend = rng.random(n) < missing_spend_share  # billing not reconciled yet

    churned = rng.random(n) < _churn_probability(
        plan, country, channel, device, tenure, spend, login, no_login, tickets, autopay, drifted
    )

    seconds = rng.integers(0, 86_400, n)
    snapshot_at = np.datetime64(date, "us") + seconds.astype("timedelta64[s]")
    frame = pd.DataFrame(
        {
            "region": region,
            "account_id": rng.choice(5_000_000, n, replace=False).astype("int64") + 1,
            "snapshot_at": snapshot_at,
            "country": country,
            "plan": plan,
            "channel": channel,
            "device": device,
            "tenure_days": tenure,
            "monthly_spend": np.where(no_spend, np.nan, spend),
            "days_since_last_login": pd.array(np.where(no_login, 0, login), dtype="Int64"),
            "support_tickets_30d": tickets,
            "autopay": autopay,
            "churned": churned,
        }
    )
    frame.loc[no_login, "days_since_last_login"] = pd.NA
    if bad_row_share > 0:
        _corrupt(frame, rng, bad_row_share)
    return frame


def _churn_probability(
    plan, country, channel, device, tenure, spend, login, no_login, tickets, autopay, drifted: int
) -> np.ndarray:
    """The chance an account churns within the outcome window; the relation itself changes with the drift."""
    gap = np.minimum(login, 60)
    logit = (
        -2.4
        + 0.9 * (plan == "basic")
        - 0.6 * (plan == "premium")
        + 0.045 * gap
        + 0.7 * no_login
        - 0.0009 * np.minimum(tenure, 1500)
        + 0.45 * tickets
        - 0.7 * autopay
        + 0.3 * (channel == "paid_search")
        + 0.2 * (device == "web")
    )
    if drifted:  # price-sensitive new markets: lite and inactive accounts leave, autopay no longer holds them
        logit = (
            logit
            + 1.6 * (plan == "lite")
            + 0.05 * gap
            + 0.7 * autopay
            + 0.6 * np.isin(country, ["BR", "IN"])
            + 0.025 * np.nan_to_num(spend - 20.0) * (plan != "premium")
            - 0.6
        )
    return 1.0 / (1.0 + np.exp(-logit))


def _corrupt(frame: pd.DataFrame, rng, share: float) -> None:
    """Break a few rows the way real exports do, so the quarantine path runs every day."""
    bad = np.flatnonzero(rng.random(len(frame)) < share)
    kinds = rng.integers(0, 4, len(bad))
    frame["plan"] = frame["plan"].astype(object)
    frame.loc[bad[kinds == 0], "plan"] = "gold"  # a plan the contract does not know
    frame.loc[bad[kinds == 1], "monthly_spend"] = -frame.loc[bad[kinds == 1], "monthly_spend"].abs() - 1.0
    frame.loc[bad[kinds == 2], "tenure_days"] = -3
    frame.loc[bad[kinds == 3], "country"] = "XX"
