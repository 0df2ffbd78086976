/* Bundles (include/graft/bundle.h): the classifier a description names, built from the zoo or a
 * model spec; its weights loaded strictly or through a delta's base; saved with its metadata;
 * and its inputs — an image file or CSV rows — prepared the way the training data was. */
#define _POSIX_C_SOURCE 200809L
#include "bundle/bundle_internal.h"
#include "io/io_internal.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "graft/csv.h"
#include "graft/images.h"
#include "graft/ops.h"
#include "graft/optim.h"
#include "graft/spec.h"
#include "graft/speech.h"
#include "graft/tfjs.h"
#include "graft/transfer.h"
#include "graft/transforms.h"
#include "graft/zoo.h"

gf_bundle_opts gf_bundle_default_opts(void) {
    gf_bundle_opts o;
    memset(&o, 0, sizeof o);
    return o;
}

void gf_bundle_free(gf_bundle *b) {
    if (!b) return;
    gf_module_free(b->model);
    gf_bundle_info_free(&b->info);
    free(b);
}

const char *gf_bundle_class_name(const gf_bundle *b, int k) {
    if (!b || !b->info.class_names || k < 0 || k >= b->info.n_classes) return NULL;
    return b->info.class_names[k];
}

static bool is_zoo(const char *name) {
    for (const char *const *n = gf_zoo_names(); name && *n; n++)
        if (strcmp(*n, name) == 0) return true;
    return false;
}

/* ---- building -------------------------------------------------------------------------------- */

static gf_status build_zoo(gf_ctx *ctx, gf_bundle *b, int n_classes, const int *hidden,
                           gf_rng *rng) {
    gf_bundle_info *m = &b->info;
    const char *zoo = m->model;
    gf_zoo_params zp = gf_zoo_default_params();
    if (gf_zoo_is_text(zoo)) { /* token ids [T]: the embedding sized by the vocabulary */
        if (m->in_ndim != 1 || !m->vocab) {
            char sh[64];
            gf_dims_str(m->in_ndim, m->in_shape, sh, sizeof sh);
            return gf_ctx_set_error(ctx, GF_ERR_INVALID, "model %s reads token ids [T] of text "
                                    "data (text:FILE, with its vocabulary); the data's samples "
                                    "are %s%s", zoo, sh, m->vocab ? "" : " without a vocabulary");
        }
        zp.vocab_size = gf_text_vocab_size(m->vocab);
        zp.seq_len = m->in_shape[0];
    } else if (m->in_ndim == 3) {
        zp.in_channels = (int)m->in_shape[0];
        zp.height = (int)m->in_shape[1];
        zp.width = (int)m->in_shape[2];
    } else if (m->in_ndim == 1 && strcmp(zoo, "mlp") == 0) {
        zp.in_channels = (int)m->in_shape[0];
        zp.height = zp.width = 1;
    } else {
        char sh[64];
        gf_dims_str(m->in_ndim, m->in_shape, sh, sizeof sh);
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "model %s needs images [C, H, W]; the data's "
                                "samples are %s (use mlp or a model spec)", zoo, sh);
    }
    zp.num_classes = n_classes > 0 ? n_classes : 10;
    if (strcmp(zoo, "mlp") == 0 && hidden[0] > 0) memcpy(zp.hidden, hidden, sizeof zp.hidden);
    if (!(b->model = gf_zoo_build(ctx, zoo, &zp, rng))) return gf_ctx_status(ctx);
    snprintf(b->head, sizeof b->head, "%s", gf_zoo_head(zoo));
    memset(m->hidden, 0, sizeof m->hidden);
    if (strcmp(zoo, "mlp") == 0) memcpy(m->hidden, zp.hidden, sizeof m->hidden);
    free(m->spec);
    m->spec = NULL;
    return GF_OK;
}

/* The description of a model that is not the zoo's mlp: its spec text (taken; NULL: none) and
 * no hidden widths. */
static void set_spec(gf_bundle_info *m, char *spec) {
    free(m->spec);
    m->spec = spec;
    memset(m->hidden, 0, sizeof m->hidden);
}

