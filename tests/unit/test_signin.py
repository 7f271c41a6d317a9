"""Signing in to the console: passwords, sessions, CSRF tokens and the brake on guessing."""
from services.router.roster import Agent
from services.router.signin import Sessions, SignInThrottle, hash_password, password_matches

SECRET = "s" * 40


def agent(password_hash: str | None) -> Agent:
    return Agent("ana", "Ana", frozenset({"billing"}), "L1", frozenset({"es"}), 2, password_argon2=password_hash)


def test_only_the_right_password_of_an_agent_with_a_hash_matches():
    ana = agent(hash_password("correct horse"))
    assert password_matches(ana, "correct horse")
    assert not password_matches(ana, "correct hors")
    assert not password_matches(agent(None), "")  # no hash, no sign-in
    assert not password_matches(agent("not-an-argon2-hash"), "x")
    assert not password_matches(None, "correct horse")  # unknown id: checked against a decoy, never true


def test_a_session_cookie_names_its_agent_and_a_forged_or_expired_one_names_nobody():
    sessions = Sessions(SECRET, max_age_seconds=3600)
    cookie, opened = sessions.open("ana")
    assert sessions.read(cookie) == opened and opened.agent_id == "ana"
    assert sessions.read(cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")) is None
    assert Sessions("t" * 40, 3600).read(cookie) is None  # another secret
    assert Sessions(SECRET, max_age_seconds=-1).read(cookie) is None  # expired
    assert sessions.read(None) is None and sessions.read("") is None


def test_each_session_has_its_own_csrf_token_and_a_missing_one_is_refused():
    sessions = Sessions(SECRET, 3600)
    _, first = sessions.open("ana")
    _, second = sessions.open("ana")
    token = sessions.csrf_token(first.nonce)
    assert sessions.csrf_valid(first.nonce, token)
    assert not sessions.csrf_valid(second.nonce, token)  # a new sign-in: a token seen before is worth nothing
    assert not sessions.csrf_valid(first.nonce, None) and not sessions.csrf_valid(first.nonce, "")
    assert not sessions.csrf_valid(None, token)


def test_failed_sign_ins_past_the_free_ones_wait_twice_as_long_each_time_and_success_clears_them():
    throttle = SignInThrottle(free=3, ceiling=60)
    keys = ("agent:ana", "client:10.0.0.1")
    for second in range(3):
        assert throttle.wait(keys, second) == 0
        throttle.failed(keys, second)
    assert throttle.wait(keys, 2) == 1.0  # the fourth try waits 1 s after the third failure
    throttle.failed(keys, 3)
    assert throttle.wait(keys, 3) == 2.0
    throttle.failed(keys, 5)
    assert throttle.wait(keys, 5) == 4.0
    assert throttle.wait(("agent:ben", "client:10.0.0.1"), 5) == 4.0  # the same client guessing another id
    assert throttle.wait(("agent:ben", "client:10.0.0.2"), 5) == 0
    throttle.succeeded("agent:ana")
    assert throttle.wait(("agent:ana", "client:10.0.0.9"), 5) == 0
    for second in range(30):
        throttle.failed(("agent:ben",), 100)
    assert throttle.wait(("agent:ben",), 100) == 60  # never longer than the ceiling
