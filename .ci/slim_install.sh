#!/usr/bin/env bash
# The slim serving install, checked for real: a fresh venv with only `pip install ".[serve]"` (no torch, no train
# extra) routes (one prompt, then a log in bulk), calibrates and serves an ONNX bundle that the full install (.venv)
# exported. `make check-slim` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=disabled

echo "slim install: exporting a bundle with the full install"
.venv/bin/python - "$work" <<'EOF'
import sys
from pathlib import Path

import torch

from lightning_lookahead.cli import main
from lightning_lookahead.data.schema import PAPER_CANDIDATES
from lightning_lookahead.inference import export_router
from lightning_lookahead.models.registry import build_predictor

work = Path(sys.argv[1])
torch.manual_seed(0)
predictor = build_predictor({"kind": "mlc", "backbone": "minilm", "max_length": 128}, PAPER_CANDIDATES)
export_router(predictor, work / "run" / "export", name="slim-check")
sys.exit(main(["export", str(work / "run"), "--format", "onnx", "--out", str(work / "bundle")]))
EOF

echo "slim install: pip install \".[serve]\" into a fresh venv"
python3 -m venv "$work/slim"
"$work/slim/bin/python" -m pip install -q --upgrade pip
"$work/slim/bin/python" -m pip install -q ".[serve]"
if "$work/slim/bin/python" -c "import torch" 2>/dev/null; then
  echo "slim install: torch is installed, the serve extra must not pull it" >&2
  exit 1
fi

echo "slim install: lookahead route on the bundle"
"$work/slim/bin/lookahead" route --checkpoint "$work/bundle" "Write a function that reverses a list." | tee "$work/route.jsonl"
"$work/slim/bin/python" -c "import json, sys; d = json.loads(open(sys.argv[1]).readline()); assert d['model'] in d['scores']" "$work/route.jsonl"

echo "slim install: bulk lookahead route --file --out and lookahead calibrate on the bundle"
"$work/slim/bin/python" - "$work/log.jsonl" <<'EOF'
import json
import sys

topics = ["sort a list", "prove that 17 is prime", "write a haiku about rain", "explain TCP", "sum 3 and 4"]
with open(sys.argv[1], "w", encoding="utf-8") as fh:
    for i in range(60):
        fh.write(json.dumps({"prompt": f"{topics[i % 5]} (request {i})"}) + "\n")
EOF
"$work/slim/bin/lookahead" route --checkpoint "$work/bundle" --file "$work/log.jsonl" --out "$work/routed.jsonl"
test "$(wc -l < "$work/routed.jsonl")" -eq 60
"$work/slim/bin/lookahead" calibrate --checkpoint "$work/bundle" --prompts "$work/log.jsonl" \
  --target-share Llama-3.1-8B-Instruct=1 --output-tokens 200 --name llama > "$work/calibrate.log"
grep -q "wrote calibration 'llama'" "$work/calibrate.log"

echo "slim install: lookahead serve on the bundle"
port=$("$work/slim/bin/python" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"$work/slim/bin/lookahead" serve --checkpoint "$work/bundle" --backends examples/backends.yaml --port "$port" \
  > "$work/serve.log" 2>&1 &
server=$!
"$work/slim/bin/python" - "$port" <<'EOF'
import json
import sys
import time
import urllib.request

base = f"http://127.0.0.1:{sys.argv[1]}"
start = time.monotonic()
while True:
    try:
        with urllib.request.urlopen(f"{base}/ready", timeout=2) as answer:
            if answer.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() - start > 60:
        sys.exit("slim install: the server was not ready within 60 s")
    time.sleep(0.1)
with urllib.request.urlopen(f"{base}/v1/models", timeout=5) as answer:
    models = [m["id"] for m in json.load(answer)["data"]]
assert "router" in models and "router:llama" in models, models
print(f"slim install: serve ready after {time.monotonic() - start:.1f} s; models {models}")
EOF
echo "slim install: ok"
