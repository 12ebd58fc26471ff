#!/usr/bin/env python3
"""Reads tap-shopify's `--discover` catalog on stdin and writes it with the `orders` stream
selected, every field of it too (so the tap asks Shopify its whole orders query), and the
other streams not selected."""
import json
import sys

catalog = json.load(sys.stdin)
streams = [s for s in catalog["streams"] if s["tap_stream_id"] == "orders"]
if not streams:
    sys.exit("the tap's catalog has no `orders` stream")
for entry in streams[0]["metadata"]:
    if entry["metadata"].get("inclusion") != "unsupported":
        entry["metadata"]["selected"] = True
catalog["streams"] = streams
json.dump(catalog, sys.stdout)
