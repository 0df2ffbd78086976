/* The gradient exchange alone, under mpirun (docs/PERFORMANCE.md, "Training across
 * processes"): for gradients of 0.0625 to 16 MB, the median time of one MPI_Allreduce of the
 * whole buffer and of one gf_dist_grad_sync (packing, buckets, allreduce, unpacking) over a
 * model of 8 Linear layers of that size. Prints one JSON line per size from rank 0.
 *   mpirun -np 2 build/bench/bench_allreduce [--bucket MB] [--overlap on|off] [--reps N] */
#define _POSIX_C_SOURCE 200809L
#include "graft/dist.h"
#include "graft/graft.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp);
    return t[n / 2];
}

/* 8 Linear layers of 1024 inputs holding about `floats` parameters, with gradients. */
static gf_module *model_of(gf_ctx *ctx, int64_t floats, int rank) {
    gf_rng rng;
    gf_rng_seed(&rng, 1);
    gf_module *m = gf_nn_sequential(ctx);
    int64_t out = floats / 8 / 1025 > 0 ? floats / 8 / 1025 : 1;
    for (int i = 0; i < 8; i++) gf_module_append(ctx, m, gf_nn_linear(ctx, &rng, 1024, out, true));
    gf_named_tensors *l = gf_module_named_tensors(ctx, m, GF_STATE_PARAMS);
    for (int i = 0; l && i < l->n; i++) {
        gf_tensor *p = l->items[i].tensor;
        p->grad = gf_tensor_new(ctx, GF_F32, p->ndim, p->shape);
        for (int64_t j = 0; p->grad && j < p->numel; j++) gf_f32(p->grad)[j] = (float)(rank + 1);
    }
    gf_named_tensors_free(l);
    return m;
}

int main(int argc, char **argv) {
    gf_dist_params dp = gf_dist_default_params();
    int reps = 30;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--bucket") == 0) dp.bucket_bytes = (int64_t)(atof(argv[i + 1]) * 1048576);
        else if (strcmp(argv[i], "--overlap") == 0) dp.overlap = strcmp(argv[i + 1], "on") == 0;
        else if (strcmp(argv[i], "--reps") == 0) reps = atoi(argv[i + 1]);
    }
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 1;
    gf_ctx *ctx = gf_ctx_new(&cp);
    gf_dist *d = gf_dist_init(ctx, &dp);
    if (!d || gf_dist_size(d) < 2 || reps < 1) {
        fprintf(stderr, "bench_allreduce: run under mpirun with 2 or more ranks (%s)\n",
                gf_ctx_error(ctx));
        return 1;
    }
    const int rank = gf_dist_rank(d);
    const double sizes_mb[] = {0.0625, 0.25, 1, 4, 16};
    double *t_raw = malloc((size_t)reps * sizeof *t_raw), *t_dist = malloc((size_t)reps * sizeof *t_dist);
    for (size_t s = 0; s < sizeof sizes_mb / sizeof sizes_mb[0]; s++) {
        const int64_t floats = (int64_t)(sizes_mb[s] * 1048576 / 4);
        gf_module *m = model_of(ctx, floats, rank);
        gf_optim *opt = gf_train_optim_new(ctx, m, NULL, NULL, 0);
        float *buf = calloc((size_t)floats, sizeof *buf);
        for (int r = -3; r < reps; r++) { /* three rounds to warm up */
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, buf, (int)floats, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            double t1 = MPI_Wtime();
            MPI_Barrier(MPI_COMM_WORLD);
            double t2 = MPI_Wtime();
            if (gf_dist_grad_sync(ctx, opt, NULL, 0, d) != GF_OK) {
                fprintf(stderr, "bench_allreduce: %s\n", gf_ctx_error(ctx));
                gf_dist_abort(d, 1);
            }
            double t3 = MPI_Wtime();
            if (r >= 0) {
                t_raw[r] = t1 - t0;
                t_dist[r] = t3 - t2;
            }
        }
        int64_t params = 0;
        for (int i = 0; i < gf_optim_n_params(opt); i++) params += gf_optim_param(opt, i)->numel;
        if (rank == 0)
            printf("{\"ranks\": %d, \"bucket_mb\": %g, \"overlap\": %s, \"grad_mb\": %.4f, "
                   "\"allreduce_ms\": %.4f, \"grad_sync_ms\": %.4f}\n",
                   gf_dist_size(d), (double)dp.bucket_bytes / 1048576, dp.overlap ? "true" : "false",
                   (double)params * 4 / 1048576, 1e3 * median(t_raw, reps),
                   1e3 * median(t_dist, reps));
        fflush(stdout);
        free(buf);
        gf_optim_free(opt);
        gf_module_free(m);
    }
    free(t_raw);
    free(t_dist);
    gf_dist_finalize(d);
    gf_ctx_free(ctx);
    return 0;
}
