#!/usr/bin/env bash
# Set up, then run Rolecall: `rolecall serve` when Slack or Discord credentials are set, else the console chat.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
# The settings decide (the environment, then .env), as `rolecall serve` itself would read them.
job=$(.venv/bin/python -m bot.settings --main-job)
exec .venv/bin/rolecall "$job" "$@"
