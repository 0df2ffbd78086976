/* Step arena: a list of chunks handed out by bumping an offset. Reset folds the chunks into
 * one so that a repeated step of the same size reuses the same block forever. */
#define _DEFAULT_SOURCE /* madvise */
#include "graft/core.h"
#include "core/internal.h"

#include <stdint.h>
#include <stdlib.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define ARENA_ALIGN 64
/* Chunks this large are placed on 2 MiB boundaries and offered to the kernel as huge pages:
 * a training step streams its activations through multi-megabyte tensors, and with 4 KiB
 * pages the TLB misses cost the elementwise kernels up to half their speed (measured in
 * docs/PERFORMANCE.md). Where transparent huge pages are off this is only an alignment. */
#define HUGE_PAGE ((size_t)2 << 20)

typedef struct chunk {
    struct chunk *next;
    size_t size;
    size_t used;
    unsigned char *mem;
    size_t mapped; /* bytes mapped with mmap at mem (0: mem came from aligned_alloc) */
} chunk;

struct gf_arena {
    chunk *head;      /* current chunk (most recent) */
    size_t capacity;  /* sum of chunk sizes */
    size_t used;      /* bytes handed out since reset, including alignment */
    size_t peak;
    size_t step_peak; /* largest `used` since the last reset */
};

#if defined(__linux__)
/* bytes (a multiple of HUGE_PAGE) of fresh zero pages on a HUGE_PAGE boundary, or NULL. Large
 * chunks are mapped rather than malloc'd so that freeing one always gives its pages back:
 * malloc keeps freed blocks of this size in its heaps (its mmap threshold rises after the
 * first such free), and contexts made and freed over and over (one per replica per gf_fit)
 * then left the process with hundreds of MiB of idle heap. */
static unsigned char *map_huge(size_t bytes) {
    const size_t span = bytes + HUGE_PAGE;
    unsigned char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    const size_t lead = (HUGE_PAGE - (uintptr_t)p % HUGE_PAGE) % HUGE_PAGE;
    if (lead) munmap(p, lead);
    if (HUGE_PAGE - lead) munmap(p + lead + bytes, HUGE_PAGE - lead);
    return p + lead;
}
#endif

static chunk *chunk_new(size_t size) {
    chunk *c = malloc(sizeof *c);
    if (!c) return NULL;
    const size_t align = size >= HUGE_PAGE ? HUGE_PAGE : ARENA_ALIGN;
    const size_t bytes = (size + align - 1) / align * align;
    c->mapped = 0;
#if defined(__linux__)
    if (align == HUGE_PAGE && (c->mem = map_huge(bytes)) != NULL) c->mapped = bytes;
    else
#endif
        c->mem = aligned_alloc(align, bytes);
    if (!c->mem) {
        free(c);
        return NULL;
    }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (align == HUGE_PAGE) (void)madvise(c->mem, bytes, MADV_HUGEPAGE); /* a hint only */
#endif
    c->size = size;
    c->used = 0;
    c->next = NULL;
    return c;
}

static void chunks_free(chunk *c) {
    while (c) {
        chunk *n = c->next;
#if defined(__linux__)
        if (c->mapped) munmap(c->mem, c->mapped);
        else
#endif
            free(c->mem);
        free(c);
        c = n;
    }
}

gf_arena *gf_arena_new(size_t initial_bytes) {
    gf_arena *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    if (initial_bytes < 4096) initial_bytes = 4096;
    a->head = chunk_new(initial_bytes);
    if (!a->head) {
        free(a);
        return NULL;
    }
    a->capacity = initial_bytes;
    return a;
}

void gf_arena_free(gf_arena *a) {
    if (!a) return;
    chunks_free(a->head);
    free(a);
}

void *gf_arena_alloc(gf_arena *a, size_t bytes) {
    size_t need = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (need == 0) need = ARENA_ALIGN;
    if (need < bytes) return NULL; /* overflow */
    chunk *c = a->head;
    if (c->size - c->used < need) {
        size_t size = a->capacity; /* geometric growth keeps the chunk count logarithmic */
        if (size < need) size = need;
        chunk *n = chunk_new(size);
        if (!n) return NULL;
        n->next = c;
        a->head = n;
        a->capacity += size;
        c = n;
    }
    void *p = c->mem + c->used;
    c->used += need;
    a->used += need;
    if (a->used > a->peak) a->peak = a->used;
    if (a->used > a->step_peak) a->step_peak = a->used;
    return p;
}

void gf_arena_reset(gf_arena *a) {
    /* several chunks: this step needed more than one block held; or one too small for the
     * step's peak (chunks given back by a rewind): replace with one that holds it all */
    if (a->head->next || a->head->size < a->step_peak) {
        const size_t size = a->capacity > a->step_peak ? a->capacity : a->step_peak;
        chunk *one = chunk_new(size);
        if (one) {
            chunks_free(a->head);
            a->head = one;
            a->capacity = size;
        } else {
            for (chunk *c = a->head; c; c = c->next) c->used = 0;
        }
    }
    a->head->used = 0;
    a->used = 0;
    a->step_peak = 0;
}

gf_arena_mark gf_arena_get_mark(const gf_arena *a) {
    gf_arena_mark m = {a->head, a->head->used, a->used};
    return m;
}

bool gf_arena_since(const gf_arena *a, gf_arena_mark m, const void *p) {
    const unsigned char *q = p;
    for (const chunk *c = a->head; c; c = c->next) {
        const size_t from = c == m.chunk ? m.chunk_used : 0;
        if (q >= c->mem + from && q < c->mem + c->size) return true;
        if (c == m.chunk) break;
    }
    return false;
}

void gf_arena_rewind(gf_arena *a, gf_arena_mark m) {
    while (a->head != m.chunk && a->head->next) { /* chunks added since the mark go back */
        chunk *c = a->head;
        a->head = c->next;
        a->capacity -= c->size;
        c->next = NULL;
        chunks_free(c);
    }
    a->head->used = m.chunk_used;
    a->used = m.used;
}

const void *gf_arena_mark_addr(const gf_arena *a, gf_arena_mark m) {
    return a->head == m.chunk ? a->head->mem + m.chunk_used : NULL;
}

size_t gf_arena_used(const gf_arena *a) { return a->used; }
size_t gf_arena_capacity(const gf_arena *a) { return a->capacity; }
size_t gf_arena_peak(const gf_arena *a) { return a->peak; }
