#!/usr/bin/env bash
# build-corpus.sh [CACHE]: build the shared test-image corpus (real Debian, 500-layer, 1 GiB, multiarch
# images and their archives) when ../shared sits beside the repository, as it does on CI. The corpus
# builder is idempotent (per-stage stamps), so this is a no-op once the cache is complete.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${LAMINA_SHARED:-$REPO/../shared}
CACHE=${1:-/var/cache/lamina/corpus}
if [ ! -x "$SHARED/corpus/build-corpus.sh" ]; then
  echo "build-corpus: $SHARED/corpus not found, skipping the corpus (corpus tests will SKIP)" >&2
  exit 0
fi
mkdir -p "$CACHE"
exec "$SHARED/corpus/build-corpus.sh" "$CACHE"
