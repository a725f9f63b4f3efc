/* commands.h: one entry point per CLI verb; argv[0] is the verb itself. */
#ifndef KVC_TOOLS_COMMANDS_H
#define KVC_TOOLS_COMMANDS_H

int kvc_cmd_build_model(int argc, char **argv);
int kvc_cmd_generate(int argc, char **argv);
int kvc_cmd_info(int argc, char **argv);
int kvc_cmd_verify(int argc, char **argv);
int kvc_cmd_bench(int argc, char **argv);
int kvc_cmd_tokenize(int argc, char **argv);
int kvc_cmd_detokenize(int argc, char **argv);
int kvc_cmd_quantize(int argc, char **argv);
int kvc_cmd_eval(int argc, char **argv);
int kvc_cmd_soak(int argc, char **argv);
int kvc_cmd_render(int argc, char **argv);
int kvc_cmd_chat(int argc, char **argv);
int kvc_cmd_serve(int argc, char **argv);

/* The most a cached mode's logits may differ from the uncached recompute's before verify
 * and bench call it a failure. */
#define KVC_AGREEMENT_LIMIT 1e-4

#endif
