"""Seeded filler text sized in tokens: the emulator counts ceil(characters / 4) per block.

Word salad from a domain vocabulary, in sentences and paragraphs, so prompts look like
prompts (and carry no digits that the gateway's date detector could take for a time).
"""

from __future__ import annotations

import random

CHARS_PER_TOKEN = 4  # Sonnet 4.5 / Haiku 4.5 tokenizer density in the emulator

VOCABULARY = {
    "support": (
        "account billing invoice refund order shipment tracking password login reset plan "
        "upgrade downgrade subscription charge card payment address delivery warehouse policy "
        "escalate ticket customer agent apologize verify identity email phone device router "
        "firmware error message install update settings cancel renewal discount coupon credit "
        "replacement warranty return label carrier delayed damaged missing item package"
    ),
    "research": (
        "study result method sample analysis evidence source paper journal dataset model "
        "benchmark citation claim finding author review survey trend market regulation energy "
        "battery storage grid solar capacity cost forecast policy region adoption supply chain "
        "lithium sodium manufacturing efficiency report estimate uncertainty assumption"
    ),
    "contract": (
        "clause party agreement obligation liability indemnity termination notice term renewal "
        "confidential information breach remedy warranty representation payment fee schedule "
        "governing law dispute arbitration assignment subcontractor insurance limitation "
        "damages force majeure amendment exhibit schedule deliverable acceptance audit data"
    ),
}
GLUE = ("the", "a", "of", "to", "and", "for", "with", "in", "on", "is", "are", "that", "this",
        "be", "by", "as", "may", "shall", "not", "any", "each")  # fmt: skip


class Prose:
    POOL = 4_000  # distinct sentences per generator: drawing whole sentences keeps a day fast

    def __init__(self, rng: random.Random, domain: str) -> None:
        self.rng = rng
        self.words = VOCABULARY[domain].split()
        self.pool = [self._compose() for _ in range(self.POOL)]

    def _compose(self) -> str:
        count = self.rng.randint(8, 18)
        words = [
            self.rng.choice(self.words) if self.rng.random() < 0.6 else self.rng.choice(GLUE)
            for _ in range(count)
        ]
        return " ".join(words).capitalize() + "."

    def sentence(self) -> str:
        return self.pool[self.rng.randrange(self.POOL)]

    def text(self, tokens: int) -> str:
        """About `tokens` tokens (exactly tokens * 4 characters) of paragraphs."""
        chars = tokens * CHARS_PER_TOKEN
        parts: list[str] = []
        size = 0
        while size < chars:
            sentence = self.sentence()
            if parts:
                sentence = ("\n\n" if self.rng.random() < 0.15 else " ") + sentence
            parts.append(sentence)
            size += len(sentence)
        return "".join(parts)[: chars - 1].rstrip() + "."


def tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)
