"""Privacy by design (PIPL): envelope encryption, blind indexes, masking, consent and purpose
checks, the hash-chained audit log and data-subject requests."""
