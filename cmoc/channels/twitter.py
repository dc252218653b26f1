"""Twitter/X via tweepy: each incident is one thread; later updates reply to the last tweet."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import requests
import tweepy

from cmoc.channels import ChannelResult, PostContext
from cmoc.channels.http import DEFAULT_TIMEOUT, describe_network_error, make_session

TWEEPY_HOST = "https://api.twitter.com"
DUPLICATE = "duplicate content"
URL = re.compile(r"https?://\S+")
# Look for a tweet from a little before our first attempt (clock skew between us and X).
LOOKUP_WINDOW = timedelta(minutes=2)


def make_client(*, consumer_key: str | None, consumer_secret: str | None,
                access_token: str | None, access_token_secret: str | None,
                api_url: str = TWEEPY_HOST, timeout=DEFAULT_TIMEOUT) -> tweepy.Client:
    """A tweepy Client whose session has timeouts and is routed to `api_url`."""
    client = tweepy.Client(consumer_key=consumer_key, consumer_secret=consumer_secret,
                           access_token=access_token, access_token_secret=access_token_secret,
                           wait_on_rate_limit=False)
    target = api_url.rstrip("/")
    make_session(session=client.session, timeout=timeout,
                 from_prefix=TWEEPY_HOST if target != TWEEPY_HOST else None,
                 to_prefix=target if target != TWEEPY_HOST else None)
    return client


class Twitter:
    name = "twitter"

    def __init__(self, *, client: tweepy.Client | None, configured: bool,
                 clock: Callable[[], float] = time.time):
        self.client = client
        self.configured = configured and client is not None
        self.clock = clock
        self.user_id: str | None = None  # the account's id, read once for look-ups

    def build(self, ctx: PostContext) -> dict[str, Any]:
        payload: dict[str, Any] = {"text": ctx.text}
        if ctx.twitter_last_tweet_id:
            payload["in_reply_to_tweet_id"] = ctx.twitter_last_tweet_id
        return payload

    def send(self, payload: dict[str, Any]) -> ChannelResult:
        try:
            response = self.client.create_tweet(
                text=payload["text"], in_reply_to_tweet_id=payload.get("in_reply_to_tweet_id"),
                user_auth=True)
        except tweepy.TooManyRequests as exc:
            reset = _reset_time(exc.response)
            wait = max(0.0, reset - self.clock()) if reset else None
            return ChannelResult.failed(f"X rate limit (HTTP 429){_detail(exc)}",
                                        retryable=True, retry_after=wait)
        except tweepy.TwitterServerError as exc:
            # A 5xx can come after the tweet was stored: look before sending again.
            return ChannelResult.failed(f"X server error (HTTP {exc.response.status_code})"
                                        f"{_detail(exc)}", outcome_unknown=True)
        except tweepy.Forbidden as exc:
            text = _detail(exc)
            return ChannelResult(ok=False, error=f"X refused the tweet (HTTP 403){text}",
                                 duplicate=DUPLICATE in text)
        except tweepy.Unauthorized as exc:
            return ChannelResult.failed(
                f"X rejected the credentials (HTTP 401){_detail(exc)} — check TWITTER_* keys")
        except tweepy.HTTPException as exc:
            return ChannelResult.failed(
                f"X refused the tweet (HTTP {exc.response.status_code}){_detail(exc)}")
        except requests.RequestException as exc:
            if isinstance(exc, requests.exceptions.JSONDecodeError):
                return ChannelResult.failed("X answered with a body that is not JSON",
                                            outcome_unknown=True)
            message, safe = describe_network_error(exc, "X")
            return ChannelResult.failed(message, retryable=safe, outcome_unknown=not safe)
        except ValueError:
            return ChannelResult.failed("X answered with a body that is not JSON",
                                        outcome_unknown=True)
        data = response.data if isinstance(response.data, dict) else {}
        tweet_id = data.get("id")
        if not tweet_id:
            return ChannelResult.failed("X accepted the request but returned no tweet id",
                                        outcome_unknown=True)
        return ChannelResult.sent(str(tweet_id), twitter_last_tweet_id=str(tweet_id))

    def find_existing(self, payload: dict[str, Any], *,
                      since: datetime | None = None) -> ChannelResult | None:
        """The account's tweet with this text (and the same reply target), if X has it.

        Read from the account's own recent tweets: X stores URLs as t.co links and escapes
        `&<>`, so texts are compared with every URL masked. None means "certainly not there";
        a failed result means X could not be asked.
        """
        try:
            if self.user_id is None:
                me = self.client.get_me(user_auth=True)
                self.user_id = str(me.data["id"] if isinstance(me.data, dict) else me.data.id)
            start = (since - LOOKUP_WINDOW) if since else None
            response = self.client.get_users_tweets(
                self.user_id, max_results=100, start_time=start, user_auth=True,
                tweet_fields=["created_at", "referenced_tweets"])
        except tweepy.TooManyRequests as exc:
            return ChannelResult.failed(f"X rate limit while checking for the tweet{_detail(exc)}",
                                        retryable=True)
        except tweepy.HTTPException as exc:
            return ChannelResult.failed(f"X could not be asked whether the tweet exists (HTTP "
                                        f"{exc.response.status_code}){_detail(exc)}")
        except (requests.RequestException, ValueError, KeyError, AttributeError, TypeError) as exc:
            return ChannelResult.failed(f"X could not be asked whether the tweet exists "
                                        f"({type(exc).__name__})")
        wanted = same_text(payload["text"])
        reply_to = payload.get("in_reply_to_tweet_id")
        for tweet in response.data or []:
            replied = next((str(r.id) for r in (tweet.referenced_tweets or [])
                            if r.type == "replied_to"), None)
            if same_text(tweet.text) == wanted and replied == reply_to:
                return ChannelResult.sent(str(tweet.id), twitter_last_tweet_id=str(tweet.id))
        return None


def same_text(text: str) -> str:
    """A tweet's text as compared with what X reads back: URLs masked, entities and spaces
    normalised."""
    return " ".join(URL.sub("<url>", html.unescape(text or "")).split())


def _reset_time(response) -> float | None:
    try:
        return float(response.headers["x-rate-limit-reset"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _detail(exc: tweepy.HTTPException) -> str:
    messages = [m for m in getattr(exc, "api_messages", []) if m]
    if not messages:
        try:
            body = exc.response.json()
            messages = [body.get("detail") or body.get("title")] if isinstance(body, dict) else []
        except ValueError:
            messages = []
    messages = [m for m in messages if m]
    return (": " + "; ".join(messages)) if messages else ""
