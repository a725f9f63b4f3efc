/* json.c: see json.h. */
#include "json.h"

#include <string.h>

#include "error.h"

kvc_status kvc__json_parse(const char *path, const char *text, size_t size, cJSON **out) {
  *out = NULL;
  for (size_t i = 0; i + 1 < size; i++) {
    if (text[i] != '\\')
      continue;
    if (text[i + 1] == 'u' && i + 6 <= size && !memcmp(text + i + 2, "0000", 4))
      return kvc__fail(KVC_ERR_MODEL,
                       "%s: a string holds \\u0000 (near byte %zu): not allowed in a key or value",
                       path, i);
    i++; /* the escaped character */
  }
  *out = cJSON_ParseWithLength(text, size);
  if (!*out)
    return kvc__fail(KVC_ERR_MODEL, "%s is not valid JSON (near byte %td)", path,
                     cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - text : (ptrdiff_t)0);
  return KVC_OK;
}
