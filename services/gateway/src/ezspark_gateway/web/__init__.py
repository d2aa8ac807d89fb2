"""Server-rendered pages and their vendored static assets."""
