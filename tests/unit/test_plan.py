"""The planner decides every number before pixels are touched; these tables pin its decisions."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from origin.core.errors import Problem
from origin.core.limits import Limits
from origin.core.master import MasterHeader
from origin.core.request import FITS, Crop, RenditionOptions
from origin.plan import jpeg_shrink, plan_rendition, with_shared_decode
from origin.superres.policy import SuperResPolicy, SuperResSettings

PHOTO = MasterHeader("jpeg", 4000, 3000, 3, False, 1)
SR = SuperResPolicy()
LIMITS = Limits()


def plan(header=PHOTO, fmt="jpeg", **opts):
    return plan_rendition(RenditionOptions(**opts), header, fmt, LIMITS)


def test_width_only_is_one_shrink_on_load():
    p = plan(w=800)
    assert (p.load_w, p.load_h, p.region) == (800, 600, None)
    assert (p.target_w, p.target_h, p.upscale) == (800, 600, "none")


def test_dpr_multiplies_css_pixels():
    p = plan(w=400, dpr=2)
    assert (p.target_w, p.target_h) == (800, 600)


def test_cover_crops_the_overflow_at_the_gravity():
    centre = plan(w=300, h=300)
    assert (centre.load_w, centre.load_h) == (400, 300)
    assert centre.region == Crop(50, 0, 300, 300)
    west = plan(w=300, h=300, g="w")
    assert west.region == Crop(0, 0, 300, 300)
    east = plan(w=300, h=300, g="se")
    assert east.region == Crop(100, 0, 300, 300)


def test_focal_point_centres_the_window_but_stays_inside():
    p = plan(w=300, h=300, g="focal", fx=0.9, fy=0.5)
    assert p.region == Crop(100, 0, 300, 300)  # would be centred at x=360, clamped to the edge
    p = plan(w=300, h=300, g="focal", fx=0.5, fy=0.5)
    assert p.region == Crop(50, 0, 300, 300)


@pytest.mark.parametrize(
    "fit, size",
    [
        ("cover", (300, 300)),
        ("contain", (300, 225)),
        ("fill", (300, 300)),
        ("inside", (300, 225)),
        ("outside", (400, 300)),
    ],
)
def test_fits_shrinking(fit, size):
    p = plan(w=300, h=300, fit=fit)
    assert (p.target_w, p.target_h) == size


@pytest.mark.parametrize(
    "fit, size, upscale",
    [("contain", (5000, 3750), "lanczos"), ("inside", (4000, 3000), "none"), ("outside", (6667, 5000), "lanczos")],
)
def test_only_inside_never_enlarges(fit, size, upscale):
    p = plan(w=5000, h=5000, fit=fit)
    assert ((p.target_w, p.target_h), p.upscale) == (size, upscale)


def test_crop_region_is_taken_before_resizing():
    p = plan(crop=Crop(1000, 500, 2000, 1000), w=500)
    assert (p.load_w, p.load_h) == (1000, 750)
    assert p.region == Crop(250, 125, 500, 250)
    assert (p.target_w, p.target_h) == (500, 250)


def test_crop_partly_outside_is_clipped_and_wholly_outside_is_400():
    p = plan(crop=Crop(3000, 2000, 5000, 5000))
    assert p.region == Crop(3000, 2000, 1000, 1000)
    with pytest.raises(Problem) as err:
        plan(crop=Crop(5000, 0, 10, 10))
    assert err.value.status == 400 and err.value.extra["option"] == "crop"


def test_enlarging_a_small_crop_resizes_after_the_crop():
    p = plan(crop=Crop(0, 0, 100, 100), w=400)
    assert (p.load_w, p.load_h) == (4000, 3000)
    assert p.region == Crop(0, 0, 100, 100)
    assert (p.resize_w, p.resize_h, p.upscale) == (400, 400, "lanczos")


def test_output_side_limit_scales_dpr_down():
    p = plan(w=8000, dpr=4, header=MasterHeader("jpeg", 40000, 1000, 3, False, 1))
    assert p.target_w == LIMITS.max_output_side


def test_output_pixel_limit_is_422():
    with pytest.raises(Problem) as err:
        plan(w=8000, h=8000, fit="fill")
    assert err.value.status == 422


def test_smart_gravity_resizes_then_crops_by_attention():
    p = plan(w=300, h=300, g="smart")
    assert p.smart_crop and (p.resize_w, p.resize_h) == (400, 300) and (p.target_w, p.target_h) == (300, 300)


def test_animated_masters_keep_frames_only_for_animated_formats():
    anim = MasterHeader("gif", 640, 360, 3, False, 24)
    assert plan(header=anim, fmt="webp", w=100).animated
    assert not plan(header=anim, fmt="jpeg", w=100).animated
    assert not plan(header=anim, fmt="webp", w=100, h=100, g="smart").smart_crop  # one crop for all frames


def test_alpha_is_flattened_only_into_jpeg():
    rgba = MasterHeader("png", 100, 100, 4, True, 1)
    assert plan(header=rgba, fmt="jpeg").flatten and not plan(header=rgba, fmt="webp").flatten


def test_quality_defaults_per_format_and_explicit_q_wins():
    assert plan(fmt="avif").quality == 50 and plan(fmt="jpeg").quality == 80 and plan(fmt="avif", q=33).quality == 33


@settings(max_examples=500, deadline=None)
@given(
    st.integers(1, 6000),
    st.integers(1, 6000),
    st.none() | st.integers(1, 3000),
    st.none() | st.integers(1, 3000),
    st.sampled_from(FITS),
    st.sampled_from(["center", "n", "se", "focal"]),
    st.integers(100, 400).map(lambda n: n / 100),
)
def test_plans_are_always_executable(mw, mh, w, h, fit, g, dpr):
    """Whatever the sizes: regions lie inside the loaded image and no size is zero."""
    header = MasterHeader("jpeg", mw, mh, 3, False, 1)
    try:
        p = plan(
            header=header,
            w=w,
            h=h,
            fit=fit,
            g=g,
            dpr=dpr,
            fx=0.3 if g == "focal" else None,
            fy=0.7 if g == "focal" else None,
        )
    except Problem as e:
        assert e.status == 422
        return
    assert 1 <= p.load_w <= mw and 1 <= p.load_h <= mh
    r = p.region or Crop(0, 0, p.load_w, p.load_h)
    assert r.x >= 0 and r.y >= 0 and r.w >= 1 and r.h >= 1
    assert r.x + r.w <= p.load_w and r.y + r.h <= p.load_h
    assert p.target_w >= 1 and p.target_h >= 1
    if fit == "cover" and w and h:
        assert (p.target_w, p.target_h) == (max(1, round(w * dpr)), max(1, round(h * dpr))) or max(
            w, h
        ) * dpr > LIMITS.max_output_side


SMALL = MasterHeader("jpeg", 1000, 750, 3, False, 1)


@pytest.mark.parametrize(
    "w, dpr, scale",
    [
        (500, 2, 0),  # 1000 device px from 1000: nothing to invent
        (570, 2, 0),  # x1.14: under the 1.15 threshold, Lanczos
        (580, 2, 2),  # x1.16
        (1000, 2, 2),  # x2
        (1100, 2, 4),  # x2.2: a x4 model (or two x2 passes), then down to size
        (2000, 1, 2),  # whatever the URL spells: w=2000 is as many missing pixels as w=1000&dpr=2
        (1140, 1, 0),  # x1.14 at DPR 1: Lanczos, like at DPR 2
        (800, 1.5, 2),  # x1.2
        (2200, 1, 4),
    ],
)
def test_superres_runs_wherever_pixels_are_missing_beyond_the_threshold(w, dpr, scale):
    assert plan_rendition(RenditionOptions(w=w, dpr=dpr), SMALL, "jpeg", LIMITS, superres=SR).superres_scale == scale


def test_srcset_cap_and_the_model_agree_by_construction():
    """Every width srcset may offer past the master is one the planner gives a model's x2."""
    for policy in (SR, SuperResPolicy(available=False), SuperResPolicy(SuperResSettings(enabled=False))):
        for enhance in ("auto", "never"):
            cap = SMALL.width * policy.width_factor(enhance)
            widest = plan_rendition(RenditionOptions(w=cap), SMALL, "jpeg", LIMITS, superres=policy, enhance=enhance)
            just_past = plan_rendition(
                RenditionOptions(w=round(SMALL.width * 1.2)), SMALL, "jpeg", LIMITS, superres=policy, enhance=enhance
            )
            if cap > SMALL.width:
                assert widest.superres_scale == 2 and just_past.superres_scale == 2
            else:
                assert widest.superres_scale == 0 and just_past.superres_scale == 0


