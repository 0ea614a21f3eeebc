"""The outbox's SQL: every statement over the ``followups`` table, and the rows it gives.

- `rows`: what each read carries, as Protocols the engine, delivery and channels type against;
- `recording`: what an evaluation pass reads and writes (new rows, pending ones, cancellations);
- `claim`: delivery's claim, lease check, outcome, hand back, and the threads' history;
- `orphans`: the claims of workers that provably died, handed back at once;
- `housekeeping`: leases expired, old rows deleted, the next time something is deliverable,
  and the counts /healthz, /metrics and the systemd status show;
- `lookup`: a follow-up by number or key, and the newest ones, for `followupd outbox`;
- `by_hand`: what the user does from the terminal (`followupd outbox retry` and `cancel`).

The rows read are SQLAlchemy rows (or, for `lookup`, ORM objects), typed by
the Protocols of `rows`: no per-row object is built to carry them.
"""