static gf_status build_spec(gf_ctx *ctx, gf_bundle *b, const char *text, const char *label,
                            int n_classes, gf_rng *rng) {
    gf_bundle_info *m = &b->info;
    gf_spec_params sp = gf_spec_default_params();
    sp.label = label;
    sp.in_ndim = m->in_ndim;
    for (int i = 0; i < m->in_ndim; i++) sp.in_shape[i] = m->in_shape[i];
    sp.rng = rng;
    sp.n_classes = n_classes > 0 ? n_classes : m->n_classes;
    sp.vocab_size = m->vocab ? gf_text_vocab_size(m->vocab) : 0;
    gf_spec_summary *sum = NULL;
    if (!(b->model = gf_spec_parse(ctx, text, strlen(text), &sp, &sum))) return gf_ctx_status(ctx);
    gf_status st = GF_OK;
    if (m->in_ndim == 0 && sum->in_ndim > 0) { /* no sample shape recorded: the spec's "input" */
        m->in_ndim = sum->in_ndim;
        memcpy(m->in_shape, sum->in_shape, sizeof(int64_t) * (size_t)sum->in_ndim);
    }
    sp.in_ndim = m->in_ndim;
    for (int i = 0; i < m->in_ndim; i++) sp.in_shape[i] = m->in_shape[i];
    /* a text model with a row of outputs per token ([T, classes]) is a sequence labeller */
    const bool tagger = m->vocab && m->in_ndim == 1 && sum->out_ndim == 2 &&
                        sum->out_shape[0] == m->in_shape[0];
    /* the text stored with the weights says what was built: no "data", no "classes" */
    char *min = m->in_ndim ? gf_spec_resolve(ctx, text, strlen(text), &sp) : NULL;
    if (m->in_ndim == 0) {
        st = gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: the model's sample shape is not known: "
                              "the weights record none (graft.input) and the spec has no "
                              "\"input\" such as [3, 32, 32]", label);
    } else if (!min) {
        st = gf_ctx_prefix_error(ctx, "%s: ", label);
    } else if (sum->out_ndim != 1 && !tagger) {
        char sh[64];
        gf_dims_str(sum->out_ndim, sum->out_shape, sh, sizeof sh);
        st = gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: the model's output samples are %s; a "
                              "classifier must end in [classes] (a Linear), a tagger of text "
                              "in [T, classes]", label, sh);
    } else if (n_classes > 0 && sum->out_shape[sum->out_ndim - 1] != n_classes) {
        st = gf_ctx_set_error(ctx, GF_ERR_SHAPE, "%s: the model gives %lld outputs but the data "
                              "has %d classes", label,
                              (long long)sum->out_shape[sum->out_ndim - 1], n_classes);
    } else if (!gf_transfer_default_head(ctx, b->model, b->head, sizeof b->head)) {
        st = gf_ctx_prefix_error(ctx, "%s: ", label);
    }
    gf_spec_summary_free(sum);
    set_spec(m, min);
    return st;
}

/* A classifier on a TensorFlow.js trunk, as graft.tfjs describes it (graft/tfjs.h). */
static gf_status build_tfjs(gf_ctx *ctx, gf_bundle *b, int n_classes, gf_rng *rng) {
    gf_bundle_info *m = &b->info;
    cJSON *j = m->tfjs ? cJSON_Parse(m->tfjs) : NULL;
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(j, "from");
    const cJSON *cut = cJSON_GetObjectItemCaseSensitive(j, "cut");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(j, "input_size");
    const cJSON *adapt = cJSON_GetObjectItemCaseSensitive(j, "adapt_channels");
    gf_status st = GF_OK;
    if (!cJSON_IsString(from) || !cJSON_IsString(cut) || (size && !cJSON_IsNumber(size)) ||
        m->in_ndim < 1) {
        st = gf_ctx_set_error(ctx, GF_ERR_FORMAT, "bundle: graft.tfjs %s (need {\"from\": "
                              "the model.json, \"cut\": a layer name} and graft.input)",
                              j ? "lacks a field" : "is missing or not JSON");
    } else {
        gf_tfjs_classifier_params p = gf_tfjs_classifier_default_params();
        p.cut = cut->valuestring;
        p.input_size = size && size->valuedouble > 0 && size->valuedouble < 1e6 ? (int)size->valuedouble : 0;
        p.adapt_channels = !cJSON_IsFalse(adapt);
        p.data_ndim = m->in_ndim;
        memcpy(p.data_shape, m->in_shape, sizeof(int64_t) * (size_t)m->in_ndim);
        p.n_classes = n_classes > 0 ? n_classes : m->n_classes > 0 ? m->n_classes : 1;
        gf_tfjs_classifier_info ti;
        if (!(b->model = gf_tfjs_classifier(ctx, from->valuestring, &p, rng, &ti)))
            st = gf_ctx_prefix_error(ctx, "rebuilding the classifier on %s (graft.tfjs): ",
                                     from->valuestring);
        else
            gf_tfjs_info_free(ti.trunk);
        snprintf(b->head, sizeof b->head, "head");
    }
    cJSON_Delete(j);
    set_spec(m, NULL);
    return st;
}

