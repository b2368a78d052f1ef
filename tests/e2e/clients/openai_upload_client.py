"""Upload one file with the official openai SDK (``client.files.create``) through the proxy; print JSON."""

from __future__ import annotations

from pathlib import Path

import openai
from _common import SentBodies, emit, error_result, http_client, proxy_parser


def main() -> None:
    parser = proxy_parser(__doc__)
    parser.add_argument("--file", required=True, help="the file to upload; its name is sent as is")
    args = parser.parse_args()
    sent = SentBodies()
    client = openai.OpenAI(api_key="sk-e2e-test", base_url=f"{args.base_url}/v1", max_retries=0,
                           http_client=http_client(openai, args.proxy, args.ca, sent))
    path = Path(args.file)
    try:
        created = client.files.create(file=(path.name, path.read_bytes()), purpose="assistants")
        emit({"id": created.id, "bytes": created.bytes, "sent": sent.last_b64()})
    except openai.APIError as e:
        emit(error_result(e, sent))


if __name__ == "__main__":
    main()
