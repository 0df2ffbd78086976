#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_images.c into tests/fuzz/corpus/images/: small valid
files of every layout the decoders take (PNG colour types and depths, interlaced; baseline,
progressive and grey JPEG; PPM/PGM 8 and 16 bits; BMP 1/4/8/16/24/32 bits, core/V3/V5 headers,
top-down), and the hostile inputs the decoders must refuse cheaply: a 16-bit PGM with one data
byte, headers declaring huge sizes (GIF, PNG, JPEG, BMP, PPM), a decompression bomb, zero sizes,
truncated files. Standard library only; the JPEGs need cjpeg (libjpeg-turbo-progs) and are kept
as they are when it is missing. The pixel pattern is pattern() below; test_data_images_hostile.c
computes the same one. Usage: gen_images_corpus.py [OUT_DIR]"""
import os
import shutil
import struct
import subprocess
import sys
import zlib

W, H = 7, 5


def pattern(x, y):
    return ((x * 37 + y * 11) & 255, (x * 5 + y * 53) & 255, (x * y * 3 + 7) & 255)


def chunk(kind, data):
    c = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", c)


def png(w, h, depth, ctype, rows, extra=b"", interlace=0, level=9):
    """rows: list of h byte strings (unfiltered scanlines); interlace 1 = Adam7."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace)
    if interlace:
        raw = adam7(w, h, depth, ctype, rows)
    else:
        raw = b"".join(b"\0" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra +
            chunk(b"IDAT", zlib.compress(raw, level)) + chunk(b"IEND", b""))


def adam7(w, h, depth, ctype, rows):
    assert depth == 8
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    out = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                           (1, 0, 2, 2), (0, 1, 1, 2)):
        for y in range(y0, h, dy):
            line = b"".join(rows[y][x * bpp:(x + 1) * bpp] for x in range(x0, w, dx))
            if line:
                out += b"\0" + line
    return out


def rgb_rows(w, h):
    return [bytes(v for x in range(w) for v in pattern(x, y)) for y in range(h)]


def gray(x, y):
    return pattern(x, y)[0]


def bmp(w, h, bpp, pixel_rows, header=40, comp=0, masks=None, palette=None, top_down=False):
    """pixel_rows: h rows of packed bytes, top row first; padded to 4 bytes here."""
    stride = (w * bpp + 31) // 32 * 4
    rows = [r + b"\0" * (stride - len(r)) for r in pixel_rows]
    data = b"".join(rows if top_down else rows[::-1])
    pal = b""
    if palette:
        pal = b"".join(bytes((b, g, r)) + (b"" if header == 12 else b"\0") for r, g, b in palette)
    if header == 12:
        info = struct.pack("<IHHHH", 12, w, h, 1, bpp)
    else:
        info = struct.pack("<IiiHHIIiiII", header, w, -h if top_down else h, 1, bpp, comp,
                           len(data), 2835, 2835, len(palette) if palette else 0, 0)
        if header > 40:
            m = list(masks or (0, 0, 0)) + [0]
            info += struct.pack("<IIII", *m)
            info += b"\0" * (header - len(info))
        elif masks:
            info += struct.pack("<III", *masks)
    off = 14 + len(info) + len(pal)
    return b"BM" + struct.pack("<IHHI", off + len(data), 0, 0, off) + info + pal + data


def pack_bits(indices, bpp):
    out, acc, n = bytearray(), 0, 0
    for i in indices:
        acc = (acc << bpp) | i
        n += bpp
        if n == 8:
            out.append(acc)
            acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