def test_superres_off_by_policy_or_for_animations():
    off = SuperResPolicy(SuperResSettings(enabled=False))
    assert plan_rendition(RenditionOptions(w=1000, dpr=2), SMALL, "jpeg", LIMITS, superres=off).superres_scale == 0
    no_model = SuperResPolicy(available=False)
    assert plan_rendition(RenditionOptions(w=1000, dpr=2), SMALL, "jpeg", LIMITS, superres=no_model).superres_scale == 0
    assert plan_rendition(RenditionOptions(w=1000, dpr=2), SMALL, "jpeg", LIMITS).superres_scale == 0
    never = plan_rendition(RenditionOptions(w=1000, dpr=2), SMALL, "jpeg", LIMITS, superres=SR, enhance="never")
    assert never.superres_scale == 0  # a rule says `enhance: never` for this master
    anim = MasterHeader("gif", 100, 100, 3, False, 10)
    assert plan_rendition(RenditionOptions(w=100, dpr=2), anim, "webp", LIMITS, superres=SR).superres_scale == 0


def test_quality_comes_from_the_url_else_the_config_lower_at_high_dpr():
    from origin.core.formats import FormatSettings

    formats = FormatSettings(jpeg_quality=82, jpeg_quality_2x=61, auto_target=74, auto_target_2x=66)

    def chosen(fmt="jpeg", **opts):
        p = plan_rendition(RenditionOptions(**opts), PHOTO, fmt, LIMITS, formats)
        return p.quality, p.quality_target, p.max_bytes

    assert chosen(w=400) == (82, None, None)
    assert chosen(w=400, dpr=2) == (61, None, None)  # a device pixel half the size: artefacts too
    assert chosen(w=400, dpr=2, q=90) == (90, None, None)  # the URL's own number wins
    assert chosen(w=400, q="auto") == (100, 74, None)  # searched, at most 100
    assert chosen(w=400, q="auto", dpr=3) == (100, 66, None)
    assert chosen(w=400, max_bytes=20000) == (82, None, 20000)
    assert chosen("png", w=400, q="auto") == (100, None, None)  # lossless: no quality to choose
    auto = plan_rendition(RenditionOptions(w=400), PHOTO, "webp", LIMITS, replace(formats, auto_quality=True))
    assert auto.quality_target == 74


