"""Django: `{% edge_image "hero" "cat.jpg" alt="A cat" %}` and `{% edge_preloads %}`.

    # settings.py
    EDGE_IMAGES = {"config": "edge.toml", "base_url": "https://img.example.com"}
    TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", ...,
                  "OPTIONS": {"libraries": {"edge_images": "edge.integrations.django_tags"}}}]
    MIDDLEWARE = [..., "edge.integrations.django_tags.PreloadMiddleware"]

    {% load edge_images %}
    <head>{% edge_preloads %}</head>
    <body>{% edge_image "hero" "cat.jpg" alt="A cat" %}</body>

`edge_image` takes `alt`, `form="picture"` and `placeholder=True` and prints exactly what
`edge srcset` prints. The middleware puts the page's LCP hints where `edge_preloads` stands and
sends them as the response's `Link` header; without it `edge_preloads` prints nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django import template
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.safestring import SafeString, mark_safe

from edge.integrations.preloads import MARKER, Form, collecting, image_html, preloads_marker
from edge.library import EdgeImages
from rules.markup import ALT_PLACEHOLDER

register = template.Library()


@functools.cache
def images() -> EdgeImages:
    """One EdgeImages per process, from `settings.EDGE_IMAGES` ({"config", "base_url"}, both optional)."""
    conf = getattr(settings, "EDGE_IMAGES", {})
    return EdgeImages.from_config(conf.get("config"), base_url=conf.get("base_url", ""))


@register.simple_tag
def edge_image(
    rule: str, master: str, alt: str = ALT_PLACEHOLDER, form: Form = "img", placeholder: bool = False
) -> SafeString:
    # Template literals arrive as SafeString: plain str for the library (paths are joined, hashed).
    rule, master, alt = (str.__str__(value) for value in (rule, master, alt))
    return mark_safe(image_html(images(), rule, master, alt=alt, form=form, placeholder=placeholder))


@register.simple_tag
def edge_preloads() -> SafeString:
    return mark_safe(preloads_marker())


class PreloadMiddleware:
    """Collects each page's LCP hints: into `<head>` where `edge_preloads` stands, and `Link`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with collecting() as preloads:
            response = self.get_response(request)
            render = getattr(response, "render", None)
            if callable(render) and not getattr(response, "is_rendered", True):
                response = render()  # a TemplateResponse renders late: still inside the collection
        if not preloads.hints or getattr(response, "streaming", False):
            return response
        if response.get("Content-Type", "").startswith("text/html"):
            charset = response.charset or "utf-8"
            response.content = response.content.decode(charset).replace(MARKER, preloads.html()).encode(charset)
        link = preloads.link_header()
        response["Link"] = f"{response['Link']}, {link}" if response.has_header("Link") else link
        return response
