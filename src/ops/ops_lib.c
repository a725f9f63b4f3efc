/* ops_lib.c: libkvcache_ops, kvcache's operators for any ONNX Runtime program.
 * ONNX Runtime's convention for a custom-operator library: it exports
 *
 *   OrtStatus *RegisterCustomOps(OrtSessionOptions *options, const OrtApiBase *api);
 *
 * which a program reaches through OrtApi::RegisterCustomOpsLibrary_V2(options, path) before
 * it creates a session over a graph that uses ai.kvcache operators. */
#include "ops.h"

#define KVC_STR(x)       #x
#define KVC_STRINGIFY(x) KVC_STR(x)

__attribute__((visibility("default"))) OrtStatus *RegisterCustomOps(OrtSessionOptions *options,
                                                                    const OrtApiBase *api_base);

OrtStatus *RegisterCustomOps(OrtSessionOptions *options, const OrtApiBase *api_base) {
  const OrtApi *ort = api_base->GetApi(ORT_API_VERSION);
  if (!ort) { /* an older runtime: version 1 of the API still reports the failure */
    const OrtApi *v1 = api_base->GetApi(1);
    return v1->CreateStatus(ORT_FAIL, "libkvcache_ops needs an ONNX Runtime that serves API "
                                      "version " KVC_STRINGIFY(ORT_API_VERSION));
  }
  OrtStatus *st = NULL;
  OrtCustomOpDomain *domain = kvc__ops_domain(ort, &st);
  return st ? st : ort->AddCustomOpDomain(options, domain);
}
