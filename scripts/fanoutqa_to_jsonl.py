#!/usr/bin/env python3
"""FanOutQA dev set -> lords fine-tuning JSONL (python3 standard library only; run by setup.sh assets).

FanOutQA (Zhu et al., ACL 2024; PyPI `fanoutqa`, data CC BY-SA 4.0) asks human-written "fan-out"
questions over English Wikipedia; each question is decomposed by its annotators into sub-questions,
every one with its answer. Each question and each sub-question becomes one example
    {"question": ..., "answer": ..., "group": <id of the top-level question>}
so a question and its sub-questions land on the same side of a train/held-out split. Structured
answers are written as text: a list as "a, b, c", an object as one "key: value" line per entry,
booleans as Yes/No. A (question, answer) pair seen before is skipped, so the same sub-question
cannot end up on both sides of a split. The output is deterministic (setup.sh checks its sha256).

usage: fanoutqa_to_jsonl.py fanout-final-dev.json out.jsonl
"""
import json
import sys


def answer_text(a):
    if isinstance(a, bool):
        return "Yes" if a else "No"
    if isinstance(a, (int, float)):
        return repr(a)
    if isinstance(a, str):
        return a.strip()
    if isinstance(a, list):
        return ", ".join(answer_text(x) for x in a)
    if isinstance(a, dict):
        return "\n".join(f"{k}: {answer_text(v)}" for k, v in a.items())
    raise ValueError(f"unexpected answer type {type(a).__name__}")


def walk(node, group, seen, out):
    q, a = node["question"].strip(), answer_text(node["answer"])
    if q and a and (q, a) not in seen:
        seen.add((q, a))
        out.append({"question": q, "answer": a, "group": group})
    for sub in node.get("decomposition", []):
        walk(sub, group, seen, out)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    with open(sys.argv[1], encoding="utf-8") as f:
        questions = json.load(f)
    out, seen = [], set()
    for top in questions:
        walk(top, top["id"], seen, out)
    with open(sys.argv[2], "w", encoding="utf-8", newline="\n") as f:
        for ex in out:
            f.write(json.dumps(ex, ensure_ascii=False) + "\n")
    print(f"fanoutqa: {len(questions)} questions -> {len(out)} examples in {sys.argv[2]}", file=sys.stderr)


if __name__ == "__main__":
    main()