def valid(out):
    rows = rgb_rows(W, H)
    files = {}
    files["valid_rgb.png"] = png(W, H, 8, 2, rows)
    files["valid_rgb_adam7.png"] = png(W, H, 8, 2, rows, interlace=1)
    files["valid_gray.png"] = png(W, H, 8, 0, [bytes(gray(x, y) for x in range(W)) for y in range(H)])
    files["valid_gray16.png"] = png(W, H, 16, 0, [b"".join(struct.pack(">H", gray(x, y) * 257 + (x & 1))
                                                         for x in range(W)) for y in range(H)])
    files["valid_gray_alpha.png"] = png(W, H, 8, 4, [bytes(v for x in range(W) for v in (gray(x, y), 99))
                                                     for y in range(H)])
    files["valid_rgba.png"] = png(W, H, 8, 6, [bytes(v for x in range(W) for v in pattern(x, y) + (7,))
                                               for y in range(H)])
    files["valid_gray2.png"] = png(W, H, 2, 0, [pack_bits([(x + y) % 4 for x in range(W)], 2)
                                                for y in range(H)])
    pal = [pattern(i, 7 - i) for i in range(8)]
    plte = chunk(b"PLTE", b"".join(bytes(c) for c in pal)) + chunk(b"tRNS", bytes((0, 128, 255)))
    files["valid_palette_trns.png"] = png(W, H, 8, 3, [bytes((x + 2 * y) % 8 for x in range(W))
                                                       for y in range(H)], extra=plte)
    ppm_data = b"".join(rows)
    files["valid.ppm"] = b"P6\n%d %d\n255\n" % (W, H) + ppm_data
    files["valid_comment.ppm"] = b"P6 # made by gen_images_corpus.py\n%d\n# h\n%d 255\n" % (W, H) + ppm_data
    files["valid.pgm"] = b"P5 %d %d 255\n" % (W, H) + bytes(gray(x, y) for y in range(H) for x in range(W))
    files["valid16.pgm"] = b"P5 %d %d 1000\n" % (W, H) + b"".join(
        struct.pack(">H", gray(x, y) * 1000 // 255) for y in range(H) for x in range(W))
    bgr = [bytes(v for x in range(W) for v in pattern(x, y)[::-1]) for y in range(H)]
    files["valid24.bmp"] = bmp(W, H, 24, bgr)
    files["valid24_topdown.bmp"] = bmp(W, H, 24, bgr, top_down=True)
    files["valid24_core.bmp"] = bmp(W, H, 24, bgr, header=12)
    files["valid32.bmp"] = bmp(W, H, 32, [bytes(v for x in range(W) for v in pattern(x, y)[::-1] + (0,))
                                          for y in range(H)])
    files["valid32_v5.bmp"] = bmp(W, H, 32, [b"".join(struct.pack("<I", (r << 24) | (g << 16) | (b << 8))
                                                      for r, g, b in (pattern(x, y) for x in range(W)))
                                             for y in range(H)], header=124, comp=3,
                                  masks=(0xFF000000, 0xFF0000, 0xFF00))
    files["valid565.bmp"] = bmp(W, H, 16, [b"".join(struct.pack("<H", (r >> 3) << 11 | (g >> 2) << 5 | b >> 3)
                                                    for r, g, b in (pattern(x, y) for x in range(W)))
                                           for y in range(H)], comp=3, masks=(0xF800, 0x07E0, 0x001F))
    files["valid8.bmp"] = bmp(W, H, 8, [bytes((x + 2 * y) % 8 for x in range(W)) for y in range(H)],
                              palette=pal)
    files["valid4.bmp"] = bmp(W, H, 4, [pack_bits([(x + 2 * y) % 8 for x in range(W)], 4) for y in range(H)],
                              palette=pal)
    files["valid1.bmp"] = bmp(W, H, 1, [pack_bits([(x + y) % 2 for x in range(W)], 1) for y in range(H)],
                              palette=pal[:2])
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    jpegs(out, files["valid.ppm"])


def jpegs(out, ppm):
    if not shutil.which("cjpeg"):
        print("cjpeg not found: the JPEG seeds are left as they are", file=sys.stderr)
        return
    big = b"P6\n32 24\n255\n" + bytes(v for y in range(24) for x in range(32) for v in pattern(x, y))
    for name, args in (("valid.jpg", []), ("valid_progressive.jpg", ["-progressive"]),
                       ("valid_gray.jpg", ["-grayscale"]), ("valid_444.jpg", ["-sample", "1x1"])):
        data = subprocess.run(["cjpeg", "-quality", "90"] + args, input=big, capture_output=True,
                              check=True).stdout
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    # truncated halfway through the entropy-coded data
    with open(os.path.join(out, "bad_truncated.jpg"), "wb") as f:
        f.write(data[: len(data) * 2 // 3])


def hostile(out):
    files = {}
    # a 16-bit PGM (maxval 555) declaring 2x2 pixels, 8 bytes, with one data byte
    files["bad_pgm16_one_byte.pgm"] = b"P5 2 2 555\n\x01"
    # a 37-byte GIF declaring 65535x65535 (logical screen and image)
    files["bad_gif_huge.gif"] = (b"GIF89a" + struct.pack("<HHBBB", 65535, 65535, 0, 0, 0) +
                                 b"!\xf9\x04\x00\x00\x00\x00\x00" +
                                 b"\x2c" + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0) +
                                 b"\x02\x02\x44\x01\x00\x3b")
    # IHDR of 26000x26000 and an empty IDAT
    files["bad_png_huge_ihdr.png"] = (b"\x89PNG\r\n\x1a\n" +
                                      chunk(b"IHDR", struct.pack(">IIBBBBB", 26000, 26000, 8, 2, 0, 0, 0)) +
                                      chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    # a real decompression bomb: 3000x3000 grey zeros in 9 KB (over the fuzz target's limit)
    zrow = b"\0" * 3000
    files["bad_png_bomb.png"] = png(3000, 3000, 8, 0, [zrow] * 3000)
    files["bad_png_truncated.png"] = png(W, H, 8, 2, rgb_rows(W, H))[:60]
    files["bad_png_zero.png"] = (b"\x89PNG\r\n\x1a\n" +
                                 chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)) +
                                 chunk(b"IEND", b""))
    # SOF0 of 65000x65000 and a scan header, no tables, no data
    files["bad_jpeg_huge_sof.jpg"] = (b"\xff\xd8" + b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, 65000, 65000, 3) +
                                      b"\x01\x22\x00\x02\x11\x01\x03\x11\x01" +
                                      b"\xff\xda" + struct.pack(">HB", 12, 3) + b"\x01\x00\x02\x11\x03\x11" +
                                      b"\x00\x3f\x00" + b"\xff\xd9")
    # BMPs: 2^31-1 squared (signed overflow in w * h), 4000x4000 in 60 bytes, zero width, RLE
    files["bad_bmp_huge.bmp"] = (b"BM" + struct.pack("<IHHI", 58, 0, 0, 54) +
                                 struct.pack("<IiiHHIIiiII", 40, 2**31 - 1, 2**31 - 1, 1, 24, 0, 0, 0, 0, 0, 0) +
                                 b"\0\0\0\0")
    files["bad_bmp_short.bmp"] = (b"BM" + struct.pack("<IHHI", 60, 0, 0, 54) +
                                  struct.pack("<IiiHHIIiiII", 40, 4000, 4000, 1, 24, 0, 0, 0, 0, 0, 0) +
                                  b"\0" * 6)
    files["bad_bmp_zero.bmp"] = bmp(0, 3, 24, [b""] * 3)
    files["bad_bmp_rle.bmp"] = bmp(W, H, 8, [bytes(W)] * H, comp=1, palette=[(0, 0, 0)])
    files["bad_bmp_offset.bmp"] = bmp(W, H, 24, [bytes(3 * W)] * H)[:10] + struct.pack("<I", 20) + \
        bmp(W, H, 24, [bytes(3 * W)] * H)[14:]
    files["bad_ppm_short.ppm"] = b"P6 5000 5000 255\n" + b"\x80" * 64
    files["bad_ppm_zero.pgm"] = b"P5 0 0 255\n"
    files["bad_ppm_ascii.ppm"] = b"P3 1 1 255\n1 2 3\n"
    files["bad_ppm_maxval.pgm"] = b"P5 1 1 70000\n\0\0"
    files["bad_empty.png"] = b""
    files["bad_text.png"] = b"this is not a png"
    files["bad_tiff.tif"] = b"II*\0" + b"\0" * 12
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                             "corpus", "images")
    os.makedirs(out, exist_ok=True)
    valid(out)
    hostile(out)


if __name__ == "__main__":
    main()
