/* attention_exp.h: the constants of the vectorised exp in the attention kernels (Cephes'
 * expf: e^x = 2^t e^r with t = round(x log2 e), r = x - t ln 2 split in two parts for
 * precision, e^r ~ 1 + r + r^2 P(r) on |r| <= ln2 / 2; about 1 ulp). Inputs are clamped to
 * the range where 2^t is a normal float; the kernels only take exp of x <= 0. */
#ifndef KVC_ATTENTION_EXP_H
#define KVC_ATTENTION_EXP_H

#define KVC_EXP_LO     -87.336544f
#define KVC_EXP_HI     88.376259f
#define KVC_EXP_LOG2E  1.44269504088896341f
#define KVC_EXP_LN2_HI 0.693359375f
#define KVC_EXP_LN2_LO -2.12194440e-4f
#define KVC_EXP_P0     1.9875691500e-4f
#define KVC_EXP_P1     1.3981999507e-3f
#define KVC_EXP_P2     8.3334519073e-3f
#define KVC_EXP_P3     4.1665795894e-2f
#define KVC_EXP_P4     1.6666665459e-1f
#define KVC_EXP_P5     5.0000001201e-1f

#endif
