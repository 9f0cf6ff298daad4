"""A minimal client for the object detector service, using only the Python standard library.

    python samples/client.py samples/coffee.jpg                          # detections
    python samples/client.py samples/coffee.jpg --annotate coffee-boxes.jpg
    python samples/client.py --url http://127.0.0.1:5000 --threshold 0.3 samples/chelsea.jpg

Prints one line per detection (or the full JSON with --json). On an error the server's
message is printed and the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path


def multipart(path: Path, fields: dict[str, str]) -> tuple[bytes, str]:
    """A multipart/form-data body with the image in the ``image`` field, and its content type."""
    boundary = uuid.uuid4().hex
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{path.name}"\r\n'
        f"Content-Type: {mime}\r\n\r\n".encode()
        + path.read_bytes()
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def post(url: str, path: Path, fields: dict[str, str]) -> tuple[bytes, str | None]:
    """POST the image; returns the body and the server's processing time. Raises on HTTP errors."""
    body, content_type = multipart(path, fields)
    if not url.startswith(("http://", "https://")):
        raise SystemExit(f"the service URL must start with http:// or https://, got {url!r}")
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})  # noqa: S310 - checked above
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - checked above
        return response.read(), response.headers.get("X-Processing-Time-Ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Detect objects in an image with the object detector service.")
    parser.add_argument("image", type=Path)
    parser.add_argument("--url", default="http://127.0.0.1:5000", help="service base URL")
    parser.add_argument("--threshold", default="0.5", help="minimum score in [0, 1] (default 0.5)")
    parser.add_argument(
        "--annotate",
        type=Path,
        metavar="OUT",
        help="save the picture with boxes drawn in (PNG if OUT ends in .png, else JPEG)",
    )
    parser.add_argument("--json", action="store_true", help="print the service's JSON answer as is")
    args = parser.parse_args(argv)

    fields = {"threshold": args.threshold}
    endpoint = "/model/predict"
    if args.annotate:
        endpoint = "/model/annotate"
        fields["format"] = "png" if args.annotate.suffix.lower() == ".png" else "jpeg"
    try:
        body, elapsed = post(args.url.rstrip("/") + endpoint, args.image, fields)
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["message"]
        except (ValueError, KeyError):
            message = exc.reason
        print(f"error {exc.code}: {message}", file=sys.stderr)
        return 1
    except urllib.error.URLError as exc:
        print(f"cannot reach {args.url}: {exc.reason}", file=sys.stderr)
        return 1

    if args.annotate:
        args.annotate.write_bytes(body)
        print(f"wrote {args.annotate} ({len(body)} bytes, server time {elapsed} ms)")
        return 0
    answer = json.loads(body)
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    for p in answer["predictions"]:
        ymin, xmin, ymax, xmax = p["detection_box"]
        print(f"{p['label']:<14} {p['probability']:.2f}  box y {ymin:.2f}-{ymax:.2f}, x {xmin:.2f}-{xmax:.2f}")
    print(f"{len(answer['predictions'])} objects, server time {elapsed} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
