/* Reading an ONNX file: its size checked before it is read, the protobuf checked (lengths,
 * nesting) before protobuf-c decodes it under an allocation budget, then the ModelProto copied
 * into the importer's own graph (values by name, nodes, attributes) and the decoded message
 * freed. Every name a node reads must exist; every name is produced once. */
#define _POSIX_C_SOURCE 200809L
#include "import/onnx_pb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- the file -------------------------------------------------------------------------------- */

uint8_t *ox_read_file(gf_ctx *ctx, const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        if (f) fclose(f);
        gf_ctx_set_error(ctx, GF_ERR_IO, "%s: cannot open (not a readable regular file)", path);
        return NULL;
    }
    const int64_t lim = gf_ctx_limits(ctx)->data_bytes;
    if ((int64_t)st.st_size > lim) {
        fclose(f);
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: %lld bytes, more than %lld (limit data-bytes)",
                         path, (long long)st.st_size, (long long)lim);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf || fread(buf, 1, n, f) != n) {
        fclose(f);
        free(buf);
        gf_ctx_set_error(ctx, buf ? GF_ERR_IO : GF_ERR_NOMEM, "%s: cannot read %zu bytes", path, n);
        return NULL;
    }
    fclose(f);
    *size = n;
    return buf;
}

/* ---- protobuf, checked ----------------------------------------------------------------------- */

/* Reads a varint at *i (at most 10 bytes, inside n); false when malformed. */
static bool varint(const uint8_t *p, size_t n, size_t *i, uint64_t *out) {
    uint64_t v = 0;
    for (int s = 0; s < 70; s += 7) {
        if (*i >= n) return false;
        uint8_t c = p[(*i)++];
        v |= (uint64_t)(c & 0x7f) << s;
        if (!(c & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Walks the wire format of one message: every field's length must fit, groups are refused,
 * and fields declared as messages are walked in turn, at most OX_MAX_NESTING deep. */
static bool scan(const uint8_t *p, size_t n, const ProtobufCMessageDescriptor *d, int depth,
                 const char **why) {
    if (depth > OX_MAX_NESTING) {
        *why = "messages nested too deep";
        return false;
    }
    size_t i = 0;
    while (i < n) {
        uint64_t key, v;
        if (!varint(p, n, &i, &key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff) {
            *why = "a malformed field key";
            return false;
        }
        switch (key & 7) {
        case 0: if (!varint(p, n, &i, &v)) { *why = "a truncated varint"; return false; } break;
        case 1: if (n - i < 8) { *why = "a truncated 64-bit value"; return false; } i += 8; break;
        case 5: if (n - i < 4) { *why = "a truncated 32-bit value"; return false; } i += 4; break;
        case 2: {
            if (!varint(p, n, &i, &v) || v > n - i) {
                *why = "a length past the end of its message";
                return false;
            }
            const ProtobufCFieldDescriptor *fd =
                d ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3)) : NULL;
            if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE &&
                !scan(p + i, (size_t)v, fd->descriptor, depth + 1, why))
                return false;
            i += (size_t)v;
            break;
        }
        default: *why = "an unsupported wire type"; return false;
        }
    }
    return true;
}

/* protobuf-c's allocator, counting: each block carries its size in front. */
typedef struct budget {
    size_t used, cap;
} budget;

typedef union block_head {
    size_t size;
    max_align_t align;
} block_head;

static void *budget_alloc(void *data, size_t size) {
    budget *b = data;
    if (size > b->cap - b->used || b->cap - b->used - size < sizeof(block_head)) {
        b->used = b->cap; /* remember that it ran out */
        return NULL;
    }
    block_head *h = malloc(sizeof *h + size);
    if (!h) return NULL;
    h->size = size;
    b->used += size + sizeof *h;
    return h + 1;
}

static void budget_free(void *data, void *ptr) {
    if (!ptr) return;
    budget *b = data;
    block_head *h = (block_head *)ptr - 1;
    if (b->used != b->cap) b->used -= h->size + sizeof *h;
    free(h);
}

struct ox_pb {
    ProtobufCMessage *msg;
    ProtobufCAllocator alloc; /* freeing needs the allocator the decoder used */
    budget b;
};

ox_pb *ox_pb_decode(gf_ctx *ctx, const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                    size_t size, const char *what) {
    const char *why = NULL;
    if (!scan(data, size, desc, 0, &why)) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: not a valid %s protobuf (%s)", what,
                         desc->short_name, why);
        return NULL;
    }
    ox_pb *h = malloc(sizeof *h);
    if (!h) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "%s: out of memory", what);
        return NULL;
    }
    const int64_t lim = gf_ctx_limits(ctx)->data_bytes;
    const uint64_t ratio_cap = ((uint64_t)64 << 20) + 32 * (uint64_t)size;
    h->b.used = 0;
    h->b.cap = (size_t)(ratio_cap < (uint64_t)lim ? ratio_cap : (uint64_t)lim);
    h->alloc = (ProtobufCAllocator){budget_alloc, budget_free, &h->b};
    h->msg = protobuf_c_message_unpack(desc, &h->alloc, size, data);
    if (!h->msg) {
        const bool over = h->b.used == h->b.cap;
        const long long cap = (long long)h->b.cap;
        free(h);
        if (over)
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: decoding needs more than %lld bytes (64 MiB "
                             "plus 32 per byte of input, at most the data-bytes limit)", what, cap);
        else
            gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: not a valid %s protobuf (rejected by the "
                             "decoder)", what, desc->short_name);
        return NULL;
    }
    return h;
}

ProtobufCMessage *ox_pb_msg(const ox_pb *p) { return p->msg; }
int64_t ox_pb_bytes(const ox_pb *p) { return (int64_t)p->b.used; }

void ox_pb_free(ox_pb *p) {
    if (!p) return;
    protobuf_c_message_free_unpacked(p->msg, &p->alloc);
    free(p);
}
