"""What the faked LLM agent answers, decided by the part number (test/peer/README.md).

Only the language-model agent is fake: the real Flask app, its jobs, its Redis publisher and
its agents/agents/manager_agent.execute() run as written. A CodeAgent here never calls a model;
it waits and returns a final answer, or raises, as the part number asks:

  ...SLOW<n>...   the agent run takes <n> seconds (otherwise NEXA_PEER_AGENT_SECONDS, default 1)
  ...AGENTERR...  the agent run raises, as litellm does on its request timeout
  ...ALT...       the final answer names another part number (<PN>-ALT)
  ...NOPN...      the final answer names no part number (null)
  anything else   a final answer naming the part number asked for, with an NCM

Every decision is printed to stderr with the part number, so the runner's log shows it.
"""
import json
import os
import re
import sys
import time

_PART_NUMBER = re.compile(r'"part_number":\s*"(.*?)",?\s*$', re.MULTILINE)


def part_number_of(task: str) -> str:
    # The manager's prompt shows an example input ("ABC123") before the real one: take the last.
    found = _PART_NUMBER.findall(task)
    return found[-1] if found else ""


def run_seconds(pn: str) -> float:
    slow = re.search(r"SLOW(\d+)", pn.upper())
    if slow:
        return float(slow.group(1))
    return float(os.environ.get("NEXA_PEER_AGENT_SECONDS", "1"))


def final_answer(task: str) -> str:
    """The manager agent's final answer (the JSON text its system prompt asks for), or raises."""
    pn = part_number_of(task)
    upper = pn.upper()
    seconds = run_seconds(pn)
    print(f"[fake agent] part number {pn!r}: running {seconds:g} s", file=sys.stderr, flush=True)
    time.sleep(seconds)
    if "AGENTERR" in upper:
        print(f"[fake agent] part number {pn!r}: raising", file=sys.stderr, flush=True)
        raise TimeoutError(f"litellm.Timeout: Connection timed out (simulated agent, {pn})")
    named = None if "NOPN" in upper else (f"{pn}-ALT" if "ALT" in upper else pn)
    answer = {
        "part_number": named,
        "supplier": "",
        "specifications": {"source": "simulated agent"},
        "description": f"Descricao gerada pelo agente simulado para {named}",
        "classification": [{"ncm": "85423190", "ex": "", "confidence": "0.9"}],
    }
    print(f"[fake agent] part number {pn!r}: answering for {named!r}", file=sys.stderr, flush=True)
    # The same text, byte for byte, as the simulator's real-server profile (src/simulator/real-server-jobs.ts).
    return json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
