"""Joint modelling with a data partner by vertical federated learning (issue 6).

The package will hold the protocols that let the bank (guest, holding the labels) and a data
partner (host, holding other features about the same businesses) train and serve one model
without either handing its raw data to the other: sample alignment, SecureBoost-style
gradient boosting, vertical logistic regression, the party runtime and online serving.

Today it holds the first of them, sample alignment by ECDH private set intersection over
ristretto255 (:mod:`puhui.federated.psi`). See docs/federated.md for the message sequences and
what each side learns.
"""
