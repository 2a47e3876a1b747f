"""The pipeline: the imperative shell around the pure steps.

    spine.py       one message: accept ─► limits ─► parse ─► dedupe ─► guards ─► authenticate
                   ─► thread ─► (agent's answer | customer mail ─► classify) ─► ticket change ─► write
    tickets.py     the store side of the ticket step: facts before, the Change written after
    bounce.py      a delivery failure: an event on its ticket, hard bounces suppressed
    bulk.py        imports: many messages per transaction, parsed ahead in a worker (readahead.py)
    retry.py       housekeeping: quarantined and interrupted messages, again, a bounded number of times
"""

from mailtriage.pipeline.bulk import process_many
from mailtriage.pipeline.retry import MAX_ATTEMPTS, retry_quarantined
from mailtriage.pipeline.spine import accept, process, process_stored, quarantine

__all__ = ["MAX_ATTEMPTS", "accept", "process", "process_many", "process_stored", "quarantine",
           "retry_quarantined"]
