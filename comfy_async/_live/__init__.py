"""The live session: one WebSocket, its reader, and the routing of events to jobs.

Owns the session (jobs in flight, submit, attach, reconciliation, silent-job checks), the
connection (one WebSocket, one reader task, the reconnect supervisor), the dispatcher (prompt id
→ bounded per-job stream, never awaiting a consumer), the job backend that settles jobs over
HTTP, the session's background tasks, and batches. The room for further job backends (a Comfy
API v2 poll + SSE backend) and for admission control is here, beside the WebSocket one.

May import: ``_transport`` (requests), ``protocol`` (frames and messages), ``job``, ``events``,
``errors``, ``config``, ``models``. Imported by ``client`` only (and by ``job`` for its stream).
"""
