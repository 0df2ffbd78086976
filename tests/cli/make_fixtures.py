"""Writes small test inputs for the CLI tests with the standard library only: grayscale and RGB
PNG images in an image-folder layout, a CSV table, single PNG/PGM files. Usage:
    python3 make_fixtures.py DIR
"""
import gzip
import os
import random
import struct
import sys
import zlib


def png(path, w, h, channels, pixel):
    """pixel(x, y) -> int (grey) or (r, g, b)."""
    color = {1: 0, 3: 2}[channels]
    raw = bytearray()
    for y in range(h):
        raw.append(0)
        for x in range(w):
            p = pixel(x, y)
            raw.extend([p] if channels == 1 else p)

    def chunk(tag, data):
        c = struct.pack(">I", len(data)) + tag + data
        return c + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(bytes(raw))))
        f.write(chunk(b"IEND", b""))


def idx_images(path, images, rows, cols):
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(images), rows, cols))
        for im in images:
            f.write(bytes(im))


def idx_labels(path, labels):
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">II", 0x801, len(labels)))
        f.write(bytes(labels))


def digit(rng, k):
    """A 28x28 image of class k: a horizontal bar at row 3 + 2k and a vertical bar at column
    3 + 2k, on faint noise."""
    im = [rng.randint(0, 30) for _ in range(28 * 28)]
    r = c = 3 + 2 * k + rng.randint(-1, 1)
    for x in range(4, 24):
        for dy in (0, 1):
            im[(r + dy) * 28 + x] = 200 + rng.randint(0, 55)
    for y in range(4, 24):
        for dx in (0, 1):
            im[y * 28 + c + dx] = 200 + rng.randint(0, 55)
    return im


def main(out):
    rng = random.Random(1)
    os.makedirs(out, exist_ok=True)
    # image folder: three classes of 12x12 RGB images told apart by where the bright square is
    for split, n in (("train", 10), ("test", 4)):
        for k, name in enumerate(("left", "middle", "right")):
            d = os.path.join(out, "shapes", split, name)
            os.makedirs(d, exist_ok=True)
            for i in range(n):
                x0 = 1 + 4 * k
                def pix(x, y, x0=x0):
                    on = x0 <= x < x0 + 3 and 4 <= y < 8
                    v = 220 if on else rng.randint(0, 40)
                    return (v, v // 2, 255 - v)
                png(os.path.join(d, "%s_%02d.png" % (name, i)), 12, 12, 3, pix)
    # one 28x28 grey digit-like image and one of another size (resized on read)
    png(os.path.join(out, "seven.png"), 28, 28, 1,
        lambda x, y: 255 if (y == 6 and 8 <= x <= 20) or (x == 20 - (y - 6) // 2 and 6 <= y <= 24) else 0)
    png(os.path.join(out, "big.png"), 40, 36, 3, lambda x, y: (x * 6 % 256, y * 7 % 256, 90))
    # an MNIST-style IDX folder: 400 training and 100 test images of 10 classes
    d = os.path.join(out, "idx")
    os.makedirs(d, exist_ok=True)
    for split, n in (("train", 400), ("t10k", 100)):
        labels = [i % 10 for i in range(n)]
        idx_images(os.path.join(d, "%s-images-idx3-ubyte.gz" % split), [digit(rng, k) for k in labels], 28, 28)
        idx_labels(os.path.join(d, "%s-labels-idx1-ubyte.gz" % split), labels)
    png(os.path.join(out, "digit3.png"), 28, 28, 1, lambda x, y, im=digit(rng, 3): im[y * 28 + x])
    # a CSV: 3 classes, 4 features, separable
    with open(os.path.join(out, "table.csv"), "w") as f:
        f.write("f1,f2,f3,f4,species\n")
        for i in range(150):
            k = i % 3
            row = [k * 2.0 + rng.gauss(0, 0.4), rng.gauss(0, 1), 5 - k + rng.gauss(0, 0.3),
                   rng.gauss(10, 2)]
            f.write(",".join("%.3f" % v for v in row) + ",%s\n" % ("setosa", "versicolor", "virginica")[k])
    # rows to predict: header in another column order, no label
    with open(os.path.join(out, "rows.csv"), "w") as f:
        f.write("f4,f3,f2,f1\n10,5,0,0\n10,1,0,4\n")
    with open(os.path.join(out, "rows_plain.csv"), "w") as f:
        f.write("0,0,5,10\n4,0,1,10\n")


if __name__ == "__main__":
    main(sys.argv[1])
