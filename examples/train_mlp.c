/* The low-level tier in one page: a two-layer MLP trained on Fashion-MNIST with a hand-written
 * loop (batch, forward, loss, backward, optimizer step, arena reset) and evaluated without the
 * graph. gf_fit (see finetune.c) runs the same loop with validation, schedules and callbacks.
 * Build against an installed graft:
 *     cc -O2 train_mlp.c $(pkg-config --cflags --libs graft) -o train_mlp
 * Run:  train_mlp [--quick]      (--quick: 200 images per class, 1 epoch: a few seconds)
 * Exit status: 0 done, 1 error, 2 usage, 77 Fashion-MNIST not found (GRAFT_DATA_DIR or
 * /usr/share/datasets/fashion-mnist). */
#include <graft/graft.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    bool quick = argc == 2 && strcmp(argv[1], "--quick") == 0;
    if (argc > 2 || (argc == 2 && !quick)) {
        fprintf(stderr, "usage: train_mlp [--quick]\n");
        return 2;
    }
    gf_ctx *ctx = gf_ctx_new(NULL); /* all cores, seed 0 */
    if (!ctx) return 1;
    int rc = 1;
    gf_ds *train = NULL, *test = NULL;
    gf_module *net = NULL;
    gf_optim *opt = NULL;
    gf_loader *train_ld = NULL, *test_ld = NULL;

    /* data: a class-balanced subset of the training set, the whole test set */
    gf_ds *all = gf_ds_load_named(ctx, "fashion-mnist", GF_DATASET_TRAIN);
    test = gf_ds_load_named(ctx, "fashion-mnist", GF_DATASET_TEST);
    if (!all || !test) {
        fprintf(stderr, "train_mlp: %s\n", gf_ctx_error(ctx));
        gf_ds_free(all);
        rc = 77;
        goto done;
    }
    train = gf_split_per_class(ctx, all, quick ? 200 : 1000, false, 0, false);
    gf_ds_free(all); /* the view keeps its base alive */

    /* model: [N, 1, 28, 28] -> flatten -> 784 -> 128 -> relu -> 10 logits */
    gf_module *layers[] = {gf_nn_flatten(ctx, 1, -1), gf_nn_linear(ctx, NULL, 784, 128, true),
                           gf_nn_relu(ctx), gf_nn_linear(ctx, NULL, 128, 10, true)};
    net = gf_nn_sequential_of(ctx, 4, layers);

    gf_loader_params lp = gf_loader_default_params(); /* batch 64, shuffled per epoch */
    train_ld = train ? gf_loader_new(ctx, train, &lp) : NULL;
    lp.shuffle = false;
    lp.batch_size = 1000;
    test_ld = gf_loader_new(ctx, test, &lp);

    gf_optim_params hp = gf_optim_default_params(GF_OPTIM_ADAM); /* lr 1e-3 */
    opt = net ? gf_train_optim_new(ctx, net, &hp, NULL, 0) : NULL; /* every parameter */
    if (!opt || !train_ld || !test_ld) goto fail; /* any failure above left its message */

    for (int epoch = 1; epoch <= (quick ? 1 : 5); epoch++) {
        double loss_sum = 0;
        int64_t seen = 0;
        gf_batch b;
        while (gf_loader_next(ctx, train_ld, &b)) {
            gf_tensor *logits = gf_module_forward(ctx, net, b.x);     /* [n, 10] */
            gf_tensor *loss = gf_cross_entropy(ctx, logits, b.y, GF_REDUCE_MEAN, -100);
            if (!loss || gf_backward(ctx, loss) != GF_OK || gf_optim_step(ctx, opt) != GF_OK)
                goto fail;
            loss_sum += gf_f32(loss)[0] * (double)b.n;
            seen += b.n;
            gf_optim_zero_grad(opt);
            gf_ctx_reset(ctx); /* drop this step's graph and activations */
        }
        if (gf_ctx_status(ctx) != GF_OK) goto fail; /* the loader's error, if any */
        printf("epoch %d: train loss %.4f over %lld images\n", epoch, loss_sum / (double)seen,
               (long long)seen);
    }

    /* evaluation: no graph, dropout/batch-norm (none here) in eval mode */
    gf_module_train(net, false);
    gf_ctx_set_grad_enabled(ctx, false);
    int64_t correct = 0, total = 0;
    gf_batch b;
    while (gf_loader_next(ctx, test_ld, &b)) {
        gf_tensor *pred = gf_argmax(ctx, gf_module_forward(ctx, net, b.x), 1, false); /* [n] */
        if (!pred) goto fail;
        for (int64_t i = 0; i < b.n; i++) correct += gf_i64(pred)[i] == gf_i64(b.y)[i];
        total += b.n;
        gf_ctx_reset(ctx);
    }
    if (gf_ctx_status(ctx) != GF_OK || total == 0) goto fail;
    printf("test accuracy %.4f (%lld of %lld)\n", (double)correct / (double)total,
           (long long)correct, (long long)total);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "train_mlp: %s\n", gf_ctx_error(ctx));
done:
    gf_loader_free(train_ld);
    gf_loader_free(test_ld);
    gf_optim_free(opt);
    gf_module_free(net);
    gf_ds_free(train);
    gf_ds_free(test);
    gf_ctx_free(ctx);
    return rc;
}
