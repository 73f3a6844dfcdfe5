"""The official `openai` Python client against Bounty's gateway, unchanged
but for the base URL and the key: completes, streams (with usage), embeds,
lists models, and raises OpenAI's own exceptions for Bounty's errors.

Run by tests/it/gateway_python.rs: python3 openai_client.py BASE_URL KEY
"""

import sys

import openai
from openai import OpenAI

base_url, key = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=base_url, api_key=key, max_retries=0)

completion = client.chat.completions.create(
    model="gpt",
    messages=[{"role": "user", "content": "hello from python"}],
    extra_headers={"Bounty-Task": "PY-1"},
)
assert completion.choices[0].message.content == "hello from python", completion
assert completion.usage is not None and completion.usage.prompt_tokens > 0, completion

text = ""
usage = None
stream = client.chat.completions.create(
    model="gpt",
    messages=[{"role": "user", "content": "one two three"}],
    stream=True,
    stream_options={"include_usage": True},
    extra_headers={"Bounty-Task": "PY-1"},
)
for chunk in stream:
    if chunk.choices:
        text += chunk.choices[0].delta.content or ""
    if chunk.usage is not None:
        usage = chunk.usage
assert text == "one two three", text
assert usage is not None and usage.completion_tokens > 0, usage

# The client asks for base64 embeddings by default and decodes them.
embeddings = client.embeddings.create(model="gpt", input=["a b", "c"], extra_headers={"Bounty-Task": "PY-1"})
assert len(embeddings.data) == 2 and len(embeddings.data[0].embedding) > 0, embeddings

models = [m.id for m in client.models.list()]
assert "gpt" in models and all(isinstance(m, str) for m in models), models
assert client.models.retrieve("gpt").id == "gpt"

try:
    client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("an unknown model must fail")
except openai.NotFoundError as e:
    assert e.code == "model_not_found", e

try:
    OpenAI(base_url=base_url, api_key="bk_live_wrong", max_retries=0).models.list()
    raise AssertionError("a wrong key must fail")
except openai.AuthenticationError as e:
    assert e.code == "invalid_api_key", e

print("ok")
