/* graft safetensors: read and write the safetensors format (8-byte little-endian header
 * length, UTF-8 JSON header, raw little-endian data), validating every field of untrusted
 * files, memory-mapping them on read and writing atomically. */
#ifndef GRAFT_SAFETENSORS_H
#define GRAFT_SAFETENSORS_H

#include "graft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gf_st_dtype {
    GF_ST_BOOL, GF_ST_U8, GF_ST_I8, GF_ST_I16, GF_ST_U16, GF_ST_I32, GF_ST_U32, GF_ST_I64,
    GF_ST_U64, GF_ST_F16, GF_ST_BF16, GF_ST_F32, GF_ST_F64,
    GF_ST_DTYPE_COUNT
} gf_st_dtype;

/* "F32", "BF16", ... and the element size in bytes. */
const char *gf_st_dtype_name(gf_st_dtype dt);
size_t gf_st_dtype_size(gf_st_dtype dt);
/* Parses a dtype name; returns false when unknown. */
bool gf_st_dtype_parse(const char *name, gf_st_dtype *out);

/* The reference implementation's header limit: the default of gf_limits.header_bytes, which
 * the reader applies (with json-nodes and json-depth, before the header is parsed). */
#define GF_ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

typedef struct gf_st_info {
    const char *name;
    gf_st_dtype dtype;
    int ndim;
    int64_t shape[GF_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end;  /* byte offsets within the data section */
    const void *data;     /* first byte (inside the mapping; not aligned) */
} gf_st_info;

typedef struct gf_st_file gf_st_file;

/* Opens and validates a file (memory-mapped). NULL with a ctx error naming the file and, for
 * a bad entry, the tensor. Close with gf_st_close. */
gf_st_file *gf_st_open(gf_ctx *ctx, const char *path);
/* Validates a buffer already in memory (not copied: it must outlive the handle). `label`
 * names it in messages. */
gf_st_file *gf_st_open_memory(gf_ctx *ctx, const void *buf, size_t len, const char *label);
void gf_st_close(gf_st_file *f);

const char *gf_st_path(const gf_st_file *f);
int gf_st_count(const gf_st_file *f);
/* Tensors in data order (ascending offsets). Borrowed, valid until gf_st_close. */
const gf_st_info *gf_st_get(const gf_st_file *f, int i);
const gf_st_info *gf_st_find(const gf_st_file *f, const char *name);
int gf_st_metadata_count(const gf_st_file *f);
const char *gf_st_metadata_key(const gf_st_file *f, int i);
const char *gf_st_metadata_value(const gf_st_file *f, int i);
/* Value for key, or NULL. */
const char *gf_st_metadata_get(const gf_st_file *f, const char *key);

/* New persistent tensor with the entry's shape: float dtypes become float32, integer and
 * bool dtypes int64. Free with gf_tensor_free. */
gf_tensor *gf_st_load(gf_ctx *ctx, const gf_st_file *f, const gf_st_info *info);
/* Copies (and converts) an entry into an existing tensor of the same shape; a shape or kind
 * mismatch is an error naming the tensor and both shapes. */
gf_status gf_st_read_into(gf_ctx *ctx, const gf_st_file *f, const gf_st_info *info,
                          gf_tensor *dst);

/* ---- writing ------------------------------------------------------------------------- */
typedef struct gf_st_writer gf_st_writer;

gf_st_writer *gf_st_writer_new(gf_ctx *ctx);
void gf_st_writer_free(gf_st_writer *w);
/* Adds a tensor (borrowed until save) stored as `as`: F32/F16/BF16 for float32 tensors,
 * I64/I32/U8/BOOL for int64 tensors. Duplicate names are refused. */
gf_status gf_st_writer_add(gf_st_writer *w, const char *name, const gf_tensor *t,
                           gf_st_dtype as);
gf_status gf_st_writer_set_metadata(gf_st_writer *w, const char *key, const char *value);
/* Writes atomically: a temporary file "<path>.tmp.XXXXXX" in the target's directory, fsync,
 * rename over the target. On any failure the old file is untouched and no temporary file
 * remains. Refuses a target that exists but is not a regular file (a symbolic link, device,
 * FIFO or folder would be replaced by a file) and a path ending in '/'. Removes the temporary
 * files of this path that a killed writer left (regular files, older than this process).
 * Refuses tensors whose memory overlaps another's. */
gf_status gf_st_writer_save(gf_st_writer *w, const char *path);

/* float32 <-> IEEE half / bfloat16, round to nearest even. */
uint16_t gf_f32_to_f16(float f);
float gf_f16_to_f32(uint16_t h);
uint16_t gf_f32_to_bf16(float f);
float gf_bf16_to_f32(uint16_t h);

#ifdef __cplusplus
}
#endif
#endif
