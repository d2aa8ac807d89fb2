"""Refuse passwords an attacker tries first: common ones, keyboard runs, repeats, the name."""

from __future__ import annotations

import string

# The passwords every guessing list starts with (lower-cased), written out here rather than
# shipped as a large list: the brake and Argon2 handle the long tail.
_COMMON_TEXT = """
password passw0rd p@ssword p@ssw0rd pass password1 letmein welcome admin administrator
root toor qwerty qwertz azerty qwertyuiop asdfgh asdfghjkl zxcvbnm iloveyou monkey dragon
football baseball basketball soccer hockey master shadow sunshine princess superman
batman trustno1 whatever freedom starwars pokemon computer internet secret changeme
default login hello hellothere abc abcdef abcdefg abcdefgh abcd1234 abc123 qwe123
aaaaaa 111111 000000 123123 654321 666666 7777777 121212 112233 123321 123qwe
1q2w3e4r 1qaz2wsx zaq12wsx q1w2e3r4 michael jennifer jordan charlie thomas daniel
andrew joshua mustang harley ranger buster tigger ginger summer winter spring autumn
flower cookie chocolate cheese pepper orange banana apple family friends lovely
loveme angel angels jesus christ heaven matrix ninja cowboy killer hunter hunter2
access passport security samsung google facebook linkedin twitter ezspark neat spark
"""
COMMON = frozenset(_COMMON_TEXT.split())
_ROWS = ("qwertyuiopasdfghjklzxcvbnm", "abcdefghijklmnopqrstuvwxyz", "01234567890")


def _core(password: str) -> str:
    """The password without the digits and symbols people append to a word."""
    return password.lower().rstrip(string.digits + string.punctuation + " ")


def _is_run(text: str) -> bool:
    """One repeated character, or a slice of the alphabet, the digits or a keyboard row."""
    if len(set(text)) <= 2:
        return True
    return any(text in row or text in row[::-1] for row in _ROWS)


def weakness(password: str, username: str) -> str | None:
    """Why ``password`` is too easy to guess, or None when it is acceptable."""
    lowered = password.lower()
    if lowered in COMMON or _core(password) in COMMON:
        return "is one of the most common passwords"
    core = _core(password)
    if _is_run(lowered) or (len(core) >= 4 and _is_run(core)):
        return "is a run or repetition of characters"
    if username and username in lowered:
        return "must not contain the username"
    if len(set(password)) < 5:
        return "needs at least 5 different characters"
    return None