/* A classifier on openWakeWord's speech embedding, as graft.speech describes it
 * (graft/speech.h); the clip is graft.input [1, samples]. */
static gf_status build_speech(gf_ctx *ctx, gf_bundle *b, int n_classes, gf_rng *rng) {
    gf_bundle_info *m = &b->info;
    cJSON *j = m->speech ? cJSON_Parse(m->speech) : NULL;
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(j, "from");
    const cJSON *front = cJSON_GetObjectItemCaseSensitive(j, "front");
    const cJSON *pool = cJSON_GetObjectItemCaseSensitive(j, "pool");
    gf_status st = GF_OK;
    if (!cJSON_IsString(from) || !cJSON_IsString(front) || !cJSON_IsString(pool) ||
        m->in_ndim != 2 || m->in_shape[0] != 1) {
        st = gf_ctx_set_error(ctx, GF_ERR_FORMAT, "bundle: graft.speech %s (need {\"from\", "
                              "\"front\", \"pool\"} and graft.input [1, samples])",
                              j ? "lacks a field" : "is missing or not JSON");
    } else {
        gf_speech_params p = gf_speech_default_params();
        p.mel_path = front->valuestring;
        p.samples = m->in_shape[1];
        p.pool = gf_speech_pool_parse(pool->valuestring);
        p.n_classes = n_classes > 0 ? n_classes : m->n_classes > 0 ? m->n_classes : 1;
        if (!(b->model = gf_speech_classifier(ctx, from->valuestring, &p, rng, NULL)))
            st = gf_ctx_prefix_error(ctx, "rebuilding the classifier on %s (graft.speech): ",
                                     from->valuestring);
        snprintf(b->head, sizeof b->head, "head");
    }
    cJSON_Delete(j);
    set_spec(m, NULL);
    return st;
}

/* Replaces *dst by a copy of src. */
static bool set_str(char **dst, const char *src) {
    char *c = gf_bundle_strdup(src);
    if (!c) return false;
    free(*dst);
    *dst = c;
    return true;
}

/* The model of b->info (or model, which replaces it) into b->model. */
static gf_status build_model(gf_ctx *ctx, gf_bundle *b, const char *model, bool from_file,
                             int n_classes, const int *hidden, gf_rng *rng) {
    gf_bundle_info *m = &b->info;
    if (!model)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "bundle: no model is named (graft.model; "
                                "gf_bundle_opts.model)");
    if (m->in_ndim < 1 && is_zoo(model)) /* a spec may give its own ("input") */
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "bundle: the model's sample shape is not "
                                "known (graft.input)");
    if (is_zoo(model)) {
        if (!set_str(&m->model, model)) return gf_ctx_set_error(ctx, GF_ERR_NOMEM, "bundle: out of memory");
        return build_zoo(ctx, b, n_classes, hidden, rng);
    }
    if (!from_file && strcmp(model, "tfjs") == 0 && m->tfjs) return build_tfjs(ctx, b, n_classes, rng);
    if (!from_file && strcmp(model, "speech") == 0 && m->speech)
        return build_speech(ctx, b, n_classes, rng);
    if (!from_file && (strcmp(model, "spec") != 0 || !m->spec))
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "bundle: unknown model '%s' (zoo: mlp, lenet, "
                                "cnn-small, resnet-mini, resnet18, resnet34, resnet50; or "
                                "\"spec\" with graft.spec)", model);
    char label[4200];
    snprintf(label, sizeof label, "model spec %s", from_file ? model : "(from the weights file)");
    char *text = from_file ? gf_spec_read_text(ctx, model, NULL) : gf_bundle_strdup(m->spec);
    if (!text)
        return gf_ctx_status(ctx) != GF_OK ? gf_ctx_status(ctx)
                                           : gf_ctx_set_error(ctx, GF_ERR_NOMEM, "bundle: out of memory");
    gf_status st = build_spec(ctx, b, text, label, n_classes, rng);
    free(text);
    if (st == GF_OK && !set_str(&m->model, "spec"))
        st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "bundle: out of memory");
    return st;
}

