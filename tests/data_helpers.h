/* Helpers for the data tests (header only, each test is one executable): a scratch folder that
 * is removed at exit, small files, a minimal PNG writer (zlib), a JSON fixture reader. */
#ifndef GRAFT_DATA_HELPERS_H
#define GRAFT_DATA_HELPERS_H

#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char th_dir[256];

static inline int th_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static inline void th_cleanup(void) {
    if (th_dir[0]) nftw(th_dir, th_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Creates the scratch folder once; returns its path. */
static inline const char *th_tmpdir(void) {
    if (!th_dir[0]) {
        snprintf(th_dir, sizeof th_dir, "/tmp/graft-test-XXXXXX");
        if (!mkdtemp(th_dir)) {
            perror("mkdtemp");
            exit(1);
        }
        atexit(th_cleanup);
    }
    return th_dir;
}

/* th_path("a/b.png") -> "<tmpdir>/a/b.png" in a rotating static buffer. */
static inline const char *th_path(const char *rel) {
    static char bufs[8][512];
    static int at;
    char *b = bufs[at++ % 8];
    snprintf(b, 512, "%s/%s", th_tmpdir(), rel);
    return b;
}

static inline void th_mkdir(const char *rel) { mkdir(th_path(rel), 0755); }

static inline void th_write(const char *rel, const void *data, size_t n) {
    FILE *f = fopen(th_path(rel), "wb");
    if (!f) {
        perror(rel);
        exit(1);
    }
    fwrite(data, 1, n, f);
    fclose(f);
}

static inline void th_write_str(const char *rel, const char *s) { th_write(rel, s, strlen(s)); }

static inline void th_put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void th_chunk(FILE *f, const char *type, const uint8_t *data, uint32_t n) {
    uint8_t hdr[8];
    th_put32(hdr, n);
    memcpy(hdr + 4, type, 4);
    fwrite(hdr, 1, 8, f);
    if (n) fwrite(data, 1, n, f);
    uLong crc = crc32(0L, (const Bytef *)type, 4);
    if (n) crc = crc32(crc, data, n);
    uint8_t c[4];
    th_put32(c, (uint32_t)crc);
    fwrite(c, 1, 4, f);
}

/* Writes an 8-bit PNG of interleaved pixels [h, w, c], c = 1 (grey), 3 (RGB) or 4 (RGBA). */
static inline void th_write_png(const char *rel, const uint8_t *px, int h, int w, int c) {
    FILE *f = fopen(th_path(rel), "wb");
    if (!f) {
        perror(rel);
        exit(1);
    }
    static const uint8_t sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    fwrite(sig, 1, 8, f);
    uint8_t ihdr[13];
    th_put32(ihdr, (uint32_t)w);
    th_put32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8;
    ihdr[9] = c == 1 ? 0 : c == 3 ? 2 : 6;
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    th_chunk(f, "IHDR", ihdr, 13);
    size_t raw_n = (size_t)h * ((size_t)w * c + 1);
    uint8_t *raw = malloc(raw_n);
    for (int y = 0; y < h; y++) {
        uint8_t *row = raw + (size_t)y * ((size_t)w * c + 1);
        row[0] = 0; /* filter: none */
        memcpy(row + 1, px + (size_t)y * w * c, (size_t)w * c);
    }
    uLongf zn = compressBound(raw_n);
    uint8_t *z = malloc(zn);
    compress2(z, &zn, raw, raw_n, 6);
    th_chunk(f, "IDAT", z, (uint32_t)zn);
    th_chunk(f, "IEND", NULL, 0);
    fclose(f);
    free(raw);
    free(z);
}

/* Whole file as a NUL-terminated string (malloc'd) or NULL. */
static inline char *th_read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

/* A fixture under tests/fixtures (GRAFT_SOURCE_DIR is set by ctest). */
static inline char *th_fixture(const char *name) {
    const char *src = getenv("GRAFT_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s", src ? src : ".", name);
    char *t = th_read_text(path);
    if (!t) fprintf(stderr, "cannot read %s (set GRAFT_SOURCE_DIR)\n", path);
    return t;
}

#endif
