"""Send a prompt with an image (a file) through the proxy with the official openai or anthropic SDK.

Usage: image_client.py --sdk openai|anthropic --image FILE --proxy URL --ca PEM --base-url URL --prompt TEXT
Prints the outcome as JSON, like the other clients.
"""

from __future__ import annotations

import argparse
import base64
import mimetypes

import anthropic
import openai
from _common import SentBodies, emit, error_result, http_client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("--sdk", "--image", "--proxy", "--ca", "--base-url", "--prompt"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    media_type = mimetypes.guess_type(args.image)[0] or "image/png"
    with open(args.image, "rb") as f:
        data = base64.b64encode(f.read()).decode()
    sent = SentBodies()
    try:
        if args.sdk == "openai":
            client = openai.OpenAI(api_key="sk-e2e-test", base_url=f"{args.base_url}/v1", max_retries=0,
                                   http_client=http_client(openai, args.proxy, args.ca, sent))
            content = [{"type": "text", "text": args.prompt},
                       {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{data}"}}]
            reply = client.chat.completions.create(model="gpt-4o-mini",
                                                   messages=[{"role": "user", "content": content}])
            emit({"text": reply.choices[0].message.content, "sent": sent.last_b64()})
        else:
            claude = anthropic.Anthropic(api_key="sk-ant-e2e-test", base_url=args.base_url, max_retries=0,
                                         http_client=http_client(anthropic, args.proxy, args.ca, sent))
            message = claude.messages.create(model="claude-sonnet-4-5", max_tokens=256, messages=[
                {"role": "user", "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}},
                    {"type": "text", "text": args.prompt}]}])
            emit({"text": message.content[0].text, "sent": sent.last_b64()})
    except (openai.APIError, anthropic.APIError) as e:
        emit(error_result(e, sent))


if __name__ == "__main__":
    main()
