"""Live events: the bus on Redis Streams (``bus``), the in-process fan-out (``hub``), the SSE endpoint machinery
(``sse``), audit entries as live activity (``activity``) and who may see which event (``permissions``).

This package depends on no domain: domains publish through it and pages stream from it. The bus is handed
over explicitly (the web app's state, a worker job's context), never found in ambient state.
"""
