"""The churn example's hooks: synthetic snapshots, the features transform, labels and the training recipe.

Named in luigi.cfg as `churn_hooks:<function>`; batchml imports this module from the
project folder.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from churn_synthetic import accounts  # noqa: F401  ([source] generator = churn_hooks:accounts)

CATEGORICAL = ["country", "plan", "signup_channel", "device"]


def features(rows: pd.DataFrame) -> pd.DataFrame:
    """Validated snapshots -> the model's inputs.

    Categoricals stay text (the model one-hot encodes them); numbers are float64 with NaN
    where the data is missing (the model imputes), plus two derived ones.
    """
    tenure = rows["tenure_days"].to_numpy(dtype="float64")
    login = rows["days_since_last_login"].to_numpy(dtype="float64", na_value=np.nan)
    out = {c: rows[c].astype(object).to_numpy() for c in CATEGORICAL}
    out.update(
        {
            "tenure_days": tenure,
            "monthly_spend": rows["monthly_spend"].to_numpy(dtype="float64", na_value=np.nan),
            "days_since_last_login": login,
            "support_tickets_30d": rows["support_tickets_30d"].to_numpy(dtype="float64"),
            "autopay": rows["autopay"].to_numpy(dtype="float64"),
            "log_tenure": np.log1p(tenure),
            "inactive_share": login / (tenure + 1.0),  # NaN where the last login is unknown
        }
    )
    return pd.DataFrame(out)


def churned(rows: pd.DataFrame) -> pd.Series:
    """The label: 1 if the account churned, else 0 (the contract's classes)."""
    return rows["churned"].astype("int64")


def recipe(frame: pd.DataFrame, settings):
    """One-hot categoricals, imputed and scaled numbers, then a logistic regression.

    `settings.params`: C (inverse regularisation) and max_iter. scikit-learn is imported
    here: every task that calls a hook imports this module, and only training needs it.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    inputs = list(settings.inputs)
    categorical = [c for c in inputs if c in CATEGORICAL]
    numeric = [c for c in inputs if c not in CATEGORICAL]
    params = {"C": 1.0, "max_iter": 500, **settings.params}
    model = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
                        (
                            "numeric",
                            Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                            numeric,
                        ),
                    ]
                ),
            ),
            (
                "classifier",
                LogisticRegression(C=float(params["C"]), max_iter=int(params["max_iter"]), random_state=settings.seed),
            ),
        ]
    )
    return model.fit(frame[inputs], frame[settings.label].to_numpy())
