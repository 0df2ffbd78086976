/* What the files reading protobuf share (onnx_read.c, onnx_tensor.c): decoding a message
 * under the checks of hostile input, and turning a TensorProto into a tensor. Only these files
 * see the generated protobuf-c types. */
#ifndef GRAFT_ONNX_PB_H
#define GRAFT_ONNX_PB_H

#include <onnx/onnx.pb-c.h>

#include "import/onnx_internal.h"

/* Decodes one message of type desc from data: first a scan of the wire format that checks
 * every length and the nesting depth (protobuf-c recurses once per nested message and has no
 * depth limit of its own), then protobuf-c's decoder with an allocator that refuses to hand out
 * more than the data-bytes limit, or 64 MiB plus 32 bytes per byte of input (a file of empty
 * messages decodes to many times its size). what names the input in messages. Free the result
 * with ox_pb_free; ox_pb_bytes says how much the decoder allocated. */
typedef struct ox_pb ox_pb;
ox_pb *ox_pb_decode(gf_ctx *ctx, const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                    size_t size, const char *what);
ProtobufCMessage *ox_pb_msg(const ox_pb *p);
int64_t ox_pb_bytes(const ox_pb *p);
void ox_pb_free(ox_pb *p);

/* A tensor from tp (raw_data, the typed fields, or external data in dir; dir NULL refuses
 * external data). what: "file: initializer 'w'" for messages. Refuses more than 8
 * dimensions, negative ones, element counts over the params limit, data whose size does not
 * match the dimensions and element types graft cannot hold. *elem gets the ONNX type. */
gf_tensor *ox_tensor_from_pb(gf_ctx *ctx, const Onnx__TensorProto *tp, const char *dir,
                             const char *what, int *elem);

#endif
