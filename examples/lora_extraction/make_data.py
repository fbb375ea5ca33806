"""Make the demo dataset: shop orders in free text -> JSON with item, quantity and unit price."""

from __future__ import annotations

import json
import random
from pathlib import Path

ITEMS = ["notebook", "pencil", "backpack", "stapler", "mug", "lamp", "umbrella", "scarf",
         "candle", "teapot", "towel", "wallet", "kettle", "blanket", "ruler", "sticker pack"]
COLOURS = ["red", "blue", "green", "black", "white", "yellow", "grey", "orange"]
NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven",
           8: "eight", 9: "nine", 10: "ten", 12: "a dozen"}
TEMPLATES = [
    "Hi, I'd like {q} {item}s at ${p} each.",
    "Please send {q} {item}s. The price was ${p} apiece, right?",
    "Order: {q} x {item} @ ${p}",
    "Could you put aside {q} {item}s for me? You said ${p} per item.",
    "We need {q} {item}s for the office, ${p} each, delivered Monday.",
    "Add {q} {item}s to my basket (unit price ${p}).",
]
INSTRUCTION = ("Extract the order as JSON with the keys item, quantity and unit_price.\n"
               "Order: ")


def example(rng: random.Random) -> dict:
    item = f"{rng.choice(COLOURS)} {rng.choice(ITEMS)}"
    q = rng.choice(list(NUMBERS))
    price = round(rng.uniform(0.5, 60), 2)
    words = rng.random() < 0.5
    text = rng.choice(TEMPLATES).format(q=NUMBERS[q] if words else q, item=item,
                                        p=f"{price:.2f}")
    answer = json.dumps({"item": item, "quantity": q, "unit_price": price})
    return {"messages": [{"role": "user", "content": INSTRUCTION + text},
                         {"role": "assistant", "content": answer}]}


def main() -> None:
    rng = random.Random(1234)
    out = Path(__file__).with_name("data")
    out.mkdir(exist_ok=True)
    for split, n in [("train", 400), ("valid", 40), ("test", 60)]:
        with open(out / f"{split}.jsonl", "w") as f:
            for _ in range(n):
                f.write(json.dumps(example(rng)) + "\n")
    print(f"wrote {out}/train.jsonl, valid.jsonl, test.jsonl")


if __name__ == "__main__":
    main()
