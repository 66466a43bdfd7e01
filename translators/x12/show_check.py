"""Print the generated "clean?" check of one segment (translators.x12.compiled):
``python -m translators.x12.show_check 850 004010 PO1``. For reading, never imported
by the translators."""

from __future__ import annotations

import sys

from translators.x12.compiled import segment_source
from translators.x12.grammar import load_grammar


def main(argv: list[str]) -> int:
    """Print the generated check of one segment: SET VERSION TAG."""
    if len(argv) != 3:
        print("usage: python -m translators.x12.show_check SET VERSION TAG", file=sys.stderr)
        return 2
    grammar = load_grammar(argv[0], argv[1])
    if grammar is None or argv[2] not in grammar.segments:
        print(f"no rule for {argv[2]} in {argv[0]} {argv[1]}", file=sys.stderr)
        return 1
    for rule in grammar.segments[argv[2]]:
        print(segment_source(rule, grammar.version >= "004020")[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
