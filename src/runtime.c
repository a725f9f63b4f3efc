/* runtime.c: what ONNX Runtime was loaded, from where, with which execution providers. */
#define _GNU_SOURCE /* dladdr: the only way to learn which file a symbol came from */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "model.h"
#include "ort.h"

kvc_status kvc_runtime_get_info(kvc_runtime_info *info) {
  if (!info)
    return kvc__fail(KVC_ERR_INVALID_ARG, "kvc_runtime_get_info: info is NULL");
  memset(info, 0, sizeof *info);
  info->api_version = ORT_API_VERSION;
  info->ort_version = OrtGetApiBase()->GetVersionString();

  Dl_info dl;
  if (dladdr((void *)OrtGetApiBase, &dl) && dl.dli_fname)
    snprintf(info->library_path, sizeof info->library_path, "%s", dl.dli_fname);

  kvc_status s = kvc__ort_init();
  if (s)
    return s;
  const OrtApi *ort = kvc__ort();
  char **names = NULL;
  int count = 0;
  s = kvc__ort_check(ort->GetAvailableProviders(&names, &count), "GetAvailableProviders");
  if (s)
    return s;
  size_t used = 0;
  for (int i = 0; i < count; i++) {
    int n = snprintf(info->providers + used, sizeof info->providers - used, "%s%s", i ? "," : "",
                     names[i]);
    if (n < 0 || (size_t)n >= sizeof info->providers - used)
      break;
    used += (size_t)n;
  }
  s = kvc__ort_check(ort->ReleaseAvailableProviders(names, count), "ReleaseAvailableProviders");
  if (s)
    return s;
  /* usable: what kvc_model_open can create, tried the way it creates it (in kvcache's
   * environment, which providers log through) */
  kvc_model_params p = kvc_model_default_params();
  OrtSessionOptions *o = NULL;
  OrtEnv *env = NULL;
  if ((s = kvc__ort_env(&env)))
    return s;
  if (kvc__session_options(&p, 1, &o) == KVC_OK) {
    ort->ReleaseSessionOptions(o);
    snprintf(info->usable_providers, sizeof info->usable_providers, "cpu,cuda");
  } else {
    snprintf(info->usable_providers, sizeof info->usable_providers, "cpu");
    snprintf(info->cuda_note, sizeof info->cuda_note, "%s", kvc_last_error());
  }
  return KVC_OK;
}
