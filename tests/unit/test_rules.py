"""Breakpoint rules: loading and validating YAML, the JSON Schema, candidate widths, closed-world checks."""

from __future__ import annotations

import asyncio
import json
import textwrap
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from edge.config import DEMO_MASTERS
from edge.signing import Signer, parse_keys
from edge.urls import parse_query
from origin.core.formats import FORMATS
from origin.core.limits import Limits
from origin.core.master import MasterHeader
from origin.core.request import Crop, RenditionOptions
from origin.masters.index import MasterIndex
from origin.masters.local import LocalMasterStore
from rules.closed_world import ClosedWorld
from rules.globs import GlobError, compile_glob
from rules.lengths import CssLength, LengthError
from rules.loader import FRAMING_KEYS, RULE_KEYS, SETTING_KEYS, TOP_KEYS, RulesInvalid, check_rules, load_rules
from rules.markup import build_markup
from rules.model import FITS, GRAVITIES, Framing, Rule, Settings, Slot
from rules.settings import BUNDLED_RULES
from rules.srcset import candidate_widths, merge, plan, sizes_attribute, width_cap
from tests.support.cli import run_cli
from tests.support.planning import CAPACITY

EXAMPLES = BUNDLED_RULES
SCHEMA = json.loads((BUNDLED_RULES.parent / "schema.json").read_text())
KEYS = "k1:test-secret-number-one-0123456789"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def errors(source: Path | list[Path]) -> list[str]:
    ruleset, found = check_rules(source)
    assert (ruleset is None) == bool(found)
    return [str(e) for e in found]


def header(width: int, height: int, alpha: bool = False, frames: int = 1, fmt: str = "jpeg") -> MasterHeader:
    return MasterHeader(fmt, width, height, 3 + alpha, alpha, frames)


def demo_record(path: str):
    return asyncio.run(MasterIndex(LocalMasterStore(DEMO_MASTERS), Limits()).lookup(path))


# --- the bundled example -----------------------------------------------------------------------


def test_the_bundled_example_loads_with_its_four_rules():
    ruleset = load_rules(EXAMPLES)
    assert [r.name for r in ruleset.rules] == ["hero", "card", "avatar", "product"]
    assert [(b.name, b.min_width) for b in ruleset.breakpoints] == [
        ("sm", 640),
        ("md", 768),
        ("lg", 1024),
        ("xl", 1280),
        ("2xl", 1536),
    ]
    hero = ruleset.named("hero")
    assert hero.lcp and hero.framing.aspect == Fraction(4, 5) and hero.framing.gravity == "focal"
    assert [(a.breakpoint, a.framing.aspect) for a in hero.art] == [("md", Fraction(16, 9)), ("xl", Fraction(21, 9))]
    assert hero.formats == (("avif", 45), ("webp", 75), ("jpeg", 80))
    assert ruleset.named("product").enhance == "never"
    assert ruleset.named("card").source is not None and ruleset.named("card").source.line > 1
    # Every demo master is covered by some rule.
    for master in LocalMasterStore(DEMO_MASTERS).list():
        assert ruleset.rules_for(master), master


