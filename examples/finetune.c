/* Fine-tuning, start to finish: a cnn-small pretrained on Fashion-MNIST classes 0-4 (T-shirt,
 * Trouser, Pullover, Dress, Coat) learns classes 5-9 (Sandal, Shirt, Sneaker, Bag, Ankle boot)
 * from 50 labelled images per class:
 *   load the weights by name with a load plan -> new head -> freeze the trunk -> gf_fit ->
 *   evaluate on the test images of classes 5-9 -> save the weights and a delta.
 * Build against an installed graft:
 *     cc -O2 finetune.c $(pkg-config --cflags --libs graft) -o finetune
 * Run:  finetune [--quick] PRETRAINED.safetensors [OUT_DIR]
 *   PRETRAINED  a cnn-small state_dict with a 5-class head, e.g. graft's test fixture
 *               tests/fixtures/pretrained/cnn_small_fmnist04.safetensors (PyTorch-trained)
 *   OUT_DIR     where finetuned.safetensors and finetuned-delta.safetensors go (default .)
 *   --quick     3 epochs, 250 test images: a smoke test of a few seconds
 * Exit status: 0 done, 1 error, 2 usage, 77 Fashion-MNIST not found (GRAFT_DATA_DIR or
 * /usr/share/datasets/fashion-mnist). */
#include <graft/graft.h>

#include <stdio.h>
#include <string.h>

static bool print_epoch(const gf_epoch_stats *s, void *user) {
    (void)user;
    printf("  epoch %2d/%d  loss %.4f  train acc %.3f  %.2fs\n", s->epoch, s->epochs,
           s->train_loss, s->train_acc, s->seconds);
    return true; /* false would stop training */
}