gf_bundle *gf_bundle_build(gf_ctx *ctx, const gf_bundle_info *info, int n_classes,
                           const gf_bundle_opts *opts, gf_rng *rng) {
    const gf_bundle_opts o = opts ? *opts : gf_bundle_default_opts();
    gf_bundle *b = calloc(1, sizeof *b);
    if (!b) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "bundle: out of memory");
        return NULL;
    }
    b->max_image_pixels = o.max_image_pixels;
    gf_status st = gf_bundle_info_copy(ctx, &b->info, info);
    if (st == GF_OK && o.command && !set_str(&b->info.command, o.command))
        st = gf_ctx_set_error(ctx, GF_ERR_NOMEM, "bundle: out of memory");
    int hidden[4];
    memcpy(hidden, o.hidden[0] > 0 ? o.hidden : b->info.hidden, sizeof hidden);
    if (info && info->regression && n_classes <= 0) n_classes = 1;
    if (st == GF_OK)
        st = build_model(ctx, b, o.model ? o.model : b->info.model, o.model && !is_zoo(o.model),
                         n_classes, hidden, rng);
    if (st != GF_OK) {
        gf_bundle_free(b);
        return NULL;
    }
    return b;
}

gf_bundle *gf_bundle_new(gf_ctx *ctx, const gf_ds_parts *data, const gf_bundle_opts *opts,
                         gf_rng *rng) {
    gf_bundle_opts o = opts ? *opts : gf_bundle_default_opts();
    if (!o.model) o.model = "mlp";
    gf_bundle_info info;
    memset(&info, 0, sizeof info);
    if (gf_bundle_info_set_data(ctx, &info, data) != GF_OK) return NULL;
    gf_bundle *b = gf_bundle_build(ctx, &info, data->n_classes, &o, rng);
    gf_bundle_info_free(&info);
    return b;
}

/* ---- weights ------------------------------------------------------------------------------- */

/* The key renaming a delta's base was loaded with ("graft.base_map": strip_prefix, rename). */
typedef struct base_map {
    gf_weights_options wo;
    gf_weights_key_rule rules[64];
    char *strings[65];
    int n_strings;
} base_map;

static gf_status base_map_read(gf_ctx *ctx, const gf_st_file *f, base_map *bm) {
    memset(bm, 0, sizeof *bm);
    bm->wo = gf_weights_default_options();
    bm->wo.rules = bm->rules;
    const char *text = gf_st_metadata_get(f, "graft.base_map");
    if (!text) return GF_OK;
    if (gf_json_check(ctx, text, strlen(text), gf_st_path(f), "metadata \"graft.base_map\"") != GF_OK)
        return gf_ctx_status(ctx);
    cJSON *j = cJSON_Parse(text);
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(j, "strip_prefix");
    const cJSON *rn = cJSON_GetObjectItemCaseSensitive(j, "rename");
    if (cJSON_IsString(sp)) bm->wo.strip_prefix = bm->strings[bm->n_strings++] = gf_bundle_strdup(sp->valuestring);
    for (const cJSON *e = cJSON_IsArray(rn) ? rn->child : NULL; e && bm->wo.n_rules < 64; e = e->next)
        if (cJSON_IsString(e)) {
            char *s = bm->strings[bm->n_strings++] = gf_bundle_strdup(e->valuestring);
            bm->rules[bm->wo.n_rules++] = (gf_weights_key_rule){s, NULL};
        }
    cJSON_Delete(j);
    return GF_OK;
}

