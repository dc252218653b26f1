"""Tweet length under twitter-text v3 rules (URLs count 23, CJK and emoji count 2, limit 280)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import lru_cache

from twitter_text import parse_tweet

TWEET_LIMIT = 280
TCO_LENGTH = 23
_TRAILING_URL = re.compile(r"\s*https?://\S+\s*$")


@dataclass(frozen=True)
class TweetCount:
    weighted_length: int
    limit: int
    body_length: int
    body_budget: int
    valid: bool
    over_budget: bool

    @property
    def remaining(self) -> int:
        return self.limit - self.weighted_length

    def as_dict(self) -> dict:
        return asdict(self) | {"remaining": self.remaining}


@lru_cache(maxsize=1024)
def weighted_length(text: str) -> int:
    """twitter-text's weighted length. Cached: the preview checks and counts the same tweet,
    and parsing is most of its cost."""
    return parse_tweet(text).weightedLength if text else 0


def count_tweet(text: str, *, body_budget: int = 220) -> TweetCount:
    """Counts a tweet; the body is the text before a final URL (the handbook's 220 budget)."""
    length = weighted_length(text)
    # The body is what precedes a final URL, which always weighs 23 (t.co); one parse is
    # enough (parsing dominates the live preview's cost).
    trailing = _TRAILING_URL.search(text.rstrip())
    body_length = length
    if trailing:
        separator = len(trailing.group(0)) - len(trailing.group(0).lstrip())
        body_length = max(0, length - TCO_LENGTH - separator)
    return TweetCount(
        weighted_length=length,
        limit=TWEET_LIMIT,
        body_length=body_length,
        body_budget=body_budget,
        valid=0 < length <= TWEET_LIMIT,
        over_budget=body_length > body_budget,
    )
