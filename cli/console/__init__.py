"""`jobstack console`: the operators' web console, served on this machine.

It reads what the other `jobstack` commands read (the same Target: flags, variables or a deployed stack's
outputs and secret) and acts through the same code (`cli/retrying.py`, `db.cancel_jobs`, `cli/dlq.py`).
`sources` gathers what a page shows, `actions` changes things, `guard` decides who may ask, `app` maps
URLs to pages, `charts` draws the throughput as SVG on the server, and `server` binds and serves.
"""
