"""The Jinja2 and Django template tags print byte for byte what `edge srcset` prints, and put the
page's LCP preload hints into its <head> (and its Link header)."""

from __future__ import annotations

import django
import jinja2
import pytest
from django.conf import settings
from django.http import HttpResponse
from django.template import engines
from django.test import RequestFactory

from edge.config import load_config
from edge.integrations import django_tags
from edge.integrations.jinja import EdgeImageExtension, render
from edge.integrations.preloads import MARKER
from edge.library import EdgeImages
from tests.support.cli import edge
from tests.support.corpus import TEST_KEYS

BASE = "https://img.example.com"
ALT = "A rocket & its <launch>"
CASES = [  # (rule, master, extra CLI flags, template keyword arguments)
    ("hero", "rocket.jpg", [], {}),
    ("hero", "rocket.jpg", ["--format", "picture"], {"form": "picture"}),
    ("card", "coffee.jpg", ["--placeholder"], {"placeholder": True}),
    ("avatar", "astronaut.jpg", [], {}),
]


@pytest.fixture(scope="module")
def images():
    with EdgeImages(load_config(env={"EDGE_KEYS": TEST_KEYS}), base_url=BASE) as made:
        yield made


@pytest.fixture(scope="module")
def printed() -> list[str]:
    """What `edge srcset` prints for each case (the real command, in its own process)."""
    out = []
    for rule, master, flags, _ in CASES:
        done = edge("srcset", rule, master, "--base-url", BASE, "--alt", ALT, *flags)
        assert done.returncode == 0, done.stderr
        out.append(done.stdout)
    return out


@pytest.fixture(scope="module")
def env(images):
    environment = jinja2.Environment(extensions=[EdgeImageExtension], autoescape=True)
    environment.edge_images = images
    return environment


def _jinja_call(rule: str, master: str, kwargs: dict) -> str:
    args = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    return f"{{{{ edge_image({rule!r}, {master!r}, alt=alt{args}) }}}}"


def test_jinja_prints_what_edge_srcset_prints(env, printed):
    for (rule, master, _, kwargs), expected in zip(CASES, printed, strict=True):
        page = env.from_string(_jinja_call(rule, master, kwargs)).render(alt=ALT)
        assert page + "\n" == expected, (rule, master, kwargs)


def test_jinja_collects_the_lcp_hints_into_head(env):
    template = env.from_string(
        "<head>{{ edge_preloads() }}</head><body>"
        + _jinja_call("hero", "rocket.jpg", {})
        + _jinja_call("card", "coffee.jpg", {})  # not LCP: no hint
        + _jinja_call("hero", "rocket.jpg", {})  # the same image twice: one hint
        + "</body>"
    )
    page, preloads = render(template, alt="x")
    head = page.split("</head>")[0]
    expected = env.edge_images.markup("hero", "rocket.jpg").preload_html("img")
    assert head == "<head>" + expected and MARKER not in page
    assert preloads.link_header() == env.edge_images.markup("hero", "rocket.jpg").link_header("img")
    assert env.from_string("{{ edge_preloads() }}").render() == ""  # outside render(): nothing


def _django() -> None:
    if not settings.configured:
        settings.configure(
            EDGE_IMAGES={"base_url": BASE},
            TEMPLATES=[
                {
                    "BACKEND": "django.template.backends.django.DjangoTemplates",
                    "OPTIONS": {"libraries": {"edge_images": "edge.integrations.django_tags"}},
                }
            ],
        )
        django.setup()


def _django_tag(rule: str, master: str, kwargs: dict) -> str:
    args = "".join(f" {k}={v!r}" if isinstance(v, str) else f" {k}={v}" for k, v in kwargs.items())
    return f'{{% edge_image "{rule}" "{master}" alt=alt{args} %}}'


def test_django_prints_what_edge_srcset_prints(monkeypatch, printed):
    monkeypatch.setenv("EDGE_KEYS", TEST_KEYS)
    _django()
    engine = engines["django"]
    django_tags.images.cache_clear()
    for (rule, master, _, kwargs), expected in zip(CASES, printed, strict=True):
        page = engine.from_string("{% load edge_images %}" + _django_tag(rule, master, kwargs)).render({"alt": ALT})
        assert page + "\n" == expected, (rule, master, kwargs)


def test_the_django_middleware_puts_the_hints_in_head_and_the_link_header(monkeypatch):
    monkeypatch.setenv("EDGE_KEYS", TEST_KEYS)
    _django()

    template = engines["django"].from_string(
        "{% load edge_images %}<head>{% edge_preloads %}</head>" + _django_tag("hero", "rocket.jpg", {})
    )
    middleware = django_tags.PreloadMiddleware(lambda request: HttpResponse(template.render({"alt": "x"})))
    response = middleware(RequestFactory().get("/"))
    markup = django_tags.images().markup("hero", "rocket.jpg")
    assert response.content.decode().startswith("<head>" + markup.preload_html("img") + "</head>")
    assert response["Link"] == markup.link_header("img")
