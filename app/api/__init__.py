"""The public JSON API under ``/api/v1``: the same service calls as the pages, as JSON."""
