#!/usr/bin/env python3
"""Encodes conversations with DeepSeek's V4 encoder (encoding_dsv4.py of deepseek-ai/DeepSeek-V4-Pro, kept in
../shared/references/deepseek/DeepSeek-V4-Pro-encoding/encoding) and writes v4_cases.json for ChatTemplateDsmlTests:
DeepSeek's four test inputs (dsv4/) in both thinking modes and with drop_thinking off, plus conversations for the
branches the official cases miss (maximum reasoning effort, tool results out of call order, arguments of every JSON
type, arguments that are not JSON, response_format, merged user turns, wo_eos, tasks, developer turns before the last
user turn). Also records parse_message_from_completion_text on every assistant turn rendered in thinking mode.
Run: /usr/bin/python3 make_v4_cases.py [DIR_OF_encoding_dsv4.py]"""
import copy
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REF = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    HERE, "..", "..", "..", "..", "shared", "references", "deepseek", "DeepSeek-V4-Pro-encoding", "encoding")
sys.path.insert(0, REF)
from encoding_dsv4 import encode_messages, parse_message_from_completion_text  # noqa: E402


def call(name, args, cid=None):
    c = {"type": "function", "function": {"name": name, "arguments": args}}
    if cid:
        c["id"] = cid
    return c


def tool(name, desc, props, required):
    return {"type": "function", "function": {"name": name, "description": desc, "parameters": {
        "type": "object", "properties": props, "required": required}}}


WEATHER = tool("get_weather", "Weather of a city", {"city": {"type": "string"}, "days": {"type": "integer"}}, ["city"])
CALC = tool("calc", "Evaluate «math» \"quoted\"\n\ttabbed", {"expr": {"type": "string"}, "precision": {"type": "number", "default": 0.001}}, ["expr"])


def official(i):
    with open(os.path.join(HERE, "dsv4", f"test_input_{i}.json"), encoding="utf-8") as f:
        td = json.load(f)
    if isinstance(td, dict):
        messages = td["messages"]
        messages[0]["tools"] = td["tools"]
        return messages
    return td


CONVERSATIONS = {
    "official_1": official(1),
    "official_2": official(2),
    "official_3": official(3),
    "official_4": official(4),
    "user_only": [{"role": "user", "content": "Hi"}],
    "no_system_multi_turn": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!", "reasoning_content": "greet"},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4", "reasoning_content": "add"},
        {"role": "user", "content": "Thanks"}],
    "tool_results_out_of_order": [
        {"role": "system", "content": "", "tools": [WEATHER, CALC]},
        {"role": "user", "content": "Weather in Paris and 2**10?"},
        {"role": "assistant", "content": "", "reasoning_content": "two calls",
         "tool_calls": [call("get_weather", '{"city": "Paris", "days": 2}', "a"), call("calc", '{"expr": "2**10"}', "b")]},
        {"role": "tool", "tool_call_id": "b", "content": "1024"},
        {"role": "tool", "tool_call_id": "a", "content": "{\"temp\": 18}"},
        {"role": "user", "content": "And Rome?"}],
    "argument_types": [
        {"role": "system", "content": "Tools below.", "tools": [CALC]},
        {"role": "user", "content": "Go"},
        {"role": "assistant", "content": "Calling.", "reasoning_content": "r",
         "tool_calls": [call("calc", json.dumps({"expr": "π·r²\n", "precision": 1e-05, "big": 1e16, "f": 2.50, "i": -0,
                                                 "n": None, "b": True, "list": [1, "two", {"3": [4.0]}], "obj": {"k": "v\"q"},
                                                 "esc": "tab\there"}, ensure_ascii=False), "x")]},
        {"role": "tool", "tool_call_id": "x", "content": "ok"}],
    "arguments_not_json": [
        {"role": "user", "content": "Go"},
        {"role": "assistant", "content": "", "tool_calls": [call("calc", "2**10 (not json)")]},
        {"role": "tool", "content": "1024"}],
    "no_arguments": [
        {"role": "user", "content": "Go"},
        {"role": "assistant", "content": "", "tool_calls": [call("now", "{}")]},
        {"role": "tool", "content": "12:00"}],
    "response_format": [
        {"role": "system", "content": "Answer in JSON.", "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}},
        {"role": "user", "content": "Name a color"}],
    "user_turns_merge_after_tool": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "", "tool_calls": [call("get_weather", '{"city": "Oslo"}', "w")]},
        {"role": "tool", "tool_call_id": "w", "content": "-3C"},
        {"role": "user", "content": "Also, dress advice?"}],
    "consecutive_users": [{"role": "user", "content": "One"}, {"role": "user", "content": "Two"}],
    "wo_eos": [{"role": "user", "content": "Continue"}, {"role": "assistant", "content": "Once upon", "reasoning_content": "story", "wo_eos": True}],
    "title_task": [
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!", "task": "title"},
        {"role": "assistant", "content": "Greeting"}],
    "query_task": [{"role": "user", "content": "Latest news on DeepSeek", "task": "query"}],
    "developer_before_last_user_dropped": [
        {"role": "developer", "content": "Search first."},
        {"role": "assistant", "content": "ok", "reasoning_content": "r1"},
        {"role": "user", "content": "Now answer"}],
    "latest_reminder_after_user": [
        {"role": "user", "content": "What day is it?"},
        {"role": "latest_reminder", "content": "2026-04-24"}],
}

OPTIONS = [
    {"thinking_mode": "thinking"},
    {"thinking_mode": "chat"},
    {"thinking_mode": "thinking", "drop_thinking": False},
    {"thinking_mode": "thinking", "reasoning_effort": "max"},
]


def main():
    cases = []
    for name, messages in CONVERSATIONS.items():
        for opts in OPTIONS:
            if opts.get("reasoning_effort") and name not in ("user_only", "official_1", "tool_results_out_of_order"):
                continue
            case = {"name": name, "options": opts, "messages": copy.deepcopy(messages)}
            case["rendered"] = encode_messages(copy.deepcopy(messages), **opts)
            cases.append(case)
    # replies: every assistant turn after an opened <think> in the thinking renderings, parsed back
    replies = []
    for c in cases:
        if c["options"] != {"thinking_mode": "thinking"}:
            continue
        text, marker = c["rendered"], "<｜Assistant｜><think>"
        at = text.find(marker)
        while at >= 0:
            start = at + len(marker)
            end = text.find("<｜end▁of▁sentence｜>", start)
            if end >= 0:
                reply = text[start:end + len("<｜end▁of▁sentence｜>")]
                try:
                    parsed = parse_message_from_completion_text(reply, thinking_mode="thinking")
                    replies.append({"text": reply, "parsed": parsed})
                except (ValueError, AssertionError) as e:
                    replies.append({"text": reply, "error": str(e)})
            at = text.find(marker, start)
    # floats as json.dumps writes them (repr), from a 17-digit exponent form that is not the shortest
    import random
    rng = random.Random(20260424)
    values = [rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30) for _ in range(300)]
    values += [1e16, 1e15, 123456789012345.6, 1e-4, 9.999e-5, 0.1, 0.5, 100.0, 2.0 ** 60, 5e-324, 1.7976931348623157e308]
    floats = [["%.17e" % v, json.dumps(v)] for v in values]
    out = {"generator": "make_v4_cases.py over encoding_dsv4.py", "cases": cases, "replies": replies, "floats": floats}
    with open(os.path.join(HERE, "v4_cases.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(len(cases), "cases,", len(replies), "replies,", sum("error" in r for r in replies), "reply errors")


if __name__ == "__main__":
    main()