int main(int argc, char **argv) {
    bool quick = false;
    const char *pretrained = NULL, *out_dir = ".";
    for (int i = 1, pos = 0; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = true;
        else if (argv[i][0] != '-' && pos == 0) pretrained = argv[i], pos++;
        else if (argv[i][0] != '-' && pos == 1) out_dir = argv[i], pos++;
        else pretrained = NULL, i = argc;
    }
    if (!pretrained) {
        fprintf(stderr, "usage: finetune [--quick] PRETRAINED.safetensors [OUT_DIR]\n");
        return 2;
    }
    gf_ctx *ctx = gf_ctx_new(NULL); /* all cores, seed 0 */
    if (!ctx) return 1;
    int rc = 1;
    gf_ds *train = NULL, *test = NULL;
    gf_module *net = NULL;
    gf_transfer_plan *plan = NULL;
    gf_optim *opt = NULL;
    gf_loader *train_ld = NULL, *test_ld = NULL;

    /* 1. data: classes 5-9 (relabelled 0-4, names kept); the first 50 training images of each */
    gf_ds *train_all = gf_ds_load_named(ctx, "fashion-mnist", GF_DATASET_TRAIN);
    gf_ds *test_all = gf_ds_load_named(ctx, "fashion-mnist", GF_DATASET_TEST);
    if (!train_all || !test_all) {
        fprintf(stderr, "finetune: %s\n", gf_ctx_error(ctx));
        gf_ds_free(train_all);
        gf_ds_free(test_all);
        gf_ctx_free(ctx);
        return 77;
    }
    gf_ds *train59 = gf_split_classes(ctx, train_all, "5-9");
    gf_ds *test59 = gf_split_classes(ctx, test_all, "5-9");
    train = train59 ? gf_split_per_class(ctx, train59, 50, false, 0, false) : NULL;
    test = !test59 ? NULL
           : quick ? gf_split_per_class(ctx, test59, 50, false, 0, false)
                   : gf_ds_retain(test59);
    gf_ds_free(train59); /* views hold references to their bases: free ours right away */
    gf_ds_free(test59);
    gf_ds_free(train_all);
    gf_ds_free(test_all);
    if (!train || !test) goto fail;

    /* 2. the architecture of the pretrained file: the zoo's cnn-small with its 5-class head */
    gf_zoo_params zp = gf_zoo_default_params(); /* 1 x 28 x 28 */
    zp.num_classes = 5;
    net = gf_zoo_build(ctx, "cnn-small", &zp, NULL);
    if (!net) goto fail;

    /* 3. load by name, strictly: every key of the model must be in the file with its shape
     *    (F16 in the file is widened to F32). The plan lists what went where. */
    gf_weights_options wo = gf_weights_default_options();
    wo.strict = true;
    if (gf_transfer_load(ctx, net, pretrained, &wo, &plan) != GF_OK) {
        if (plan) gf_transfer_plan_print(plan, stderr, false); /* the keys that did not fit */
        goto fail;
    }
    gf_transfer_plan_free(plan);
    plan = NULL;

    /* 4. a fresh head for the new classes (its old classes mean nothing here), and a frozen
     *    convolutional trunk: no gradients, no optimizer state, no weight decay for it */
    gf_rng rng;
    gf_rng_seed(&rng, 1);
    gf_transfer_replace_head(ctx, net, NULL, gf_ds_n_classes(train), &rng); /* "classifier.3" */
    gf_transfer_freeze(ctx, net, "features.*");
    if (gf_ctx_status(ctx) != GF_OK) goto fail;

    /* the plan of the same file against the model as it is now: roles and counts */
    wo.strict = false;
    if (gf_transfer_plan_load(ctx, net, pretrained, &wo, &plan) != GF_OK) goto fail;
    gf_transfer_plan_print(plan, stdout, false);
    gf_transfer_plan_free(plan);
    plan = NULL;

    /* 5. train what requires grad: AdamW, batches of 25, 15 epochs over the 250 images */
    gf_loader_params lp = gf_loader_default_params();
    lp.batch_size = 25;
    lp.seed = 0;
    train_ld = gf_loader_new(ctx, train, &lp);
    lp.batch_size = 500;
    lp.shuffle = false;
    test_ld = gf_loader_new(ctx, test, &lp);
    gf_optim_params hp = gf_optim_default_params(GF_OPTIM_ADAMW); /* lr 1e-3, decay 1e-2 */
    opt = gf_train_optim_new(ctx, net, &hp, NULL, 0);
    if (!train_ld || !test_ld || !opt) goto fail;

    gf_fit_params fp = gf_fit_default_params();
    fp.epochs = quick ? 3 : 15;
    fp.on_epoch = print_epoch;
    gf_fit_result res;
    printf("fine-tuning on %lld images (%d classes):\n", (long long)gf_ds_count(train),
           gf_ds_n_classes(train));
    if (gf_fit(ctx, net, NULL /* cross entropy */, opt, NULL, train_ld, NULL, &fp, &res) != GF_OK)
        goto fail;

    /* 6. evaluate on the held-out test images of classes 5-9 (eval mode, no graph) */
    double test_loss, test_acc;
    if (gf_evaluate(ctx, net, NULL, test_ld, &test_loss, &test_acc) != GF_OK) goto fail;
    printf("test: %lld images, loss %.4f, accuracy %.4f\n", (long long)gf_ds_count(test),
           test_loss, test_acc);

    /* 7. save: the whole state_dict (PyTorch loads it by the same names), and a delta holding
     *    only the tensors that differ from the pretrained file, tied to it by its SHA-256 */
    char path[1024], delta[1024];
    snprintf(path, sizeof path, "%s/finetuned.safetensors", out_dir);
    snprintf(delta, sizeof delta, "%s/finetuned-delta.safetensors", out_dir);
    const char *meta[] = {"base", pretrained, "task", "fashion-mnist classes 5-9, 50 per class"};
    int n_delta = 0;
    if (gf_weights_save(ctx, net, path, meta, 2) != GF_OK ||
        gf_transfer_delta_save(ctx, net, pretrained, &wo, delta, &n_delta) != GF_OK)
        goto fail;
    printf("saved %s and %s (%d tensors changed)\n", path, delta, n_delta);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "finetune: %s\n", gf_ctx_error(ctx));
done:
    gf_transfer_plan_free(plan);
    gf_loader_free(train_ld);
    gf_loader_free(test_ld);
    gf_optim_free(opt);
    gf_module_free(net);
    gf_ds_free(train);
    gf_ds_free(test);
    gf_ctx_free(ctx);
    return rc;
}
