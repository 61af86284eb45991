"""Template integrations on the library API (edge.library): Jinja2 (`jinja`) and Django (`django_tags`).

Both print the markup `edge srcset` prints, and collect the preload hints of the page's LCP
images for its `<head>` (`preloads`). jinja2 and django are optional: install the one you use.
"""
