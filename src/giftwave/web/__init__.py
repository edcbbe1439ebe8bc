"""Server-rendered pages (Jinja2), no build step."""
