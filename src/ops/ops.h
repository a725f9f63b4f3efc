/* ops.h: kvcache's ONNX Runtime custom operators, in the domain ai.kvcache (version 1), for
 * the CPU execution provider: Attention (attention_op.h) and MatMulNBits (matmul_op.c:
 * MatMulNBits' inputs and attributes, int8 activations whose result does not depend on the
 * row count or the CPU: matmul_kernel.h). Registered together, by the library for its own
 * sessions and by libkvcache_ops (ops_lib.c) for any ONNX Runtime program. */
#ifndef KVC_OPS_H
#define KVC_OPS_H

#include <stddef.h>

#include <onnxruntime_c_api.h>

#define KVC_OP_DOMAIN    "ai.kvcache"
#define KVC_OP_ATTENTION "Attention"
#define KVC_OP_MATMUL    "MatMulNBits"

extern const OrtCustomOp kvc__attention_op, kvc__attention_f16_op, kvc__attention_q8_op,
    kvc__matmul_op;

/* A domain holding the operators, made once per process with `ort` and never released
 * (sessions may outlive any one owner). NULL with *status set on failure. */
OrtCustomOpDomain *kvc__ops_domain(const OrtApi *ort, OrtStatus **status);

/* The kernel path of one of the operators' kernel families, named as the environment
 * variables name them: portable (0), avx2 (1), avx512 (2), amx (3), the family having the
 * first `paths` of them. The highest that runs(path) says this CPU (and build) has, or the
 * one the variable `var` names. 0; or -1 with the reason in
 * `why` when the variable names an unknown path or one this CPU lacks. */
int kvc__op_pick_path(const char *var, int paths, int (*runs)(int path), int *path, char *why,
                      size_t cap);
const char *kvc__op_path_name(int path);

/* Whether the CPU converts half floats (F16C: CPUID leaf 1, ECX bit 29); asked of CPUID
 * itself, as clang's __builtin_cpu_supports does not know the name. 0 off x86-64. */
int kvc__op_has_f16c(void);

/* Whether the CPU runs 512-bit vector operations as two 256-bit halves: AMD family 0x19 with
 * AVX-512 (Zen 4; Zen 3, the same family, has none). 0 elsewhere and off x86-64. */
int kvc__op_halves_512(void);

/* OrtCustomOp callbacks both operators share: the CPU execution provider, float outputs, all
 * required, inputs in default (CPU) memory. */
const char *kvc__op_cpu(const OrtCustomOp *op);
ONNXTensorElementDataType kvc__op_float(const OrtCustomOp *op, size_t index);
OrtCustomOpInputOutputCharacteristic kvc__op_required(const OrtCustomOp *op, size_t index);
OrtMemType kvc__op_cpu_memory(const OrtCustomOp *op, size_t index);

#endif