static void base_map_free(base_map *bm) {
    for (int i = 0; i < bm->n_strings; i++) free(bm->strings[i]);
}

static gf_status load_delta(gf_ctx *ctx, gf_bundle *b, const gf_st_file *f, const char *path,
                            const char *base) {
    const char *recorded = gf_st_metadata_get(f, "graft.base");
    if (!base) base = recorded;
    if (!base)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s is a delta checkpoint and records no "
                                "base: give the file it was written against", path);
    struct stat sb;
    if (stat(base, &sb) != 0 || !S_ISREG(sb.st_mode))
        return gf_ctx_set_error(ctx, GF_ERR_IO, "%s is a delta against %s, which does not exist",
                                path, base);
    base_map bm;
    gf_status st = base_map_read(ctx, f, &bm);
    if (st == GF_OK) st = gf_transfer_delta_load(ctx, b->model, base, &bm.wo, path);
    base_map_free(&bm);
    return st;
}

gf_status gf_bundle_load_weights(gf_ctx *ctx, gf_bundle *b, const char *path, const char *base,
                                 gf_weights_report **report) {
    if (report) *report = NULL;
    if (!b || !b->model || !path)
        return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_bundle_load_weights: no model or path");
    gf_st_file *f = gf_st_open(ctx, path);
    if (!f) return gf_ctx_status(ctx);
    if (gf_st_metadata_get(f, "graft.base_sha256")) {
        gf_status st = load_delta(ctx, b, f, path, base);
        gf_st_close(f);
        return st;
    }
    gf_st_close(f);
    gf_weights_options wo = gf_weights_default_options();
    wo.strict = true;
    gf_weights_report *rep = NULL;
    gf_status st = gf_weights_load_with(ctx, b->model, path, &wo, &rep);
    if (st != GF_OK) st = gf_ctx_prefix_error(ctx, "%s does not fit the model: ", path);
    if (report && st != GF_OK) *report = rep;
    else gf_weights_report_free(rep);
    return st;
}

gf_bundle *gf_bundle_load(gf_ctx *ctx, const char *path, const gf_bundle_opts *opts) {
    gf_bundle_info info;
    if (gf_bundle_info_load(ctx, path, &info) != GF_OK) return NULL;
    gf_bundle *b = info.in_ndim ? gf_bundle_build(ctx, &info, info.n_classes, opts, NULL) : NULL;
    if (!info.in_ndim)
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s does not record its input shape (graft.input): "
                         "it was not written as a bundle", path);
    gf_bundle_info_free(&info);
    if (b && gf_bundle_load_weights(ctx, b, path, opts ? opts->base : NULL, NULL) != GF_OK) {
        gf_bundle_free(b);
        return NULL;
    }
    return b;
}

/* b's description as saved: a spec model's spec with the head's output size the model has now
 * (a head replaced after the build would otherwise be stored at its old size, and the file
 * could not be loaded). *spec (malloc'd or NULL) is what info->spec points to. */
static gf_status info_as_saved(gf_ctx *ctx, const gf_bundle *b, gf_bundle_info *info,
                               char **spec) {
    *info = b->info; /* shallow: only the spec differs */
    *spec = NULL;
    if (!b->info.spec || !b->head[0]) return GF_OK;
    char w[160];
    snprintf(w, sizeof w, "%s.weight", b->head);
    const gf_tensor *t = gf_module_tensor(NULL, b->model, w);
    if (!t || t->ndim != 2) return GF_OK; /* no Linear weight there: nothing to describe */
    *spec = gf_spec_set_out(ctx, b->info.spec, strlen(b->info.spec), b->head, t->shape[0]);
    if (!*spec) return gf_ctx_prefix_error(ctx, "bundle: describing the head %s: ", b->head);
    info->spec = *spec;
    return GF_OK;
}

