"""Pure business rules: exact money, identifiers, schedules, pricing and lifecycles.

Nothing here imports from the rest of puhui or does I/O, so every rule can be tested
and reasoned about on its own.
"""
