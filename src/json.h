/* json.h: the project's JSON files (config.json, genai_config.json) parsed with cJSON. */
#ifndef KVC_JSON_H
#define KVC_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "kvcache.h"

/* *out: the parsed text of file `path` (cJSON_Delete it). KVC_ERR_MODEL naming the path when
 * the text is not JSON (and where), or when a string or key holds \u0000: cJSON's strings end
 * there, so "max_seq_len\u0000x" would be read as the key max_seq_len. */
kvc_status kvc__json_parse(const char *path, const char *text, size_t size, cJSON **out);

#endif
