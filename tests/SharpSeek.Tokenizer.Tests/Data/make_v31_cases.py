#!/usr/bin/env python3
"""Renders conversations that reach every branch of DeepSeek-V3.1's chat template (deepseek_v31_chat_template.jinja:
the chat_template of the DeepSeek-V3.1 release's tokenizer_config.json, as kept in ../shared/references/deepseek/
templates/DeepSeek-V3.1-official.jinja) with Jinja2 configured as transformers renders chat templates
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks), with thinking on, off and undefined (the template's
default), and writes v31_cases.json for ChatTemplateV31Tests. Conversations whose rendering raises (content None
where the template concatenates it) are recorded with "error": true. Messages give "content": null explicitly (an
absent key is Undefined in Jinja, which fails differently). Run: /usr/bin/python3 make_v31_cases.py (Jinja2 3.1)."""
import json
import os

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
BOS = "<｜begin▁of▁sentence｜>"


def call(name, args, cid):
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}


W = call("get_weather", '{"city": "Paris"}', "c1")
T = call("get_time", '{"tz": "Europe/Paris"}', "c2")
S = call("search", '{"q": "深度求索 DeepSeek", "n": 3}', "c3")

CONVERSATIONS = {
    "empty": [],
    "system_only": [{"role": "system", "content": "Be brief."}],
    "user_only": [{"role": "user", "content": "Hello!"}],
    "system_and_user": [{"role": "system", "content": "You are DeepSeek."}, {"role": "user", "content": "1+1=?"}],
    "three_systems_interleaved": [
        {"role": "system", "content": "A"}, {"role": "user", "content": "x"},
        {"role": "system", "content": "B"}, {"role": "assistant", "content": "y"},
        {"role": "system", "content": ""}, {"role": "user", "content": "z"}],
    "multi_turn": [
        {"role": "system", "content": "You are helpful."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"}, {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"}, {"role": "user", "content": "Thanks\nbye"}],
    "earlier_reasoning_dropped": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>The user greets me.</think>Hello!"},
        {"role": "user", "content": "Why is the sky blue?"}],
    "reasoning_split_at_first_end_tag": [
        {"role": "user", "content": "Quote a tag"},
        {"role": "assistant", "content": "thinking</think>The tag is </think>, closing."},
        {"role": "user", "content": "ok"}],
    "reasoning_content_field_ignored": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello", "reasoning_content": "greeting"},
        {"role": "user", "content": "Bye"}],
    "assistant_last": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
    "assistant_after_assistant": [
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
        {"role": "assistant", "content": "Anything else?"}],
    "prefix_completion": [
        {"role": "user", "content": "Write a haiku"},
        {"role": "assistant", "content": "Autumn moonlight", "prefix": True}],
    "one_tool_call": [
        {"role": "system", "content": "## Tools\nget_weather(city)"},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [W]},
        {"role": "tool", "content": "18C, sunny", "tool_call_id": "c1"},
        {"role": "assistant", "content": "It is 18C and sunny."},
        {"role": "user", "content": "Thanks"}],
    "tool_call_with_content": [
        {"role": "user", "content": "Look it up"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [S]},
        {"role": "tool", "content": "DeepSeek is a company.", "tool_call_id": "c3"}],
    "three_tool_calls_one_turn": [
        {"role": "user", "content": "All of it"},
        {"role": "assistant", "content": None, "tool_calls": [W, T, S]},
        {"role": "tool", "content": "18C", "tool_call_id": "c1"},
        {"role": "tool", "content": "14:00", "tool_call_id": "c2"},
        {"role": "tool", "content": "found", "tool_call_id": "c3"},
        {"role": "assistant", "content": "Done: 18C, 14:00, found."}],
    "tool_output_last": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [W]},
        {"role": "tool", "content": "18C", "tool_call_id": "c1"}],
    "answer_after_tool_keeps_think_tags": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [W]},
        {"role": "tool", "content": "18C", "tool_call_id": "c1"},
        {"role": "assistant", "content": "ok</think>18C"},
        {"role": "user", "content": "and now?"}],
    "tool_calls_in_two_turns": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [W]},
        {"role": "tool", "content": "18C", "tool_call_id": "c1"},
        {"role": "assistant", "content": "18C."},
        {"role": "user", "content": "Time?"},
        {"role": "assistant", "content": None, "tool_calls": [T]},
        {"role": "tool", "content": "14:00", "tool_call_id": "c2"},
        {"role": "assistant", "content": "14:00."},
        {"role": "user", "content": "Thanks"}],
    "chained_calls_without_user": [
        {"role": "user", "content": "Plan"},
        {"role": "assistant", "content": None, "tool_calls": [W]},
        {"role": "tool", "content": "18C", "tool_call_id": "c1"},
        {"role": "assistant", "content": None, "tool_calls": [T]},
        {"role": "tool", "content": "14:00", "tool_call_id": "c2"}],
    "empty_tool_calls_list": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "dropped text", "tool_calls": []},
        {"role": "user", "content": "Again"}],
    "user_after_tool": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [W]},
        {"role": "tool", "content": "18C", "tool_call_id": "c1"},
        {"role": "user", "content": "Nevermind"}],
    "unicode_and_newlines": [
        {"role": "system", "content": "用中文回答。\n\n"},
        {"role": "user", "content": "你好，世界 🌍\n第二行"}],
    "unknown_role_ignored": [
        {"role": "user", "content": "Hi"}, {"role": "ipython", "content": "x"}],
    "error_user_content_none": [{"role": "user", "content": None}],
    "error_system_content_none": [{"role": "system", "content": None}, {"role": "user", "content": "Hi"}],
    "error_assistant_content_none": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None}],
    "error_tool_content_none": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [W]},
        {"role": "tool", "content": None, "tool_call_id": "c1"}],
}


def main():
    with open(os.path.join(HERE, "deepseek_v31_chat_template.jinja"), encoding="utf-8") as f:
        source = f.read()
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(source)
    cases = []
    for name, messages in CONVERSATIONS.items():
        for thinking in (None, False, True):
            for agp in (False, True):
                kwargs = {"messages": messages, "bos_token": BOS, "add_generation_prompt": agp}
                if thinking is not None:
                    kwargs["thinking"] = thinking
                case = {"name": name, "thinking": thinking, "add_generation_prompt": agp, "messages": messages}
                try:
                    case["rendered"] = template.render(**kwargs)
                except (TypeError, jinja2.exceptions.UndefinedError) as e:
                    case["error"] = True
                    case["exception"] = type(e).__name__
                cases.append(case)
    out = {"generator": "make_v31_cases.py, Jinja2 " + jinja2.__version__, "cases": cases}
    with open(os.path.join(HERE, "v31_cases.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(len(cases), "cases,", sum("error" in c for c in cases), "errors")


if __name__ == "__main__":
    main()