gf_status gf_bundle_save(gf_ctx *ctx, const gf_bundle *b, const char *path,
                         const char *const *extra, int n_extra) {
    if (!b || !b->model) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_bundle_save: no model");
    char **kv = NULL, *spec = NULL;
    int n = 0;
    gf_bundle_info info;
    gf_status st = info_as_saved(ctx, b, &info, &spec);
    if (st == GF_OK) st = gf_bundle_meta_pairs(ctx, &info, extra, n_extra, &kv, &n);
    free(spec);
    if (st == GF_OK) st = gf_weights_save(ctx, b->model, path, (const char *const *)kv, n);
    gf_bundle_meta_free(kv, n);
    return st;
}

gf_status gf_bundle_save_delta(gf_ctx *ctx, const gf_bundle *b, const char *base,
                               const gf_weights_options *base_map, const char *path,
                               const char *const *extra, int n_extra, int *n_written) {
    if (!b || !b->model) return gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_bundle_save_delta: no model");
    gf_status st = gf_transfer_delta_save(ctx, b->model, base, base_map, path, n_written);
    if (st != GF_OK) return st;
    /* the delta as written, its own metadata first, then the bundle's: rewritten atomically */
    gf_st_file *f = gf_st_open(ctx, path);
    gf_state_list *sl = f ? gf_state_list_from_file(ctx, f, NULL) : NULL;
    gf_st_close(f);
    if (!sl) return gf_ctx_status(ctx);
    char **kv = NULL, *spec = NULL;
    int n = 0;
    gf_bundle_info info;
    st = info_as_saved(ctx, b, &info, &spec);
    if (st == GF_OK) st = gf_bundle_meta_pairs(ctx, &info, extra, n_extra, &kv, &n);
    free(spec);
    for (int i = 0; st == GF_OK && i < n; i++) st = gf_state_list_set_meta(ctx, sl, kv[2 * i], kv[2 * i + 1]);
    gf_bundle_meta_free(kv, n);
    gf_st_writer *w = st == GF_OK ? gf_st_writer_new(ctx) : NULL;
    if (w && (st = gf_state_list_to_writer(ctx, sl, w)) == GF_OK) st = gf_st_writer_save(w, path);
    else if (st == GF_OK) st = gf_ctx_status(ctx);
    gf_st_writer_free(w);
    gf_state_list_free(sl);
    return st;
}

/* ---- inputs -------------------------------------------------------------------------------- */

gf_tf *gf_bundle_transform(gf_ctx *ctx, const gf_bundle_info *info) {
    if (!info || !info->norm_mean) return NULL;
    gf_tf *tf = gf_tf_new(ctx);
    if (tf && gf_tf_normalize(ctx, tf, info->norm_channels, info->norm_mean, info->norm_std) != GF_OK) {
        gf_tf_free(tf);
        return NULL;
    }
    return tf;
}

/* (x - mean) / std per channel in place, as gf_tf_normalize computes it: the same rounding. */
gf_status gf_bundle_normalize(gf_ctx *ctx, const gf_bundle_info *m, float *x, int64_t n) {
    if (!m->norm_mean) return GF_OK;
    const int64_t C = m->in_shape[0];
    if (m->norm_channels != 1 && m->norm_channels != C)
        return gf_ctx_set_error(ctx, GF_ERR_FORMAT, "bundle: graft.normalize has %d channels, the "
                                "samples %lld", m->norm_channels, (long long)C);
    int64_t per = 1;
    for (int i = 1; i < m->in_ndim; i++) per *= m->in_shape[i];
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < C; c++) {
            const float mean = m->norm_mean[m->norm_channels == 1 ? 0 : c];
            const float sd = m->norm_std[m->norm_channels == 1 ? 0 : c];
            float *p = x + (r * C + c) * per;
            for (int64_t j = 0; j < per; j++) p[j] = (p[j] - mean) / sd;
        }
    return GF_OK;
}

bool gf_bundle_is_image_file(const char *path) {
    static const char *const ext[] = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm",
                                      ".pnm", ".gif", ".tga", ".psd", ".hdr"};
    size_t n = path ? strlen(path) : 0;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t e = strlen(ext[i]);
        if (n > e && strcasecmp(path + n - e, ext[i]) == 0) return true;
    }
    return false;
}

