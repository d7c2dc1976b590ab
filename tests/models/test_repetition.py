from tether.models.repetition import is_looping, periodic_tail


def test_the_unit_repeated_over_the_longest_tail() -> None:
    assert periodic_tail("abcxyzxyzxyz", 10) == (3, 9)
    assert periodic_tail("xyzxyzxy", 10) == (3, 8)  # ends part-way through a unit
    assert periodic_tail("abc", 10) == (0, 0)
    assert periodic_tail("aaaa", 10) == (1, 4)


def test_a_repeated_sentence_is_not_hidden_by_a_doubled_letter() -> None:
    sentence = "She is a 34-year-old Spanish woman. "
    text = "She lives in Madrid. " + sentence * 2 + "She is a 34-year-old Spanish woo"
    assert periodic_tail(text[:-2], 200)[0] == len(sentence)
    assert periodic_tail(text, 200) == (1, 2)  # "oo": the sentence's run is broken


def test_a_unit_must_appear_twice_in_full() -> None:
    assert periodic_tail("New York, New York", 100) == (0, 0)
    assert periodic_tail([1, 2, 3, 1, 2], 10) == (0, 0)
    assert periodic_tail([1, 2, 3, 1, 2, 3], 10) == (3, 6)


def test_looping_needs_enough_repeats_over_enough_items() -> None:
    assert is_looping("ab" * 10, max_period=8, min_repeats=3, min_length=12)
    assert not is_looping("ab" * 5, max_period=8, min_repeats=3, min_length=12)
    assert not is_looping("abcdefgh" * 2, max_period=8, min_repeats=3, min_length=12)
    assert not is_looping("abcdefgh" * 3, max_period=4, min_repeats=3, min_length=12)
