/* matmul_avx512.c: the int8-activation products with AVX-512 VNNI on 256-bit vectors
 * (compiled with -mavx512vnni -mavx512vl -mavx2; run only where the CPU has them): vpdpbusd
 * multiplies unsigned by signed bytes and adds each four into an int32 lane, exactly, so
 * 8-bit codes need no centring. See matmul_x86.h and matmul_kernel.h. */
#define KVC_QMM_NAME            kvc__qmm_avx512
#define KVC_QMM_DOT4(acc, w, a) _mm256_dpbusd_epi32(acc, w, a)
#define KVC_QMM_DOT8(acc, w, a) _mm256_dpbusd_epi32(acc, w, a)
#define KVC_QMM_BIAS8           0
#define KVC_QMM_ROWS            8

#include "matmul_x86.h"
