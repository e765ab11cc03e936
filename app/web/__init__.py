"""Web plumbing shared by every domain: templates, middleware, error pages."""
