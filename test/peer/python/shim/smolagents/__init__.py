"""A stand-in for the smolagents package: the agents are built as the real code builds them,
but running one calls no language model (see fake_answers.py). Only what the real agents
package imports is defined."""
from enum import IntEnum

import fake_answers


class LogLevel(IntEnum):
    OFF = -1
    ERROR = 0
    INFO = 1
    DEBUG = 2


class LiteLLMModel:
    def __init__(self, model_id=None, **kwargs):
        self.model_id = model_id
        self.kwargs = kwargs


class MemoryStep:
    pass


class Tool:
    name = "tool"
    description = ""
    inputs = {}
    output_type = "string"

    def __init__(self, *args, **kwargs):
        pass


def tool(function):
    return function


class DuckDuckGoSearchTool(Tool):
    pass


class VisitWebpageTool(Tool):
    pass


class WikipediaSearchTool(Tool):
    pass


class PythonInterpreterTool(Tool):
    pass


class CodeAgent:
    def __init__(self, name=None, prompt_templates=None, max_steps=20, **kwargs):
        self.name = name
        self.prompt_templates = prompt_templates or {}
        self.max_steps = max_steps
        self.kwargs = kwargs

    def visualize(self):
        pass

    def __call__(self, task, **kwargs):
        # As smolagents' MultiStepAgent.__call__: the final answer, wrapped in the agent's
        # managed_agent "report" template, returned as a string.
        answer = fake_answers.final_answer(task)
        template = self.prompt_templates.get("managed_agent", {}).get("report", "{{final_answer}}")
        return template.replace("{{name}}", str(self.name)).replace("{{final_answer}}", answer)
