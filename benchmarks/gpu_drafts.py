"""Weak drafting with the Hugging Face backend on a GPU: drafts/s of SmolLM2-135M-shaped weights
(random, same shapes and speed as the real ones) for 1 draft, k drafts of one prompt, and 16 or 64
prompts in one batched `generate`. Fixed-length drafts; median of repeats after a warm-up.

    python -m benchmarks.gpu_drafts --config-from DIR [--tokens 48]

Used to pick the weak backend per device: on 2 CPU cores llama.cpp drafts 2.8/s at best
(`benchmarks/throughput.py`); this is the HF path where CUDA is available.
Writes benchmarks/results/gpu_drafts.json.
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.common import print_table, save


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config-from", required=True, help="SmolLM2 config + tokenizer directory")
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tok = AutoTokenizer.from_pretrained(args.config_from)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(args.config_from)).to(device).eval()
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Question 3: what should a new employee know about rule 3?"}],
        tokenize=False,
        add_generation_prompt=True,
    )

    def run(prompts: int, n: int) -> float:
        enc = tok([prompt] * prompts, return_tensors="pt", add_special_tokens=False).to(device)
        times = []
        for i in range(args.repeats + 1):
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            with torch.inference_mode():
                model.generate(
                    **enc,
                    max_new_tokens=args.tokens,
                    min_new_tokens=args.tokens,
                    do_sample=True,
                    temperature=0.8,
                    top_p=0.95,
                    num_return_sequences=n,
                    pad_token_id=tok.eos_token_id,
                )
            if device == "cuda":
                torch.cuda.synchronize()
            if i:  # the first call warms up
                times.append(time.perf_counter() - start)
        return statistics.median(times)

    rows = []
    for prompts, n in ((1, 1), (1, 4), (16, 1), (64, 1)):
        seconds = run(prompts, n)
        rows.append(
            {"prompts": prompts, "drafts_each": n, "seconds": seconds, "drafts_per_s": prompts * n / seconds}
        )
    print_table(f"HF batched generate on {device} ({args.tokens} tokens per draft)", rows)
    print(f"wrote {save('gpu_drafts', {'rows': rows, 'device': device, 'tokens': args.tokens})}")


if __name__ == "__main__":
    main()
