#!/usr/bin/env bash
# Regenerates the encoded media the tests and the bot use (needs ffmpeg; the files are committed).
set -euo pipefail
out="$(dirname "$0")/../packages/sdk/test/fixtures"
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc=size=320x240:rate=30 -frames:v 300 \
  -c:v libvpx -b:v 300k -g 30 -deadline realtime -cpu-used 8 -y "$out/video.ivf"
ffmpeg -hide_banner -loglevel error -f lavfi -i sine=frequency=440:sample_rate=48000 -t 10 \
  -c:a libopus -b:a 32k -frame_duration 20 -y "$out/audio.ogg"
