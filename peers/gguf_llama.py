#!/usr/bin/env python3
"""Write a llama.cpp GGUF of the same dimensions as a kvcache Llama-style model.

usage: gguf_llama.py KVCACHE_MODEL_DIR OUT.gguf

Reads the dimensions from the model's config.json (written by `kvcache build-model --arch
llama`): layers, hidden size, heads, K/V heads, head size, MLP width, vocabulary, context.
Writes float32 weights drawn at random (seeded: the same file every time; the values do not
matter to speed, only the shapes and types), llama.cpp's tensor names and its "llama"
architecture keys, and a placeholder SentencePiece vocabulary of that many tokens (llama.cpp
needs one to size its logits). Quantise it with `llama_peer --quantize`. Needs llama.cpp's
gguf-py on PYTHONPATH (scripts/fetch-llama-cpp.sh) and numpy.
"""
import json
import sys

import numpy as np
import gguf


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(f"{sys.argv[1]}/config.json") as f:
        c = json.load(f)
    if c.get("arch") != "llama":
        sys.exit(f"gguf_llama.py: {sys.argv[1]} is not a Llama-style model (arch {c.get('arch')})")
    layers, heads, kv_heads = c["num_layers"], c["num_heads"], c["num_kv_heads"]
    head_dim, hidden, vocab = c["head_dim"], c["hidden_dim"], c["vocab_size"]
    ff, context = c["ff_dim"], c["max_seq_len"]

    w = gguf.GGUFWriter(sys.argv[2], "llama")
    w.add_context_length(context)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(ff)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    # placeholder vocabulary: <unk>, <s>, </s>, the 256 byte tokens, then "t<id>"
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"t{i}" for i in range(len(tokens), vocab)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    types += [gguf.TokenType.BYTE] * 256 + [gguf.TokenType.NORMAL] * (vocab - 259)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens[:vocab])
    w.add_token_scores([0.0] * vocab)
    w.add_token_types(types[:vocab])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)

    rng = np.random.default_rng(1)

    def matrix(rows, cols):  # (out, in) in numpy order: llama.cpp's {in, out}
        return (rng.standard_normal((rows, cols), dtype=np.float32) / np.sqrt(cols)).astype(np.float32)

    q, kv = heads * head_dim, kv_heads * head_dim
    w.add_tensor("token_embd.weight", rng.standard_normal((vocab, hidden), dtype=np.float32))
    for i in range(layers):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(hidden, dtype=np.float32))
        w.add_tensor(f"blk.{i}.attn_q.weight", matrix(q, hidden))
        w.add_tensor(f"blk.{i}.attn_k.weight", matrix(kv, hidden))
        w.add_tensor(f"blk.{i}.attn_v.weight", matrix(kv, hidden))
        w.add_tensor(f"blk.{i}.attn_output.weight", matrix(hidden, q))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(hidden, dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", matrix(ff, hidden))
        w.add_tensor(f"blk.{i}.ffn_up.weight", matrix(ff, hidden))
        w.add_tensor(f"blk.{i}.ffn_down.weight", matrix(hidden, ff))
    w.add_tensor("output_norm.weight", np.ones(hidden, dtype=np.float32))
    w.add_tensor("output.weight", matrix(vocab, hidden))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
