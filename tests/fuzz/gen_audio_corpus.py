#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_audio.c into tests/fuzz/corpus/audio/: small valid
files (WAV PCM 8/16/24 bit and float, stereo, AIFF, AU; FLAC and Ogg/Vorbis written through
libsndfile with ctypes when libsndfile1 is installed) and the hostile inputs the reader must refuse
cheaply: truncated headers, chunk sizes near 4 GiB, zero channels, zero and huge sample rates, an
unknown format tag, a FLAC STREAMINFO declaring 2^36 samples, an Ogg page of garbage, text.
Standard library only. Usage: gen_audio_corpus.py [OUT_DIR]"""
import ctypes
import ctypes.util
import math
import os
import struct
import sys

RATE = 8000
N = 200


def samples():
    return [math.sin(2 * math.pi * 440 * i / RATE) * 0.5 for i in range(N)]


def wav(tag, channels, rate, bits, data, riff=None, fmt_size=16, data_size=None):
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, (rate * block) & 0xFFFFFFFF,
                      block & 0xFFFF, bits)
    fmt = fmt + b"\0" * (fmt_size - 16) if fmt_size >= 16 else fmt
    body = b"WAVE" + b"fmt " + struct.pack("<I", fmt_size) + fmt
    body += b"data" + struct.pack("<I", len(data) if data_size is None else data_size) + data
    return b"RIFF" + struct.pack("<I", len(body) if riff is None else riff) + body


def pcm16(xs):
    return b"".join(struct.pack("<h", int(v * 32767)) for v in xs)


def valid_wavs():
    xs = samples()
    out = {"ok_pcm16.wav": wav(1, 1, RATE, 16, pcm16(xs)),
           "ok_u8.wav": wav(1, 1, RATE, 8, bytes(int(128 + v * 127) for v in xs)),
           "ok_pcm24.wav": wav(1, 1, RATE, 24,
                               b"".join(struct.pack("<i", int(v * 8388607))[:3] for v in xs)),
           "ok_float.wav": wav(3, 1, RATE, 32, b"".join(struct.pack("<f", v) for v in xs)),
           "ok_stereo.wav": wav(1, 2, RATE, 16, pcm16([v for v in xs for _ in (0, 1)]))}
    comm = struct.pack(">hIh", 1, N, 16) + b"\x40\x0b\xfa\x00" + b"\0" * 6  # 8000 as 80-bit
    ssnd = struct.pack(">II", 0, 0) + b"".join(struct.pack(">h", int(v * 32767)) for v in xs)
    aiff = b"AIFF" + b"COMM" + struct.pack(">I", len(comm)) + comm + b"SSND" + \
        struct.pack(">I", len(ssnd)) + ssnd
    out["ok.aiff"] = b"FORM" + struct.pack(">I", len(aiff)) + aiff
    au_data = b"".join(struct.pack(">h", int(v * 32767)) for v in xs)
    out["ok.au"] = b".snd" + struct.pack(">IIIII", 24, len(au_data), 3, RATE, 1) + au_data
    return out


def hostile():
    xs = pcm16(samples()[:32])
    good = wav(1, 1, RATE, 16, xs)
    streaminfo = struct.pack(">HH", 4096, 4096) + b"\0" * 6
    # rate 16000 (20 bits), channels-1 = 0 (3 bits), bps-1 = 15 (5 bits), 2^36 - 1 samples
    packed = (16000 << 44) | (0 << 41) | (15 << 36) | ((1 << 36) - 1)
    streaminfo += packed.to_bytes(8, "big") + b"\0" * 16
    return {"bad_truncated_header.wav": good[:30],
            "bad_riff_only.wav": b"RIFF",
            "bad_huge_data.wav": wav(1, 1, RATE, 16, xs, data_size=0xFFFFFFF0),
            "bad_huge_riff.wav": wav(1, 1, RATE, 16, xs, riff=0xFFFFFFFF),
            "bad_huge_fmt.wav": wav(1, 1, RATE, 16, xs, fmt_size=0x7FFFFFF0)[:60],
            "bad_zero_channels.wav": wav(1, 0, RATE, 16, xs),
            "bad_many_channels.wav": wav(1, 65535, RATE, 16, xs),
            "bad_zero_rate.wav": wav(1, 1, 0, 16, xs),
            "bad_huge_rate.wav": wav(1, 1, 0xFFFFFFFF, 16, xs),
            "bad_zero_bits.wav": wav(1, 1, RATE, 0, xs),
            "bad_format_tag.wav": wav(0x1234, 1, RATE, 16, xs),
            "bad_empty_data.wav": wav(1, 1, RATE, 16, b""),
            "bad_flac_huge.flac": b"fLaC" + bytes([0x80, 0, 0, 34]) + streaminfo + b"\xff\xf8" +
            b"\0" * 20,
            "bad_ogg_garbage.ogg": b"OggS" + b"\0" * 22 + b"\x01\x1e" + b"\x01vorbis" +
            b"\xff" * 30,
            "bad_text.wav": b"this is not a sound file\n"}


class SfInfo(ctypes.Structure):
    _fields_ = [("frames", ctypes.c_int64), ("samplerate", ctypes.c_int),
                ("channels", ctypes.c_int), ("format", ctypes.c_int),
                ("sections", ctypes.c_int), ("seekable", ctypes.c_int)]


def libsndfile_seeds(out_dir):
    """FLAC and Ogg/Vorbis written by libsndfile itself (its encoders), when it is installed."""
    name = ctypes.util.find_library("sndfile")
    if not name:
        print("libsndfile not found: FLAC and Ogg seeds kept as they are")
        return
    sf = ctypes.CDLL(name)
    sf.sf_open.restype = ctypes.c_void_p
    sf.sf_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(SfInfo)]
    sf.sf_writef_float.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_int64]
    sf.sf_close.argtypes = [ctypes.c_void_p]
    xs = (ctypes.c_float * N)(*samples())
    for fname, fmt in (("ok.flac", 0x170000 | 0x0002), ("ok.ogg", 0x200000 | 0x0060)):
        info = SfInfo(0, RATE, 1, fmt, 0, 0)
        path = os.path.join(out_dir, fname)
        h = sf.sf_open(path.encode(), 0x20, ctypes.byref(info))  # SFM_WRITE
        if not h:
            print("libsndfile cannot write", fname)
            continue
        sf.sf_writef_float(h, xs, N)
        sf.sf_close(h)
        with open(path, "rb") as f:
            data = f.read()
        with open(os.path.join(out_dir, "bad_truncated_" + fname), "wb") as f:
            f.write(data[: len(data) // 2])


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus", "audio")
    os.makedirs(out_dir, exist_ok=True)
    for name, data in {**valid_wavs(), **hostile()}.items():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
    libsndfile_seeds(out_dir)


if __name__ == "__main__":
    main()
