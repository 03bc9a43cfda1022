"""`regrow reproduce`: rebuild a version from its record, and say whether it comes out the same.

A version records, for each component, everything its fit depended on: the snapshot it
trained on, its seed, its recipe and the user's code (which travel with the stored
artifact), the library versions, the components it reads. :func:`reproduce` refits every
component from that record in a scratch workspace -- its own folder, SQLite catalog and
store, removed afterwards -- and reports for each:

- whether the **fingerprint** recomputed now matches the recorded one (the code re-read
  from the user's files, the installed library versions, the stored rows hashed again);
- whether the rebuilt **artifact has the recorded bytes** (its sha256);
- where it does not, how far its **outputs** are from the original's on the training rows;
- a verdict, ``identical``, ``equivalent`` or ``differs``, with the reasons: a changed user
  function (named), a library version that moved, Python or the platform.

=====================  ==================================================================
:mod:`.reproduction`   :func:`reproduce`: the steps, the scratch workspace, the audit event
:mod:`.graph`          the recorded graph: every component version a rebuild reads
:mod:`.refit`          each component refitted from its record, in graph order
:mod:`.judge`          each refit compared with the original: fingerprint, bytes, outputs
:mod:`.parts`          fingerprint parts recomputed now, and what explains a difference
:mod:`.outputs`        a component's outputs on the same rows, and their largest difference
:mod:`.scratch`        the scratch workspace (kept with ``--keep DIR``)
:mod:`.report`         :class:`ReproduceReport` and :class:`ComponentReproduction`
=====================  ==================================================================
"""

from __future__ import annotations

from regrow.reproduce.report import ComponentReproduction, ReproduceReport, Verdict
from regrow.reproduce.reproduction import DEFAULT_TOLERANCE, SAMPLE_ROWS, Source, reproduce

__all__ = [
    "DEFAULT_TOLERANCE",
    "SAMPLE_ROWS",
    "ComponentReproduction",
    "ReproduceReport",
    "Source",
    "Verdict",
    "reproduce",
]