def test_the_bundled_example_validates_against_the_json_schema():
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    document = yaml.safe_load((EXAMPLES / "site.yaml").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(document)


@pytest.mark.parametrize(
    "document",
    [
        {"rules": {"hero": {"masters": "a.jpg", "sizes": "100vw", "sizez": "50vw"}}},  # unknown key
        {"rules": {"hero": {"masters": "a.jpg"}}},  # sizes is required
        {"rules": {"hero": {"masters": "a.jpg", "sizes": "half"}}},  # not a CSS length
        {"rules": {"hero": {"masters": "a.jpg", "sizes": {"md": "50vw"}}}},  # no default slot
        {"rules": {"hero": {"masters": "a.jpg", "sizes": "100vw", "enhance": "sometimes"}}},
        {"rules": {"hero": {"masters": "a.jpg", "sizes": "100vw", "fit": "contain"}}},
        {"rules": {"hero": {"masters": "a.jpg", "sizes": "100vw", "lcp": "yes"}}},
        {"colours": {}},
    ],
)
def test_the_schema_rejects_what_the_loader_rejects(document, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(document))
    assert errors(write(tmp_path, "r.yaml", yaml.safe_dump(document)))


def test_the_schema_and_the_loader_know_the_same_keys_and_values():
    rule = SCHEMA["$defs"]["rule"]
    assert set(SCHEMA["properties"]) == set(TOP_KEYS)
    assert set(SCHEMA["properties"]["settings"]["properties"]) == set(SETTING_KEYS)
    assert set(rule["properties"]) == set(RULE_KEYS)
    assert set(rule["required"]) == {"masters", "sizes"}
    assert set(SCHEMA["$defs"]["framing"]["properties"]) == set(FRAMING_KEYS)
    assert SCHEMA["$defs"]["gravity"]["enum"] == [*GRAVITIES, "focal"]
    assert SCHEMA["$defs"]["fit"]["enum"] == list(FITS)
    assert SCHEMA["$defs"]["format"]["enum"] == list(FORMATS)
    # Every property an editor offers comes with a description.
    for name, prop in {**rule["properties"], **SCHEMA["properties"]}.items():
        target = SCHEMA["$defs"][prop["$ref"].split("/")[-1]] if "$ref" in prop else prop
        assert target.get("description"), name


# --- errors a person can act on ----------------------------------------------------------------


def test_a_bad_css_length_names_file_line_and_key_path(tmp_path):
    path = write(
        tmp_path,
        "site.yaml",
        """
        rules:
          hero:
            masters: "*.jpg"
            sizes:
              default: 100vw
              lg: half
        """,
    )
    [error] = errors(tmp_path)
    assert error.startswith(
        f'{path}:6 rules.hero.sizes.lg: expected a CSS length like 50vw, 320px or calc(100vw - 2rem), got "half"'
    )


def test_an_unknown_key_suggests_the_known_one(tmp_path):
    path = write(
        tmp_path,
        "site.yaml",
        """
        rules:
          card:
            masters: "*.jpg"
            sizes: 100vw
            aspct: "3:2"
        """,
    )
    assert errors(path) == [
        f'{path}:5 rules.card.aspct: unknown key (did you mean "aspect"? expected one of: {", ".join(RULE_KEYS)})'
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("lcp: yes please", 'rules.r.lcp: expected true or false, got "yes please"'),
        ("dprs: 2", "rules.r.dprs: expected a list of device pixel ratios like [1, 2, 3], got 2"),
        ("dprs: [1, 5]", "rules.r.dprs[1]: expected a device pixel ratio 1..4 with at most 2 decimals, got 5"),
        ("focal: 0.5", "rules.r.focal: expected a focal point [x, y], fractions of width and height 0..1, got 0.5"),
        ("aspect: wide", 'rules.r.aspect: expected an aspect ratio like "16:9", "4/3" or 1.5, got "wide"'),
        ("enhance: always", 'rules.r.enhance: expected one of auto, never, got "always"'),
        (
            "formats: {avif: 50, webp: 120, jpeg: 80}",
            "rules.r.formats.webp: expected auto or a quality 1..100, got 120",
        ),
        (
            "formats: [jpeg, webp]",
            "rules.r.formats[1]: the last format is the <img> fallback every browser must "
            "show: one of jpeg, png, gif, got webp",
        ),
        ("formats: [avif, tiff, jpeg]", 'rules.r.formats[1]: expected one of avif, webp, jpeg, png, gif, got "tiff"'),
        ("crop: [0, 0, 0, 10]", "rules.r.crop[2]: expected width: an integer 1 or more, got 0"),
        ("masters: 12", 'rules.r.masters: expected a glob like "photos/**/*.jpg" or a list of them, got 12'),
    ],
)
def test_a_wrong_type_says_what_was_expected(tmp_path, line, message):
    path = write(tmp_path, "r.yaml", 'rules:\n  r:\n    masters: "*.jpg"\n    sizes: 100vw\n    aspect: "1:1"\n')
    text = path.read_text()
    key = line.split(":")[0]
    if key in ("masters", "aspect"):
        text = "\n".join(ln for ln in text.splitlines() if not ln.strip().startswith(key + ":")) + "\n"
    path.write_text(text + f"    {line}\n")
    lineno = len(path.read_text().splitlines())
    assert errors(path) == [f"{path}:{lineno} {message}"]


def test_a_missing_required_key_points_at_the_rule(tmp_path):
    path = write(
        tmp_path,
        "site.yaml",
        """
        breakpoints: {sm: 640}
        rules:
          avatar:
            sizes: 48px
        """,
    )
    assert errors(path) == [
        f'{path}:3 rules.avatar: missing required key "masters" (which masters the rule applies to, '
        'e.g. masters: "photos/**/*.jpg")'
    ]


