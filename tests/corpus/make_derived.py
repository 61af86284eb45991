"""How the derived test masters in this folder were made (run once; outputs are committed).

From the shared corpus: a photo is reduced to 640 px, kept as an sRGB reference, and converted to
CMYK / Display P3 / Adobe RGB with the profile embedded, so tests can check that the server turns
each back into sRGB close to the reference. Also small animated GIF and WebP, and a small 16-bit grey PNG.
Usage: python make_derived.py /path/to/shared/corpus
"""

import sys

import pyvips

corpus = sys.argv[1]
src = pyvips.Image.thumbnail(f"{corpus}/photos/colorfulcups_2560x1600.jpg", 640).copy_memory()
src = src.icc_transform("srgb") if src.get_typeof("icc-profile-data") else src
reference = src.copy()
reference.remove("icc-profile-data")
reference.jpegsave("srgb_reference_640x400.jpg", Q=95, keep="none")
src.icc_transform("cmyk").jpegsave("cmyk_640x400.jpg", Q=95)  # libvips' built-in CMYK profile, embedded
src.icc_transform("p3").jpegsave("display_p3_640x400.jpg", Q=95)
src.icc_transform(f"{corpus}/icc/AdobeRGB1998.icc").jpegsave("adobergb_640x400.jpg", Q=95)

anim = pyvips.Image.new_from_file(f"{corpus}/tricky/animated_24f_640x360.webp", n=-1)
frames = [anim.crop(0, i * 360, 640, 360).resize(0.25) for i in range(24)]
small = pyvips.Image.arrayjoin(frames, across=1).copy()
small.set_type(pyvips.GValue.gint_type, "page-height", 90)
small.set_type(pyvips.GValue.array_int_type, "delay", [80] * 24)
small.set_type(pyvips.GValue.gint_type, "loop", 0)
small.gifsave("animated_24f_160x90.gif")
small.webpsave("animated_24f_160x90.webp", Q=75)

# 16-bit grey with real sub-8-bit detail, small.
gray16 = pyvips.Image.new_from_file(f"{corpus}/tricky/gray16_1056x792.png").resize(0.25, kernel="linear")
gray16.cast("ushort").copy(interpretation="grey16").pngsave("gray16_264x198.png")
