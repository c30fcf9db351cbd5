#!/usr/bin/env python3
"""Reference logits and perplexity of the default model from PyTorch + transformers, independent of lords:
transformers reads the GGUF itself (its own dequantization, through the `gguf` package, and its own
undoing of llama.cpp's q/k permutation). Run on the H100 machine, where torch/transformers/tokenizers
are installed (carry the `gguf` wheel there):

  python3 scripts/make_golden.py DIR/SmolLM2-135M-Instruct.Q4_1.gguf hamlet_gut.txt \
      tests/runtime/fixtures/smollm2_golden.json

Writes: for fixed prompts, their token ids and the fp32 logits of every position at 256 fixed random vocab
columns plus each row's argmax; greedy continuation ids; and the perplexity of the text with the llama.cpp
protocol (chunks of 512 tokens, second half scored, no BOS for SmolLM2) over the first 4 chunks.
"""
import json
import os
import sys

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import LlamaForCausalLM

gguf_path, text_path, out_path = sys.argv[1:4]
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = "cuda" if torch.cuda.is_available() else "cpu"
gguf_dir, gguf_file = gguf_path.rsplit("/", 1)
model = LlamaForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file, dtype=torch.float32).to(dev).eval()
tok = Tokenizer.from_file("tests/tokenizer/fixtures/smollm2_tokenizer.json")
text = open(text_path, encoding="utf-8").read()
prompts = ["The capital of France is",
           "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
           text[:600]]
V = model.config.vocab_size
cols = sorted(np.random.default_rng(0).choice(V, 256, replace=False).tolist())
out = {"model": "SmolLM2-135M-Instruct.Q4_1.gguf (dequantized, fp32)", "device": torch.cuda.get_device_name(0)
       if dev == "cuda" else "cpu", "torch": torch.__version__, "columns": cols, "prompts": []}
with torch.no_grad():
    for p in prompts:
        ids = tok.encode(p).ids
        logits = model(torch.tensor([ids], device=dev)).logits[0].double().cpu().numpy()
        gen = model.generate(torch.tensor([ids], device=dev), max_new_tokens=16, do_sample=False)[0][len(ids):]
        out["prompts"].append({"ids": ids, "argmax": logits.argmax(1).tolist(),
                               "logits": logits[:, cols].tolist(), "row_absmax": np.abs(logits).max(1).tolist(),
                               "greedy": gen.tolist()})
    ids = tok.encode(text).ids
    n_ctx, chunks, nll, count = 512, 4, 0.0, 0
    for c in range(chunks):
        chunk = torch.tensor([ids[c * n_ctx:(c + 1) * n_ctx]], device=dev)
        lp = torch.log_softmax(model(chunk).logits[0].double(), dim=-1)
        for j in range(n_ctx // 2, n_ctx - 1):
            nll -= lp[j, chunk[0, j + 1]].item()
            count += 1
    out["perplexity"] = {"text": text_path.split("/")[-1], "n_ctx": n_ctx, "chunks": chunks, "scored": count,
                         "ppl": float(np.exp(nll / count))}
os.makedirs(os.path.dirname(out_path), exist_ok=True)
json.dump(out, open(out_path, "w"))
print("ppl", out["perplexity"], "greedy", out["prompts"][0]["greedy"])