@pytest.mark.parametrize(
    ("glob", "why"),
    [
        ("photos/[abc.jpg", "'[' at position 8 is never closed"),
        ("/photos/*.jpg", "master paths are relative: drop the leading '/'"),
        ("photos/../*.jpg", "empty, '.' or '..' path segment"),
        ("photos/a**.jpg", "'**' must be a whole path segment, as in 'photos/**/*.jpg'"),
        ("*.{jpg,png", "'{' is never closed"),
    ],
)
def test_an_invalid_glob_is_refused_with_the_reason(tmp_path, glob, why):
    path = write(tmp_path, "r.yaml", f"rules:\n  r:\n    masters: [a.jpg, {json.dumps(glob)}]\n    sizes: 100vw\n")
    assert errors(path) == [f"{path}:3 rules.r.masters[1]: invalid glob {json.dumps(glob)}: {why}"]


def test_duplicate_rule_names_across_files_name_both_places(tmp_path):
    a = write(tmp_path, "a.yaml", "rules:\n  hero:\n    masters: a.jpg\n    sizes: 100vw\n")
    b = write(
        tmp_path,
        "b.yaml",
        "# more rules\nrules:\n  card: {masters: b.jpg, sizes: 50vw}\n  hero:\n    masters: b.jpg\n    sizes: 100vw\n",
    )
    assert errors(tmp_path) == [f"{b}:4 rules.hero: rule 'hero' is already defined at {a}:2"]


def test_duplicate_keys_in_one_mapping_are_errors_not_silently_last_wins(tmp_path):
    path = write(
        tmp_path,
        "r.yaml",
        """
        rules:
          hero:
            masters: a.jpg
            sizes: 100vw
            sizes: 50vw
        """,
    )
    assert errors(path) == [f"{path}:5 rules.hero.sizes: duplicate key (first at line 4)"]


def test_several_errors_in_one_file_are_reported_together_in_line_order(tmp_path):
    path = write(
        tmp_path,
        "site.yaml",
        """
        breakpoints:
          sm: 640
          md: wide
        rules:
          hero:
            masters: "*.jpg"
            sizes: {default: 100vw, lg: 50vw}
            lcp: 1
          card:
            masters: "*.jpg"
            sizes: calc(100vw - 2rem
            gravity: n
        """,
    )
    found = errors(path)
    assert found == [
        f'{path}:3 breakpoints.md: expected a viewport width in CSS pixels like 768, got "wide"',
        f'{path}:7 rules.hero.sizes.lg: unknown breakpoint "lg" (known: default, sm)',
        f"{path}:8 rules.hero.lcp: expected true or false, got 1",
        f"{path}:11 rules.card.sizes: expected a CSS length like 50vw, 320px or calc(100vw - 2rem), "
        'got "calc(100vw - 2rem" (expected ))',
        f"{path}:12 rules.card.gravity: only matters with an aspect: without one the image keeps its shape",
    ]


def test_yaml_syntax_errors_have_a_line_too(tmp_path):
    path = write(tmp_path, "r.yaml", "rules:\n  hero:\n    masters: [a.jpg\n    sizes: 100vw\n")
    [error] = errors(path)
    assert error.startswith(f"{path}:4: not valid YAML:")


def test_breakpoints_may_repeat_across_files_only_with_the_same_width(tmp_path):
    write(tmp_path, "a.yaml", "breakpoints: {sm: 640, md: 768}\n")
    b = write(tmp_path, "b.yaml", "breakpoints:\n  md: 800\n  sm: 640\n")
    assert errors(tmp_path) == [f"{b}:2 breakpoints.md: is 800 here but 768 at {tmp_path / 'a.yaml'}:1"]


def test_art_direction_needs_a_known_breakpoint_and_is_never_default(tmp_path):
    path = write(
        tmp_path,
        "r.yaml",
        """
        rules:
          hero:
            masters: a.jpg
            sizes: 100vw
            art:
              default: {aspect: "1:1"}
              tablet: {aspect: "4:3"}
              md: {aspect: "16:9", zoom: 2}
        """,
    )
    found = errors(path)
    assert [e.split(": ")[0] for e in found] == [
        f"{path}:6 rules.hero.art.default",
        f"{path}:7 rules.hero.art.tablet",
        f"{path}:8 rules.hero.art.md.zoom",
    ]
    assert 'unknown breakpoint "tablet" (known: sm, md, lg, xl, 2xl)' in found[1]


