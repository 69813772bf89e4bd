"""Import-only stand-in: the real agents package imports this at start; the fake agent never
calls the tools that use it (test/peer/python/shim/fake_answers.py)."""
