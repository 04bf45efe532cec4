"""Joint modelling with a data partner by vertical federated learning (issue 6).

The bank (guest, holding the labels) and a data partner (host, holding other features about the
same businesses) train and serve one model without either handing its raw data to the other:

* the party runtime — the operators' CA (:mod:`.pki`), ``party.toml`` (:mod:`.config`), the
  mutual-TLS channel (:mod:`.transport`, :mod:`.channel`);
* sample alignment by ECDH PSI in Curve25519's prime-order group (:mod:`.psi`,
  :mod:`.alignment`; X25519 backends in :mod:`.x25519`);
* Paillier encryption on OpenSSL's Montgomery arithmetic (:mod:`.bignum`, :mod:`.paillier`);
* SecureBoost (:mod:`.secureboost`) and vertical logistic regression (:mod:`.hetero_lr`);
* a whole run per party (:mod:`.runner`) and the two-process demo (:mod:`.demo`);
* online scoring with the partner and the journey's federated credit model with its fallback
  (:mod:`.online`, :mod:`.scoring`, :mod:`.live_model`, :mod:`.artifact`, :mod:`.partner`).

docs/federated.md has each protocol's messages, what each side learns, and the threat model.
"""