def test_gravity_and_focal_point_together_are_refused(tmp_path):
    path = write(
        tmp_path,
        "r.yaml",
        'rules:\n  r:\n    masters: a.jpg\n    sizes: 100vw\n    aspect: "1:1"\n'
        "    gravity: n\n    focal: [0.5, 0.2]\n",
    )
    assert errors(path) == [f"{path}:7 rules.r.focal: give either gravity (n) or a focal point, not both"]


def test_unquoted_aspect_is_read_as_written_not_as_a_base_60_number(tmp_path):
    # PyYAML reads a plain 16:9 as the YAML 1.1 sexagesimal integer 969.
    write(tmp_path, "r.yaml", "rules:\n  r:\n    masters: a.jpg\n    sizes: 100vw\n    aspect: 16:9\n")
    assert load_rules(tmp_path).named("r").framing.aspect == Fraction(16, 9)


def test_anchors_and_merge_keys_share_settings_between_rules(tmp_path):
    write(
        tmp_path,
        "r.yaml",
        """
        rules:
          photo: &photo
            masters: "photos/**"
            sizes: 100vw
            formats: {webp: 70, jpeg: 75}
            dprs: [1, 2]
          thumb:
            <<: *photo
            sizes: 120px
        """,
    )
    thumb = load_rules(tmp_path).named("thumb")
    assert thumb.formats == (("webp", 70), ("jpeg", 75)) and thumb.dprs == (1.0, 2.0)
    assert str(thumb.sizes[0].length) == "120px"


def test_an_invalid_rules_directory_raises_with_every_error(tmp_path):
    write(tmp_path, "a.yaml", "rules:\n  a: {masters: a.jpg}\n  b: {sizes: 1vw}\n")
    with pytest.raises(RulesInvalid) as caught:
        load_rules(tmp_path)
    assert len(caught.value.errors) == 2


# --- CSS lengths and globs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "viewport", "px"),
    [
        ("100vw", 1000, 1000),
        ("50vw", 800, 400),
        ("320px", 1920, 320),
        ("20rem", 500, 320),
        ("0", 500, 0),
        ("calc(100vw - 2rem)", 1000, 968),
        ("calc((min(100vw, 1280px) - 4rem) / 3)", 1920, 405 + 1 / 3),
        ("calc((100vw - 3rem) / 2)", 1024, 488),
        ("clamp(200px, 50vw, 600px)", 300, 200),
        ("clamp(200px, 50vw, 600px)", 2000, 600),
        ("max(50vw, 300px)", 400, 300),
        ("calc(2 * 25vw + 10px)", 100, 60),
    ],
)
def test_css_lengths_evaluate_at_a_viewport(text, viewport, px):
    assert CssLength.parse(text).px(viewport) == pytest.approx(px)


@pytest.mark.parametrize(
    "text",
    [
        "half",
        "100",
        "50%",
        "100vw - 2rem",
        "calc(100vw * 2px)",
        "calc(100vw / 0)",
        "calc(2)",
        "min()",
        "calc(1vw",
        "10vh",
    ],
)
def test_what_is_not_a_css_length(text):
    with pytest.raises(LengthError):
        CssLength.parse(text)


@pytest.mark.parametrize(
    ("glob", "matches", "misses"),
    [
        ("*.jpg", ["a.jpg"], ["dir/a.jpg", "a.png"]),
        ("photos/**/*.jpg", ["photos/a.jpg", "photos/x/y/a.jpg"], ["a.jpg", "photos/a.png"]),
        ("photos/**", ["photos/a.jpg", "photos/x/a.png"], ["other/a.jpg"]),
        ("**/*.{jpg,png}", ["a.png", "x/y.jpg"], ["a.gif"]),
        ("img_?.[!p]*", ["img_1.jpg"], ["img_1.png", "img_12.jpg"]),
        ("astronaut.jpg", ["astronaut.jpg"], ["xastronaut.jpg", "astronaut.jpgx"]),
    ],
)
def test_globs_match_master_paths(glob, matches, misses):
    pattern = compile_glob(glob)
    assert all(pattern.fullmatch(m) for m in matches)
    assert not any(pattern.fullmatch(m) for m in misses)


