"""Workflow graphs offline: node schemas, validation, UI-format conversion, seeds, JSON values.

``formats`` tells a UI-format document from an API prompt without loading the rest. The path
of a workflow, top down: ``workflow.Workflow`` holds an API-format graph of plain JSON
values (``json_values``: exact integers of any size). A UI-format document is read once by
``ui_graph`` into a typed graph of nodes and links, which ``ui_widgets`` maps to inputs with the
node schemas (``node_schema``, ``dynamic_inputs`` for v3 nodes) and ``ui_format`` turns into API
format. Validation is one pass: ``validation`` walks the graph and asks ``validation_engine``
about each input, with the same error kinds as the server; ``workflow_checks`` adds the checks
that need the whole graph; ``seeds`` finds the seed inputs.

May import: ``catalogue`` (the node schemas it serves), ``models``, ``errors``. Does no I/O.
"""
