"""Where the services find each platform's API when it is this emulator (`make run`, benchmarks)."""

from __future__ import annotations

import json

# The emulator's paths for the OAuth token endpoints that are not under a platform's base URL.
_TOKEN_PATHS = {"youtube": "/youtube/token", "linkedin": "/linkedin/oauth/v2/accessToken"}
INSIGHT_PLATFORMS = ("instagram", "facebook", "threads", "x", "tiktok", "youtube", "linkedin", "pinterest")


def metrics_platforms(emulator_url: str) -> str:
    """METRICS_PLATFORMS: every platform with insights, pointed at the emulator."""
    platforms = {
        p: {"base_url": f"{emulator_url}/{p}"}
        | ({"token_url": emulator_url + _TOKEN_PATHS[p]} if p in _TOKEN_PATHS else {})
        for p in INSIGHT_PLATFORMS
    }
    return json.dumps(platforms)