def test_an_empty_glob_is_invalid():
    with pytest.raises(GlobError):
        compile_glob("")


# --- candidate widths --------------------------------------------------------------------------


def rule(sizes: str | dict[str, str], **kwargs) -> Rule:
    widths = {"sm": 640, "md": 768, "lg": 1024, "xl": 1280, "2xl": 1536}
    slots = sizes if isinstance(sizes, dict) else {"default": sizes}
    return Rule(
        name="r",
        masters=("**",),
        sizes=tuple(Slot(k, widths.get(k, 0), CssLength.parse(v)) for k, v in slots.items()),
        **kwargs,
    )


def test_merge_drops_widths_within_the_step_of_a_larger_one():
    assert merge([1000, 1099], 0.1) == [1099]
    assert merge([1000, 1100], 0.1) == [1000, 1100]
    assert merge([640, 640, 641, 1280], 0.1) == [641, 1280]
    assert merge([300, 310, 320, 330, 340, 350], 0.1) == [310, 350]
    assert merge([500, 520], 0) == [500, 520]


@given(st.lists(st.integers(1, 8192), min_size=1, max_size=40), st.sampled_from([0.0, 0.05, 0.1, 0.25]))
def test_merge_never_serves_a_smaller_image_and_keeps_candidates_apart(widths, step):
    kept = merge(widths, step)
    assert kept == sorted(set(kept)) and max(kept) == max(widths)
    for w in widths:  # each width is served by a kept one at least as wide, less than `step` heavier
        assert any(w <= k and (k == w or k < w * (1 + step)) for k in kept)
    for a, b in pairwise(kept):
        assert b >= a * (1 + step)


def test_candidates_come_from_breakpoints_slots_and_dprs_deduplicated():
    settings = Settings(merge_step=0)
    r = rule({"default": "100vw", "lg": "50vw"}, dprs=(1.0, 2.0))
    widths = candidate_widths(r.sizes, r.dprs, r.breakpoints, 320, 1920, settings, cap=10_000)
    # 100vw at 320, 640, 768 and 1024 (where the slot ends); 50vw at 1024, 1280, 1536 and 1920; x1 and x2.
    assert widths == [320, 512, 640, 768, 960, 1024, 1280, 1536, 1920, 2048]


def test_candidates_are_merged_by_the_configured_step():
    r = rule("100vw", dprs=(1.0,))
    tight = candidate_widths(r.sizes, r.dprs, r.breakpoints, 320, 1920, Settings(merge_step=0), 10_000)
    loose = candidate_widths(r.sizes, r.dprs, r.breakpoints, 320, 1920, Settings(merge_step=0.25), 10_000)
    assert tight == [320, 640, 768, 1024, 1280, 1536, 1920]
    assert loose == [320, 768, 1024, 1536, 1920]  # 640 is within 25 % of 768, 1280 of 1536


def test_dprs_above_2_only_count_on_phone_sized_viewports():
    r = rule({"default": "48px", "md": "64px"}, dprs=(1.0, 2.0, 3.0))
    widths = candidate_widths(r.sizes, r.dprs, r.breakpoints, 320, 1920, Settings(), 10_000)
    assert widths == [48, 64, 96, 128, 144]  # 48x3 for phones, never 64x3


def test_candidates_are_capped_at_the_master_unless_super_resolution_may_enlarge_it():
    master = header(600, 400)
    never = rule("100vw", enhance="never")
    auto = rule("100vw", enhance="auto")
    assert width_cap(never.framing, master, "never", never.settings, CAPACITY) == 600
    assert width_cap(auto.framing, master, "auto", auto.settings, CAPACITY) == 1200
    assert [c.width for c in plan(never, master, CAPACITY).img.candidates][-1] == 600
    assert max(c.width for c in plan(auto, master, CAPACITY).img.candidates) == 1200
    assert all(c.width <= 600 for s in plan(never, master, CAPACITY).all_sources for c in s.candidates)


