"""The machinery of :class:`~comfy_async.pool.ComfyPool`: one job API over many servers.

* ``needs`` — what a workflow needs of a server (node classes, model files) and what a server
  lacks of it;
* ``breaker`` — each server's health as a circuit breaker (pure, clock passed in);
* ``routing`` — which held job a server with room takes next: warm models first, unless a job
  has waited longer than loading its models would take (pure, tested without a loop);
* ``held`` — the jobs waiting client-side, grouped by what they need, oldest first;
* ``member`` — one server of the pool: its client, health, load, warm models and figures;
* ``v2_server`` — what is particular to a Comfy API v2 server: capability learnt from refusals,
  probes, submission outcomes by idempotency key, cancelling what moved off it;
* ``scheduler`` — placing held jobs, failover (exactly one outcome per job, nothing left to run
  twice on a server that comes back) and the health probes;
* ``installer`` — equipping a server with ComfyUI-Manager installs for held jobs none can run
  (``auto_install``, off by default);
* ``announcer`` — the pool-level event stream.

May import: ``_live`` (sessions adopt the pool's jobs), ``_graph`` (model references),
``_transport`` (the Manager's checks of install sources),
``client``, ``job``, ``events``, ``errors``, ``config``, ``catalogue``. Imported by ``pool``
only.
"""
