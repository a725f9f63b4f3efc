/* chat_files.h: the files the chat commands read (messages, tools), whole. */
#ifndef KVC_TOOLS_CHAT_FILES_H
#define KVC_TOOLS_CHAT_FILES_H

/* The whole file at `path` ("-": stdin) in *text (NUL-terminated, malloc'd; the caller frees
 * it). 0, or KVC_EXIT_USAGE after printing "kvcache CMD: OPTION PATH: why" to stderr. */
int kvc_chat_read_text(const char *cmd, const char *option, const char *path, char **text);

#endif
