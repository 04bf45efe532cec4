"""Anti-fraud: links between applications, the fraud-ring finder, and (separately) the checks
made at application time.

The ring finder is a library over arrays, usable from a notebook without a database:
:mod:`~puhui.fraud.links` turns identifiers into an interned link table,
:mod:`~puhui.fraud.graph` builds the record graph with hubs removed,
:mod:`~puhui.fraud.rings` finds and scores groups, :mod:`~puhui.fraud.picture` draws one group
for a reviewer, and :mod:`~puhui.fraud.external` reads a bank's legacy CSV. The keys it links on
are opaque (blind indexes from the database, or normalised text from a file): nothing here
needs to read them.
"""
