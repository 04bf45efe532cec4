"""Servicing: what happens to a loan after disbursement.

Pure rules (no I/O) — ``allocation`` (who gets a payment), ``ledger`` (a schedule line as a
value), ``delinquency`` (days past due, buckets, default interest), ``payoff`` (what settles a
loan today) and ``rescheduling`` (the schedule after a prepayment) — and use cases that each
open one unit of work: ``repayments.post_repayment``, ``prepayment.prepay`` /
``settle_early`` / ``payoff_quote``, ``status.loan_status`` and the nightly
``batch.refresh_delinquency``. The rules are described in docs/servicing.md.
"""
