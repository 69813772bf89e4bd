"""Import-only stand-in: the real agents package imports this at start; the fake agent never
calls the tools that use it (test/peer/python/shim/fake_answers.py)."""
class SentenceTransformer:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("sentence_transformers is not installed for the peer run")
