"""`python -m bot.healthcheck`: exit 0 when the local `rolecall serve` answers /healthz with 200 (Docker HEALTHCHECK)."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from bot.settings import load_settings

HEALTH_PATH = "/healthz"  # the path bot/serve.py serves
WILDCARD_HOSTS = ("", "0.0.0.0", "::")


def health_url() -> str:
    """The /healthz address of the server ROLECALL_HTTP_HOST and ROLECALL_HTTP_PORT describe."""
    settings = load_settings()
    host = "127.0.0.1" if settings.http_host in WILDCARD_HOSTS else settings.http_host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.http_port}{HEALTH_PATH}"


def main() -> int:
    """Print the health JSON (or why there is none); 0 when ready, 1 otherwise."""
    url = health_url()
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            print(response.read().decode("utf-8", "replace"))
            return 0
    except urllib.error.HTTPError as exc:  # 503: starting, stopping or an adapter disconnected
        print(f"{exc.code} from {url}: {exc.read().decode('utf-8', 'replace')}")
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"cannot reach {url}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
