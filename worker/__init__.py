"""The worker process: arq jobs for the pipeline engine, swarms, pulse and the sandbox supervisor."""