gf_tensor *gf_bundle_read_image(gf_ctx *ctx, const gf_bundle *b, const char *path) {
    if (!b || !path) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_bundle_read_image: no bundle or path");
        return NULL;
    }
    const gf_bundle_info *m = &b->info;
    if (m->in_ndim != 3) {
        char sh[64];
        gf_dims_str(m->in_ndim, m->in_shape, sh, sizeof sh);
        if (m->in_ndim == 1)
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s is an image but the model takes rows of %lld "
                             "features", path, (long long)m->in_shape[0]);
        else
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s is an image but the model takes samples %s",
                             path, sh);
        return NULL;
    }
    gf_images_params ip = gf_images_default_params();
    ip.channels = m->image_channels ? m->image_channels : (int)m->in_shape[0];
    const int h = m->image_channels ? m->image_h : (int)m->in_shape[1];
    const int w = m->image_channels ? m->image_w : (int)m->in_shape[2];
    ip.resize = h < w ? h : w;
    ip.crop_h = h;
    ip.crop_w = w;
    if (b->max_image_pixels) ip.max_pixels = b->max_image_pixels;
    if (ip.channels != m->in_shape[0] || h != m->in_shape[1] || w != m->in_shape[2]) {
        gf_ctx_set_error(ctx, GF_ERR_FORMAT, "bundle: graft.image (%d channels, %dx%d) does not "
                         "agree with graft.input", ip.channels, h, w);
        return NULL;
    }
    int gh, gw;
    uint8_t *px = gf_images_read(ctx, path, &ip, &gh, &gw);
    if (!px) return NULL;
    const int64_t shape[4] = {1, m->in_shape[0], m->in_shape[1], m->in_shape[2]};
    gf_tensor *x = gf_tensor_new(ctx, GF_F32, 4, shape);
    if (x) {
        float *d = gf_f32(x);
        for (int64_t j = 0; j < x->numel; j++) d[j] = (float)px[j] / 255.0f;
    }
    free(px);
    if (x && gf_bundle_normalize(ctx, m, gf_f32(x), 1) != GF_OK) {
        gf_tensor_free(x);
        return NULL;
    }
    return x;
}

gf_tensor *gf_bundle_read_csv(gf_ctx *ctx, const gf_bundle *b, const char *path,
                              int64_t **lines) {
    return gf_bundle_read_csv_with(ctx, b, path, NULL, lines);
}

gf_tensor *gf_bundle_read_csv_with(gf_ctx *ctx, const gf_bundle *b, const char *path,
                                   const gf_csv_rows_params *params, int64_t **lines) {
    return gf_bundle_read_csv_counted(ctx, b, path, params, lines, NULL);
}

gf_tensor *gf_bundle_read_csv_counted(gf_ctx *ctx, const gf_bundle *b, const char *path,
                                      const gf_csv_rows_params *params, int64_t **lines,
                                      int64_t *unseen) {
    if (lines) *lines = NULL;
    if (unseen) *unseen = 0;
    if (!b || !path) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_bundle_read_csv_with: no bundle or path");
        return NULL;
    }
    const gf_bundle_info *m = &b->info;
    if (m->in_ndim != 1) {
        char sh[64];
        gf_dims_str(m->in_ndim, m->in_shape, sh, sizeof sh);
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "%s: the model takes %s %s; give an image file "
                         "(.png, .jpg, .bmp, .pgm, ...)", path, m->in_ndim == 3 ? "images" : "samples",
                         sh);
        return NULL;
    }
    const int64_t F = m->in_shape[0];
    gf_csv_rows_params rp = params ? *params : gf_csv_rows_default_params();
    rp.n_columns = 0;
    rp.column_names = NULL;
    rp.names = m->feature_names && m->n_features == F ? (const char *const *)m->feature_names : NULL;
    if (rp.names && m->column_names) {
        rp.n_columns = m->n_columns;
        rp.column_names = (const char *const *)m->column_names;
    }
    /* missing features: the training part's fill values (graft.missing), else an error */
    const bool fill = m->impute && m->n_impute == F;
    rp.allow_missing = fill;
    rp.categories = rp.names ? m->categorical : NULL;
    rp.n_categories = rp.names ? m->n_categorical : 0;
    gf_csv_rows rows;
    if (gf_csv_load_rows_with(ctx, path, F, &rp, &rows) != GF_OK) return NULL;
    if (unseen) *unseen = rows.unseen;
    for (int64_t i = 0; fill && i < rows.n * F; i++)
        if (isnan(rows.x[i])) rows.x[i] = m->impute[i % F];
    const int64_t shape[2] = {rows.n, F};
    gf_tensor *x = gf_tensor_from_data(ctx, GF_F32, 2, shape, rows.x);
    if (x && gf_bundle_normalize(ctx, m, gf_f32(x), rows.n) != GF_OK) {
        gf_tensor_free(x);
        x = NULL;
    }
    if (x && lines) {
        *lines = rows.lines;
        rows.lines = NULL;
    }
    gf_csv_rows_free(&rows);
    return x;
}

