"""Webhooks: state-change events pushed to partner institutions, signed per Standard Webhooks.

``signing`` makes and checks the signatures, ``endpoints`` holds the partner-facing use cases
(register, list, disable, rotate the secret, read the delivery log) and the event catalogue,
``dispatcher`` fans the outbox out to endpoints and delivers with retries, and ``cli`` runs
the dispatcher as a process. docs/webhooks.md is the partner's guide.
"""
