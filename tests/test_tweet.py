"""t.co-aware tweet counting (twitter-text v3)."""

from cmoc.tweet import count_tweet, weighted_length

LONG_URL = "https://gitlab.com/gitlab-com/gl-infra/production/-/issues/12345?x=" + "y" * 80


def test_urls_count_23_and_cjk_emoji_count_2():
    assert weighted_length("a" * 280) == 280
    assert weighted_length("日本語") == 6
    assert weighted_length("🔥") == 2
    assert weighted_length(f"see {LONG_URL} now") == 4 + 23 + 4


def test_limit_and_body_budget():
    ok = count_tweet("a" * 200 + " " + LONG_URL)
    assert ok.valid and not ok.over_budget and ok.body_length == 200
    assert ok.weighted_length == 224 and ok.remaining == 56
    long_body = count_tweet("a" * 230 + " " + LONG_URL)
    assert long_body.valid and long_body.over_budget
    over = count_tweet("a" * 281)
    assert not over.valid and over.remaining == -1
    assert not count_tweet("").valid
