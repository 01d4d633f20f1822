#!/usr/bin/env python3
"""Renders conversations that reach every branch of the DeepSeek-V3 and DeepSeek-R1 chat templates with Jinja2,
configured as transformers renders chat templates (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks),
and writes chat_branches.json for ChatTemplateTests. The V3 template is read from the fixture
tokenizer_config.json; the R1 template is the chat_template of deepseek-ai/DeepSeek-R1's tokenizer_config.json.
Conversations whose rendering raises (content None where the template concatenates it) are recorded with
"error": true. Run: python3 make_chat_branches.py (Jinja2 3.1)."""
import json
import os

from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "..", "..", "fixtures", "deepseek-v3-tokenizer", "tokenizer_config.json")

R1_TEMPLATE = (
    r"""{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"""
    r"""{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='', is_first_sp=true) %}"""
    r"""{%- for message in messages %}{%- if message['role'] == 'system' %}{%- if ns.is_first_sp %}"""
    r"""{% set ns.system_prompt = ns.system_prompt + message['content'] %}{% set ns.is_first_sp = false %}{%- else %}"""
    r"""{% set ns.system_prompt = ns.system_prompt + '\n\n' + message['content'] %}{%- endif %}{%- endif %}{%- endfor %}"""
    r"""{{ bos_token }}{{ ns.system_prompt }}{%- for message in messages %}{%- if message['role'] == 'user' %}"""
    r"""{%- set ns.is_tool = false -%}{{'<｜User｜>' + message['content']}}{%- endif %}"""
    r"""{%- if message['role'] == 'assistant' and 'tool_calls' in message %}{%- set ns.is_tool = false -%}"""
    r"""{%- for tool in message['tool_calls'] %}{%- if not ns.is_first %}{%- if message['content'] is none %}"""
    r"""{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}"""
    r"""{%- else %}"""
    r"""{{'<｜Assistant｜>' + message['content'] + '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}"""
    r"""{%- endif %}{%- set ns.is_first = true -%}{%- else %}"""
    r"""{{'\n' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}"""
    r"""{%- endif %}{%- endfor %}{{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}{%- endif %}"""
    r"""{%- if message['role'] == 'assistant' and 'tool_calls' not in message %}{%- if ns.is_tool %}"""
    r"""{{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- set ns.is_tool = false -%}{%- else %}"""
    r"""{% set content = message['content'] %}{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}"""
    r"""{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endif %}"""
    r"""{%- if message['role'] == 'tool' %}{%- set ns.is_tool = true -%}{%- if ns.is_output_first %}"""
    r"""{{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}"""
    r"""{%- set ns.is_output_first = false %}{%- else %}"""
    r"""{{'<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- endif %}{%- endif %}{%- endfor -%}"""
    r"""{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{% endif %}"""
    r"""{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜><think>\n'}}{% endif %}"""
)


def call(name, args, cid="call_0"):
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}


W = call("get_weather", '{"city": "Paris"}', "c1")
T = call("get_time", '{"tz": "Europe/Paris"}', "c2")
S = call("search", '{"q": "深度求索 DeepSeek", "n": 3}', "c3")

