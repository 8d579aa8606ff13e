"""Text room: from words to model pieces and back.

Loading a fast tokenizer that is safe for pre-split words (`tokenizer`), splitting raw text into
words with offsets (`words`), cutting long sentences into windows (`windows`), aligning word tags
to subword pieces (`alignment`), and encoding whole splits into features / merging per-piece
model output back to one value per word (`features`). Imports only the core modules and `data.types`.
"""
