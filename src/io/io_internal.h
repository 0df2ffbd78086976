/* Internals shared by the file readers and writers (src/io, src/data, src/transfer): the atomic
 * file writer and the budget check run over JSON text before cJSON builds it. Not installed. */
#ifndef GRAFT_IO_INTERNAL_H
#define GRAFT_IO_INTERNAL_H

#include "core/internal.h"

/* Writes the whole content to fd; false (errno set) on failure. */
typedef bool (*gf_write_fn)(int fd, void *arg);

/* Replaces path with what fn writes: a temporary file "<path>.tmp.XXXXXX" beside it, fsync,
 * rename over path, fsync of the folder. path must be absent or a regular file (never a
 * link, device, FIFO or folder: they would be swapped for a file), and must not end in '/'.
 * Stale temporary files of path's own pattern that a killed writer left (regular files older
 * than this process) are removed first. On failure the old file is unchanged, no temporary file
 * remains, and ctx (may be NULL: no message) names path and the cause. */
gf_status gf_atomic_write(gf_ctx *ctx, const char *path, gf_write_fn fn, void *arg);
/* The check gf_atomic_write makes of path before writing, alone. */
gf_status gf_check_replaceable(gf_ctx *ctx, const char *path);
/* Removes "<path>.tmp.XXXXXX" files (exactly six letters or digits, regular files, modified
 * before this process started); returns how many. */
int gf_clean_stale_temps(const char *path);
/* write(2) until done, retrying on EINTR. */
bool gf_write_all(int fd, const void *p, size_t n);

/* The text of a model spec file (NUL-terminated; its length in *len when len is not NULL), at
 * most 16 MiB so a huge file or an endless device is refused; NULL with a ctx error naming
 * the file. The caller frees it. */
char *gf_spec_read_text(gf_ctx *ctx, const char *path, size_t *len);

/* Checks a JSON text against ctx's json-nodes and json-depth limits without building it, and
 * refuses escaped NUL characters ("\u0000": C strings would end there). Errors read
 * "LABEL: WHAT ...". Linear in len; stops at the first excess. */
gf_status gf_json_check(gf_ctx *ctx, const char *text, size_t len, const char *label,
                        const char *what);

/* "(limit NAME)" messages: the limit's name for a gf_limits field. */
#define GF_LIMIT_HINT(name) "(limit " name ")"

#endif