def test_sources_too_small_to_hold_detail_get_lanczos_not_a_model():
    for w, h, wanted in ((1, 1, 0), (4000, 1, 0), (7, 300, 0), (8, 8, 4), (32, 24, 4)):
        header = MasterHeader("jpeg", w, h, 3, False, 1)
        p = plan_rendition(RenditionOptions(w=1280, h=1280), header, "jpeg", LIMITS, superres=SR)
        assert p.superres_scale == wanted, (w, h)
        assert p.upscale != "none"  # enlarged either way (a 4000x1 strip covers the square from 1x1)
    # A crop of a big master down to a sliver is the same: the region is the source.
    sliver = plan_rendition(RenditionOptions(w=800, crop=Crop(0, 0, 400, 4)), PHOTO, "jpeg", LIMITS, superres=SR)
    assert sliver.superres_scale == 0


@pytest.mark.parametrize(
    ("width", "shrink"),
    [
        (800, 4),  # 5x: the decoder makes 1000 px (thumbnail alone would decode 2000)
        (320, 8),  # 12.5x: 500 px (thumbnail: 1000)
        (1600, 2),  # 2.5x: 2000 px (thumbnail: the whole master)
        (1700, None),  # 2.35x: too close for the decoder's 1/2; thumbnail decodes it whole too
        (3000, None),
        (240, None),  # 16.7x: 1/8, which thumbnail takes by itself
    ],
)
def test_the_jpeg_decoder_shrinks_to_within_a_quarter_of_the_load(width: int, shrink: int | None):
    p = plan(w=width)
    assert p.jpeg_size == (4000, 3000)
    assert jpeg_shrink(p.jpeg_size, p.load_w, p.load_h) == shrink


def test_only_jpeg_masters_are_shrunk_by_their_decoder():
    webp = MasterHeader("webp", 4000, 3000, 3, False, 1)
    assert plan(header=webp, w=800).jpeg_size is None
    assert jpeg_shrink(None, 800, 600) is None


def test_a_smart_crop_shares_only_a_decode_shrunk_alike():
    cover = plan(w=800, h=800, g="smart")  # load 1067x800: the decoder's 1/2
    assert with_shared_decode(cover, (1250, 938)).decode_at == (1250, 938)  # 1/2 too
    assert with_shared_decode(cover, (2000, 1500)).decode_at is None  # whole: other pixels, another crop
    assert with_shared_decode(plan(w=800), (3000, 2250)).decode_at == (3000, 2250)
    assert with_shared_decode(plan(w=500), (3000, 2250)).decode_at is None  # beyond SHARE_WITHIN
