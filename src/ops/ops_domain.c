/* ops_domain.c: the one ai.kvcache domain of a process, holding every operator (see
 * ops.h). */
#include <pthread.h>

#include "ops.h"

static pthread_mutex_t domain_lock = PTHREAD_MUTEX_INITIALIZER;
static OrtCustomOpDomain *domain;

OrtCustomOpDomain *kvc__ops_domain(const OrtApi *ort, OrtStatus **status) {
  pthread_mutex_lock(&domain_lock);
  *status = NULL;
  if (!domain) {
    OrtCustomOpDomain *made = NULL;
    *status = ort->CreateCustomOpDomain(KVC_OP_DOMAIN, &made);
    if (!*status)
      *status = ort->CustomOpDomain_Add(made, &kvc__attention_op);
    if (!*status)
      *status = ort->CustomOpDomain_Add(made, &kvc__attention_f16_op);
    if (!*status)
      *status = ort->CustomOpDomain_Add(made, &kvc__attention_q8_op);
    if (!*status)
      *status = ort->CustomOpDomain_Add(made, &kvc__matmul_op);
    if (*status && made)
      ort->ReleaseCustomOpDomain(made);
    else
      domain = made;
  }
  OrtCustomOpDomain *d = domain;
  pthread_mutex_unlock(&domain_lock);
  return d;
}
