"""People are named as colleagues write them (core/people.py)."""

from types import SimpleNamespace

from core.people import person_name


def user(first="", last="", username="u1"):
    return SimpleNamespace(first_name=first, last_name=last, get_username=lambda: username)


def test_a_chinese_name_reads_family_name_first_without_a_space():
    assert person_name(user("强", "李")) == "李强"
    assert person_name(user("娜娜", "欧阳")) == "欧阳娜娜"


def test_a_chinese_name_given_whole_in_one_field_stays_as_it_is():
    assert person_name(user("李娜")) == "李娜"


def test_a_latin_name_reads_given_name_first():
    assert person_name(user("Anna", "Schmidt")) == "Anna Schmidt"


def test_without_a_name_the_username_is_shown():
    assert person_name(user(username="hp-finance")) == "hp-finance"
