#!/usr/bin/env bash
# Rebuilds cmoc/static/vendor/twitter-text-<version>.min.js from npm: the maintained
# twitter-text library (Apache-2.0, https://github.com/twitter/twitter-text), bundled with
# esbuild into one file that exposes window.twitterText.parseTweet for the tweet counter.
set -euo pipefail
VERSION=${1:-3.1.0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm init -y >/dev/null
npm install --silent "twitter-text@$VERSION" esbuild@0.24
cat > entry.js <<'JS'
// Only what the counter needs: parseTweet (twitter-text v3 weights, 23-char URLs, NFC).
import twitterText from "twitter-text";
window.twitterText = { parseTweet: twitterText.parseTweet };
JS
./node_modules/.bin/esbuild entry.js --bundle --minify --format=iife --legal-comments=eof \
  --outfile="$ROOT/cmoc/static/vendor/twitter-text-$VERSION.min.js"
cp node_modules/twitter-text/LICENSE "$ROOT/cmoc/static/vendor/twitter-text-LICENSE.txt"
echo "built twitter-text $VERSION"
