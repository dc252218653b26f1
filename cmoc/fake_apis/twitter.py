"""Fake X API v2: post a tweet (threaded by reply), read the account's own recent tweets.

As X does, it refuses a text it already has (403 duplicate content), and what it reads back has
every URL replaced by a t.co link and `&`, `<`, `>` HTML-escaped.
"""

from __future__ import annotations

import html
import itertools
import re
import zlib
from datetime import datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from cmoc.fake_apis.wire import Clock, answer, iso, real_now

ACCOUNT = {"id": "1234567890", "name": "GitLab Status", "username": "gitlabstatus"}
URL = re.compile(r"https?://\S+")
FIRST_ID = 1456012973835788293


def tco(text: str) -> str:
    """The text as X stores it: URLs shortened to t.co links, HTML special characters escaped."""
    shortened = URL.sub(lambda m: "https://t.co/" + format(zlib.crc32(m.group().encode()), "x"),
                        text)
    return html.escape(shortened, quote=False)


def _problem(status: int, title: str, detail: str) -> Response:
    return answer(status, {"title": title, "type": "about:blank", "status": status,
                           "detail": detail})


class FakeX:
    def __init__(self, lock, clock: Clock = real_now):
        self.lock = lock
        self.clock = clock
        self.ids = itertools.count(1)
        self.tweets: dict[str, dict[str, Any]] = {}

    def resume_ids(self, existing: int) -> None:
        """After loading saved tweets: new ids follow the highest one."""
        highest = max((int(t) - FIRST_ID for t in self.tweets), default=existing)
        self.ids = itertools.count(max(highest, existing) + 1)

    def handle(self, request: Request, path: str, body: Any) -> Response:
        if not request.headers.get("Authorization", "").startswith("OAuth "):
            return _problem(401, "Unauthorized", "Unauthorized")
        if path == "2/tweets" and request.method == "POST":
            return self._create(body or {})
        if path == "2/users/me" and request.method == "GET":
            return answer(200, {"data": dict(ACCOUNT)})
        if (path.startswith("2/users/") and path.endswith("/tweets")
                and request.method == "GET"):
            return self._timeline(path.split("/")[2], request.args)
        return _problem(404, "Not Found", "Not Found")

    def _create(self, body: dict) -> Response:
        text = body.get("text", "")
        if not text:
            return _problem(400, "Invalid Request", "text is required")
        reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        with self.lock:
            if any(t["text"] == text for t in self.tweets.values()):
                return _problem(403, "Forbidden", "You are not allowed to create a Tweet with "
                                                  "duplicate content.")
            if reply_to and reply_to not in self.tweets:
                return _problem(400, "Invalid Request", "in_reply_to_tweet_id does not exist")
            tweet_id = str(FIRST_ID + next(self.ids))
            self.tweets[tweet_id] = {"id": tweet_id, "text": text, "in_reply_to": reply_to,
                                     "created_at": iso(self.clock())}
        return answer(201, {"data": {"id": tweet_id, "text": text,
                                     "edit_history_tweet_ids": [tweet_id]}},
                      {"location": f"https://api.twitter.com/2/tweets/{tweet_id}"})

    def _timeline(self, user_id: str, args) -> Response:
        if user_id != ACCOUNT["id"]:
            return _problem(404, "Not Found Error", f"Could not find user with id: [{user_id}].")
        try:
            limit = int(args.get("max_results", "10"))
        except ValueError:
            limit = 0
        if not 5 <= limit <= 100:
            return _problem(400, "Invalid Request", "max_results must be between 5 and 100")
        fields = set((args.get("tweet.fields") or "").split(","))
        start = args.get("start_time")
        with self.lock:
            rows = sorted(self.tweets.values(), key=lambda t: int(t["id"]), reverse=True)
        if start:
            since = datetime.fromisoformat(start.replace("Z", "+00:00"))
            rows = [t for t in rows
                    if datetime.fromisoformat(t["created_at"].replace("Z", "+00:00")) >= since]
        rows = rows[:limit]
        if not rows:
            return answer(200, {"meta": {"result_count": 0}})
        data = []
        for tweet in rows:
            item = {"id": tweet["id"], "text": tco(tweet["text"]),
                    "edit_history_tweet_ids": [tweet["id"]]}
            if "created_at" in fields:
                item["created_at"] = tweet["created_at"]
            if "referenced_tweets" in fields and tweet["in_reply_to"]:
                item["referenced_tweets"] = [{"type": "replied_to", "id": tweet["in_reply_to"]}]
            data.append(item)
        return answer(200, {"data": data, "meta": {"result_count": len(data),
                                                   "newest_id": data[0]["id"],
                                                   "oldest_id": data[-1]["id"]}})