gf_tensor *gf_bundle_read_texts(gf_ctx *ctx, const gf_bundle *b, const char *const *texts,
                                int64_t n) {
    if (!b || !b->info.vocab || b->info.in_ndim != 1) {
        gf_ctx_set_error(ctx, GF_ERR_INVALID, "this model was not trained on text (it records no "
                         "vocabulary, graft.text, or its samples are not [T])");
        return NULL;
    }
    return gf_text_encode_batch(ctx, b->info.vocab, texts, n, b->info.in_shape[0]);
}

gf_tensor *gf_bundle_read_text_file(gf_ctx *ctx, const gf_bundle *b, const char *path,
                                    int64_t **lines) {
    if (lines) *lines = NULL;
    gf_text_read_params rp = gf_text_read_default_params();
    rp.unlabelled = GF_TEXT_UNLABELLED_KEEP;
    gf_text_corpus c;
    if (gf_text_read(ctx, path, &rp, &c) != GF_OK) return NULL;
    gf_tensor *x = NULL;
    if (c.n == 0) gf_ctx_set_error(ctx, GF_ERR_FORMAT, "%s: no texts", path);
    else x = gf_bundle_read_texts(ctx, b, (const char *const *)c.texts, c.n);
    if (x && lines) {
        *lines = c.lines;
        c.lines = NULL;
    }
    gf_text_corpus_free(&c);
    return x;
}

gf_tensor *gf_bundle_read(gf_ctx *ctx, const gf_bundle *b, const char *path, int64_t **lines) {
    if (lines) *lines = NULL;
    if (b && b->info.has_audio && gf_bundle_is_audio_file(path))
        return gf_bundle_read_audio(ctx, b, path);
    if (b && b->info.vocab) return gf_bundle_read_text_file(ctx, b, path, lines);
    return gf_bundle_is_image_file(path) ? gf_bundle_read_image(ctx, b, path)
                                         : gf_bundle_read_csv(ctx, b, path, lines);
}

gf_tensor *gf_bundle_predict(gf_ctx *ctx, gf_bundle *b, const gf_tensor *x) {
    if (!b || !b->model || !x) {
        if (gf_ctx_status(ctx) == GF_OK)
            gf_ctx_set_error(ctx, GF_ERR_INVALID, "gf_bundle_predict: no bundle, model or input");
        return NULL;
    }
    const bool grad = gf_ctx_set_grad_enabled(ctx, false), training = gf_module_is_training(b->model);
    gf_module_train(b->model, false);
    gf_tensor *y = gf_module_forward(ctx, b->model, (gf_tensor *)x), *p = NULL;
    const int k = b->info.n_classes;
    if (y && (y->ndim != 2 || y->shape[0] != x->shape[0] || (k && y->shape[1] != k))) {
        char ys[64];
        gf_ctx_set_error(ctx, GF_ERR_SHAPE, "the model gives %s for %lld inputs; a classifier "
                         "must give [N, classes]%s", gf_shape_str(y, ys, sizeof ys),
                         (long long)x->shape[0], k ? " with the recorded classes" : "");
    } else if (y && b->info.regression) { /* the target in its own units */
        gf_tensor *t = gf_mul_scalar(ctx, y, b->info.target_std > 0 ? b->info.target_std : 1.0f);
        p = t ? gf_add_scalar(ctx, t, b->info.target_mean) : NULL;
    } else if (y) {
        p = gf_softmax(ctx, y, 1);
    }
    gf_module_train(b->model, training);
    gf_ctx_set_grad_enabled(ctx, grad);
    return p;
}
