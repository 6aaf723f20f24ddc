#!/usr/bin/env bash
# Set up, then run Rolecall: `rolecall serve` when Slack or Discord credentials are set, else the console chat.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
if [ -n "${SLACK_BOT_TOKEN:-}" ] || [ -n "${DISCORD_TOKEN:-}" ]; then
  exec .venv/bin/rolecall serve "$@"
fi
exec .venv/bin/rolecall chat "$@"
