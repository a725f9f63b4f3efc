/* spoil_cache DIR OUT: copy the model in DIR to OUT with one defect a cached decoder can
 * have: layer 0's attention uses its keys as computed, but the present it hands on (the next
 * step's past) holds them halved. The uncached recompute never reads a present, so only the
 * cached modes go wrong: `kvcache verify` must catch it. Exits 0 when OUT is written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "onnx/onnx.pb-c.h"

static int copy(const char *from, const char *to) {
  FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
  char buf[65536];
  size_t n;
  int ok = a && b;
  while (ok && (n = fread(buf, 1, sizeof buf, a)) > 0)
    ok = fwrite(buf, 1, n, b) == n;
  if (a)
    fclose(a);
  if (b)
    fclose(b);
  return ok;
}

static Onnx__NodeProto *node(const char *op, char **in, size_t n_in, char **out,
                             Onnx__AttributeProto **attr, size_t n_attr) {
  Onnx__NodeProto *n = malloc(sizeof *n);
  onnx__node_proto__init(n);
  n->op_type = (char *)op;
  n->n_input = n_in;
  n->input = in;
  n->n_output = 1;
  n->output = out;
  n->n_attribute = n_attr;
  n->attribute = attr;
  return n;
}

int main(int argc, char **argv) {
  if (argc != 3)
    return 2;
  char path[4096];
  snprintf(path, sizeof path, "%s/model.onnx", argv[1]);
  FILE *f = fopen(path, "rb");
  if (!f)
    return 1;
  static uint8_t buf[1 << 22];
  size_t size = fread(buf, 1, sizeof buf, f);
  fclose(f);
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, buf);
  if (!m)
    return 1;
  Onnx__GraphProto *g = m->graph;

  /* the Concat producing present_key_0 now produces the keys attention uses */
  static char used[] = "spoil/present_key_0_used", present[] = "present_key_0";
  static char spoiled[] = "spoil/k_halved", half[] = "c.half";
  char *k_new = NULL, **restore[64], *originals[64];
  int n_restore = 0;
  for (size_t i = 0; i < g->n_node; i++) {
    Onnx__NodeProto *n = g->node[i];
    for (size_t j = 0; j < n->n_input; j++)
      if (!strcmp(n->input[j], present) && n_restore < 64) {
        restore[n_restore] = &n->input[j], originals[n_restore++] = n->input[j];
        n->input[j] = used;
      }
    if (n->n_output && !strcmp(n->output[0], present) && n_restore < 64) {
      k_new = n->input[1];
      restore[n_restore] = &n->output[0], originals[n_restore++] = n->output[0];
      n->output[0] = used;
    }
  }
  if (!k_new) {
    fprintf(stderr, "spoil_cache: no node produces %s\n", present);
    return 1;
  }
  /* present_key_0 = Concat(past_key_0, k * 0.5) */
  char *mul_in[] = {k_new, half}, *mul_out[] = {spoiled};
  char *cat_in[] = {"past_key_0", spoiled}, *cat_out[] = {present};
  Onnx__AttributeProto axis;
  onnx__attribute_proto__init(&axis);
  axis.name = "axis";
  axis.has_type = 1;
  axis.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  axis.has_i = 1;
  axis.i = 2;
  Onnx__AttributeProto *attrs[] = {&axis};
  Onnx__NodeProto *added[2] = {node("Mul", mul_in, 2, mul_out, NULL, 0),
                               node("Concat", cat_in, 2, cat_out, attrs, 1)};
  Onnx__NodeProto **nodes = malloc((g->n_node + 2) * sizeof *nodes), **old_nodes = g->node;
  memcpy(nodes, g->node, g->n_node * sizeof *nodes);
  nodes[g->n_node] = added[0];
  nodes[g->n_node + 1] = added[1];
  g->node = nodes;
  g->n_node += 2;

  size_t packed_size = onnx__model_proto__get_packed_size(m);
  uint8_t *packed = malloc(packed_size);
  onnx__model_proto__pack(m, packed);
  g->n_node -= 2; /* put the unpacked message back as protobuf-c made it, then free it */
  g->node = old_nodes;
  for (int i = 0; i < n_restore; i++)
    *restore[i] = originals[i];
  onnx__model_proto__free_unpacked(m, NULL);
  free(nodes);
  free(added[0]);
  free(added[1]);

  mkdir(argv[2], 0755);
  snprintf(path, sizeof path, "%s/model.onnx", argv[2]);
  f = fopen(path, "wb");
  int ok = f && fwrite(packed, 1, packed_size, f) == packed_size;
  if (f)
    fclose(f);
  free(packed);
  const char *files[] = {"model.onnx.data", "config.json"};
  for (int i = 0; i < 2 && ok; i++) {
    char from[4096], to[4096];
    snprintf(from, sizeof from, "%s/%s", argv[1], files[i]);
    snprintf(to, sizeof to, "%s/%s", argv[2], files[i]);
    ok = copy(from, to);
  }
  return ok ? 0 : 1;
}