def test_the_cap_follows_the_aspect_and_the_crop():
    master = header(2400, 1350)
    tall = rule("100vw", enhance="never", framing=Framing(aspect=Fraction(4, 5)))
    assert width_cap(tall.framing, master, "never", tall.settings, CAPACITY) == 1080  # 1350 x 4/5
    cropped = Framing(crop=Crop(0, 0, 500, 300))
    assert width_cap(cropped, master, "never", tall.settings, CAPACITY) == 500
    assert width_cap(cropped, header(400, 200), "never", tall.settings, CAPACITY) == 400  # the crop is clipped
    wide = Framing(aspect=Fraction(1, 1))
    assert width_cap(wide, master, "auto", Settings(max_width=2000), CAPACITY) == 2000  # settings.max_width


@pytest.mark.parametrize(
    ("sizes", "attribute"),
    [
        ("100vw", "100vw"),
        ({"default": "100vw", "lg": "100vw"}, "100vw"),
        ({"default": "100vw", "md": "50vw", "xl": "33vw"}, "(min-width: 1280px) 33vw, (min-width: 768px) 50vw, 100vw"),
        ({"default": "48px", "md": "64px", "lg": "64px"}, "(min-width: 768px) 64px, 48px"),
        (
            {"default": "calc(100vw - 2rem)", "lg": "calc((min(100vw, 1280px) - 4rem) / 3)"},
            "(min-width: 1024px) calc((min(100vw, 1280px) - 4rem) / 3), calc(100vw - 2rem)",
        ),
    ],
)
def test_the_sizes_attribute_lists_the_widest_breakpoint_first(sizes, attribute):
    assert sizes_attribute(rule(sizes).sizes) == attribute


def test_alpha_masters_fall_back_to_png_and_animations_keep_moving():
    r = rule("100vw")
    alpha = plan(r, header(800, 600, alpha=True, fmt="png"), CAPACITY)
    assert [s.format for s in alpha.sources] == ["avif", "webp"] and alpha.picture_img.format == "png"
    animated = plan(r, header(160, 90, frames=24, fmt="gif"), CAPACITY)
    assert [s.format for s in animated.sources] == ["webp"] and animated.picture_img.format == "gif"


# --- closed-world mode -------------------------------------------------------------------------


def signed_options(url: str) -> RenditionOptions:
    opts, _ = parse_query(url.split("?", 1)[1])
    return opts


def test_allows_exactly_the_renditions_the_rules_declare():
    ruleset = load_rules(EXAMPLES)
    record = demo_record("rocket.jpg")
    signer = Signer(parse_keys(KEYS))
    urls = set()
    for r in ruleset.rules_for("rocket.jpg"):
        markup = build_markup(r, "rocket.jpg", record.header, record.short_version, signer.url_signer(), CAPACITY)
        for s in (markup.img, *markup.sources, markup.picture_img):
            urls |= {c.url for c in s.candidates} | {s.src}
    assert len(urls) > 20
    for url in urls:
        assert ClosedWorld(ruleset, CAPACITY).allows("rocket.jpg", signed_options(url), record.header), url


def test_allows_ignores_version_expiry_and_key_but_not_pixels():
    ruleset = load_rules(EXAMPLES)
    record = demo_record("rocket.jpg")
    card = plan(ruleset.named("card"), record.header, CAPACITY)
    opts = card.img.candidates[0].options
    assert ClosedWorld(ruleset, CAPACITY).allows("rocket.jpg", opts, record.header)
    assert ClosedWorld(ruleset, CAPACITY).allows(
        "rocket.jpg", RenditionOptions(**{**opts.__dict__, "v": "0" * 16, "exp": 9, "kid": "x"}), record.header
    )
    assert not ClosedWorld(ruleset, CAPACITY).allows(
        "rocket.jpg", RenditionOptions(**{**opts.__dict__, "w": opts.w + 1}), record.header
    )
    assert not ClosedWorld(ruleset, CAPACITY).allows(
        "rocket.jpg", RenditionOptions(**{**opts.__dict__, "q": 99}), record.header
    )
    assert not ClosedWorld(ruleset, CAPACITY).allows(
        "rocket.jpg", RenditionOptions(**{**opts.__dict__, "dpr": 2.0}), record.header
    )
    assert not ClosedWorld(ruleset, CAPACITY).allows("rocket.jpg", RenditionOptions(w=123), record.header)
    # The master as is: what image sitemaps link, so closed world declares it for every master.
    assert ClosedWorld(ruleset, CAPACITY).allows("rocket.jpg", RenditionOptions(v="0" * 16), record.header)
    assert not ClosedWorld(ruleset, CAPACITY).allows("rocket.jpg", RenditionOptions(fm="png"), record.header)


