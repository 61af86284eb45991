"""Jinja2: `{{ edge_image("hero", "cat.jpg", alt="A cat") }}` and `{{ edge_preloads() }}`.

    from jinja2 import Environment, FileSystemLoader
    from edge.library import EdgeImages
    from edge.integrations.jinja import EdgeImageExtension, render

    env = Environment(loader=FileSystemLoader("templates"), extensions=[EdgeImageExtension])
    env.edge_images = EdgeImages.from_config("edge.toml", base_url="https://img.example.com")
    html, preloads = render(env.get_template("page.html"), title="Home")  # hints in <head>
    # preloads.link_header(): the same hints as a Link header value

`edge_image(rule, master, alt=..., form="img"|"picture", placeholder=False)` prints exactly what
`edge srcset` prints; `edge_preloads()` marks where `render` puts the page's LCP hints.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, Template
from jinja2.ext import Extension
from markupsafe import Markup

from edge.integrations.preloads import Form, Preloads, collecting, image_html, preloads_marker
from edge.library import EdgeImages
from rules.markup import ALT_PLACEHOLDER


class EdgeImageExtension(Extension):
    """Adds the `edge_image` and `edge_preloads` globals; set `environment.edge_images`."""

    def __init__(self, environment: Environment):
        super().__init__(environment)
        environment.extend(edge_images=None)
        environment.globals["edge_image"] = self._image
        environment.globals["edge_preloads"] = lambda: Markup(preloads_marker())

    def _image(
        self, rule: str, master: str, alt: str = ALT_PLACEHOLDER, form: Form = "img", placeholder: bool = False
    ) -> Markup:
        images: EdgeImages | None = getattr(self.environment, "edge_images", None)
        if images is None:
            raise RuntimeError("set environment.edge_images = EdgeImages(...) before rendering edge_image()")
        return Markup(image_html(images, rule, master, alt=alt, form=form, placeholder=placeholder))


def render(template: Template, /, **context: Any) -> tuple[str, Preloads]:
    """The rendered page, with its LCP images' preload hints where `edge_preloads()` stands."""
    with collecting() as preloads:
        page = template.render(**context)
    return preloads.insert(page), preloads