CONVERSATIONS = {
    "empty": [],
    "system_only": [{"role": "system", "content": "Be brief."}],
    "user_only": [{"role": "user", "content": "Hello!"}],
    "three_systems_interleaved": [
        {"role": "system", "content": "A"}, {"role": "user", "content": "x"},
        {"role": "system", "content": "B"}, {"role": "assistant", "content": "y"},
        {"role": "system", "content": ""}, {"role": "user", "content": "z"}],
    "multi_turn": [
        {"role": "system", "content": "You are helpful."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"}, {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"}, {"role": "user", "content": "Thanks\nbye"}],
    "assistant_last": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
    "one_tool_call": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [W]},
        {"role": "tool", "content": "18C, sunny", "tool_call_id": "c1"},
        {"role": "assistant", "content": "It is 18C and sunny."},
        {"role": "user", "content": "Thanks"}],
    "two_tool_calls_one_turn": [
        {"role": "user", "content": "Weather and time?"},
        {"role": "assistant", "content": None, "tool_calls": [W, T]},
        {"role": "tool", "content": "18C", "tool_call_id": "c1"},
        {"role": "tool", "content": "14:00", "tool_call_id": "c2"},
        {"role": "assistant", "content": "18C at 14:00."}],
    "three_tool_calls_one_turn": [
        {"role": "user", "content": "All of it"},
        {"role": "assistant", "content": None, "tool_calls": [W, T, S]},
        {"role": "tool", "content": "a"}, {"role": "tool", "content": "b"}, {"role": "tool", "content": "c"}],
    "tool_calls_in_two_turns": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [W]},
        {"role": "tool", "content": "18C"},
        {"role": "assistant", "content": "18C."},
        {"role": "user", "content": "And the time?"},
        {"role": "assistant", "content": None, "tool_calls": [T]},
        {"role": "tool", "content": "14:00"},
        {"role": "tool", "content": "(second output)"},
        {"role": "assistant", "content": "14:00."}],
    "ends_with_tool_output": [
        {"role": "user", "content": "Search"},
        {"role": "assistant", "content": None, "tool_calls": [S]},
        {"role": "tool", "content": "[\"r1\", \"r2\"]"}],
    "tool_output_then_user": [
        {"role": "user", "content": "Search"},
        {"role": "assistant", "content": None, "tool_calls": [S]},
        {"role": "tool", "content": "none"},
        {"role": "user", "content": "Try again"}],
    "tool_calls_with_content": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [W, T]},
        {"role": "tool", "content": "18C"},
        {"role": "assistant", "content": "Done."}],
    "assistant_none_without_tool_calls": [
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": None}, {"role": "user", "content": "?"}],
    "empty_tool_calls": [
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "user", "content": "?"}],
    "unknown_roles_ignored": [
        {"role": "developer", "content": "ignored"}, {"role": "user", "content": "Hi"},
        {"role": "function", "content": "ignored too"}, {"role": "assistant", "content": "Hello"}],
    "reasoning_in_history": [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"},
        {"role": "user", "content": "3+3?"},
        {"role": "assistant", "content": "<think>a</think>b</think>6", "reasoning_content": "not rendered"},
        {"role": "user", "content": "and?"}],
    "reasoning_after_tool_output": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [W]},
        {"role": "tool", "content": "18C"},
        {"role": "assistant", "content": "<think>easy</think>18C"}],
    "unicode_and_empty_strings": [
        {"role": "system", "content": ""}, {"role": "user", "content": ""},
        {"role": "assistant", "content": "日本語 🚀 ü\r\n\t"}, {"role": "user", "content": "<｜User｜> in text"}],
    "user_content_none": [{"role": "user", "content": None}],
    "tool_content_none": [{"role": "user", "content": "x"}, {"role": "tool", "content": None}],
}


def main():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    with open(CONFIG, encoding="utf-8") as f:
        config = json.load(f)
    templates = {"v3": env.from_string(config["chat_template"]), "r1": env.from_string(R1_TEMPLATE)}
    bos = config["bos_token"]["content"]
    cases = []
    for kind, template in templates.items():
        for name, messages in CONVERSATIONS.items():
            for agp in (False, True):
                case = {"template": kind, "name": name, "add_generation_prompt": agp, "messages": messages}
                try:
                    case["rendered"] = template.render(messages=messages, add_generation_prompt=agp,
                                                       bos_token=bos, eos_token="<｜end▁of▁sentence｜>")
                except Exception as e:  # the Jinja fails on str + None; ChatTemplate must fail there too
                    case["error"] = type(e).__name__
                cases.append(case)
    out = {"generator": "make_chat_branches.py, Jinja2 " + __import__("jinja2").__version__, "r1_template": R1_TEMPLATE,
           "cases": cases}
    with open(os.path.join(HERE, "chat_branches.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
    print(len(cases), "cases,", sum("error" in c for c in cases), "raising")


if __name__ == "__main__":
    main()