def test_allows_nothing_for_a_master_no_rule_matches():
    ruleset = load_rules(EXAMPLES)
    opts = plan(ruleset.named("avatar"), header(512, 512), CAPACITY).img.candidates[0].options
    assert ClosedWorld(ruleset, CAPACITY).allows("astronaut.jpg", opts, header(512, 512))
    assert not ClosedWorld(ruleset, CAPACITY).allows("other/astronaut.jpg", opts, header(512, 512))


# --- edge rules check --------------------------------------------------------------------------


def test_rules_check_prints_ok_for_the_bundled_rules(capsys):
    assert run_cli("rules", "check", "--rules", str(EXAMPLES), "--masters", str(DEMO_MASTERS)) == 0
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert lines[0] == f"{EXAMPLES}: 1 file, 4 rules, 5 breakpoints: OK"
    assert "warning" not in out.err
    # The size of the closed world, per rule: every (format, width) its markup declares per master.
    counts = {ln.split("'")[1]: int(ln.split(": ")[1].split()[0]) for ln in lines[1:]}
    assert set(counts) == {"hero", "card", "avatar", "product"}
    ruleset = load_rules(EXAMPLES)
    headers = [
        asyncio.run(MasterIndex(LocalMasterStore(DEMO_MASTERS), Limits()).lookup(m)).header
        for m in LocalMasterStore(DEMO_MASTERS).list()
        if ruleset.named("hero").matches(m)
    ]
    hero = plan(ruleset.named("hero"), headers[0], CAPACITY)
    assert counts["hero"] >= len({(s.format, c.width) for s in hero.all_sources for c in s.candidates}) > 0


def test_rules_check_prints_one_line_per_error_and_exits_1(tmp_path, capsys):
    path = write(
        tmp_path,
        "site.yaml",
        "rules:\n  hero:\n    masters: a.jpg\n    sizes: {default: 100vw, lg: half}\n    lcp: maybe\n",
    )
    assert run_cli("rules", "check", "--rules", str(tmp_path)) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(": ")[0] for ln in lines] == [f"{path}:4 rules.hero.sizes.lg", f"{path}:5 rules.hero.lcp"]


def test_rules_check_warns_about_rules_that_match_no_master(tmp_path, capsys):
    write(tmp_path, "r.yaml", "rules:\n  logos:\n    masters: logos/*.png\n    sizes: 100px\n")
    assert run_cli("rules", "check", "--rules", str(tmp_path), "--masters", str(DEMO_MASTERS)) == 0
    assert "rule 'logos' matches no master" in capsys.readouterr().err


def test_a_rule_can_ask_for_q_auto_and_a_byte_budget_in_every_url(tmp_path):
    write(
        tmp_path,
        "r.yaml",
        """
        rules:
          hero:
            masters: "**"
            sizes: 100vw
            quality: auto
            max_bytes: 150000
            formats: {avif: null, webp: 72, jpeg: auto}
        """,
    )
    hero = load_rules(tmp_path).named("hero")
    assert hero.formats == (("avif", "auto"), ("webp", 72), ("jpeg", "auto"))
    planned = plan(hero, MasterHeader("jpeg", 2400, 1600, 3, False, 1), CAPACITY)
    img = {(c.options.q, c.options.max_bytes) for c in planned.img.candidates}
    assert img == {("auto", 150000)}  # the negotiated <img> URL searches whichever format it gets
    by_format = {s.format: {(c.options.q, c.options.max_bytes) for c in s.candidates} for s in planned.sources}
    assert by_format == {"avif": {("auto", 150000)}, "webp": {(72, 150000)}}
    assert {(c.options.q, c.options.fm) for c in planned.picture_img.candidates} == {("auto", "jpeg")}


@pytest.mark.parametrize(
    "line, message",
    [
        ("quality: best", 'rules.r.quality: expected auto or a quality 1..100, got "best"'),
        ("max_bytes: 10", "rules.r.max_bytes: expected a size in bytes, 100..50000000, got 10"),
    ],
)
def test_quality_and_max_bytes_in_rules_are_checked(tmp_path, line, message):
    write(tmp_path, "r.yaml", f'rules:\n  r:\n    masters: "**"\n    sizes: 100vw\n    {line}\n')
    with pytest.raises(RulesInvalid) as caught:
        load_rules(tmp_path)
    assert message in str(caught.value)
