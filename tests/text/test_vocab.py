"""Vocab: deterministic order, specials, encode/decode and strict JSON round trips."""

import json

import pytest

from unrolled.text import Vocab

TEXTS = [["b", "a", "c", "a"], ["c", "a", "d"], ["b", "e"]]  # a:3, b:2, c:2, d:1, e:1


def test_order_specials_then_frequency_then_token():
    vocab = Vocab.build(TEXTS)
    assert vocab.tokens == ("<pad>", "<unk>", "a", "b", "c", "d", "e")
    assert vocab.id_of("<pad>") == Vocab.PAD_ID == 0
    assert vocab.id_of("<unk>") == Vocab.UNK_ID == 1


def test_order_does_not_depend_on_input_order():
    assert Vocab.build(TEXTS) == Vocab.build([list(reversed(t)) for t in reversed(TEXTS)])


def test_min_freq_and_max_size_counts_specials():
    assert Vocab.build(TEXTS, min_freq=2).tokens == ("<pad>", "<unk>", "a", "b", "c")
    assert Vocab.build(TEXTS, max_size=4).tokens == ("<pad>", "<unk>", "a", "b")
    assert len(Vocab.build(TEXTS, max_size=2)) == 2


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"min_freq": 0}, "min_freq"),
    ({"max_size": 1}, "max_size"),
    ({"max_size": True}, "max_size"),
])
def test_bad_build_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Vocab.build(TEXTS, **kwargs)


def test_build_rejects_untokenized_text():
    with pytest.raises(ValueError, match=r"token_lists\[0\].*str"):
        Vocab.build(["a raw sentence"])


def test_specials_in_data_are_not_duplicated():
    vocab = Vocab.build([["<unk>", "x", "<pad>"]])
    assert vocab.tokens == ("<pad>", "<unk>", "x")


def test_lookup_encode_decode():
    vocab = Vocab.build(TEXTS)
    assert len(vocab) == 7
    assert "a" in vocab and "zzz" not in vocab
    assert vocab.id_of("zzz") == 1
    assert vocab.encode(["a", "zzz", "e"]) == [2, 1, 6]
    assert vocab.decode([2, 1, 6]) == ["a", "<unk>", "e"]
    with pytest.raises(ValueError, match=r"ids\[1\]: id 7 is outside"):
        vocab.decode([0, 7])
    with pytest.raises(ValueError, match="tokenize it first"):
        vocab.encode("abc")


def test_json_round_trip_through_text():
    vocab = Vocab.build(TEXTS, min_freq=1, max_size=6)
    obj = json.loads(json.dumps(vocab.to_json()))
    assert obj["format"] == "unrolled-vocab" and obj["version"] == 1
    assert obj["min_freq"] == 1 and obj["max_size"] == 6
    again = Vocab.from_json(obj)
    assert again == vocab and again.tokens == vocab.tokens
    assert again.max_size == 6


def _good():
    return Vocab.build(TEXTS).to_json()


@pytest.mark.parametrize(("change", "match"), [
    (lambda o: o.update(format="other"), r"^ckpt/vocab\.json: field 'format': expected 'unrolled-vocab'"),
    (lambda o: o.update(version=2), r"^ckpt/vocab\.json: field 'version': unsupported version 2"),
    (lambda o: o.pop("tokens"), r"^ckpt/vocab\.json: field 'tokens': missing"),
    (lambda o: o.update(tokens="abc"), r"^ckpt/vocab\.json: field 'tokens': expected a list"),
    (lambda o: o["tokens"].append("a"), r"^ckpt/vocab\.json: field 'tokens': item 7: duplicate token 'a' \(first at 2"),
    (lambda o: o["tokens"].append(5), r"^ckpt/vocab\.json: field 'tokens': item 7: expected a string, got number"),
    (lambda o: o["tokens"].append(["a"]), r"^ckpt/vocab\.json: field 'tokens': item 7: expected a string, got array"),
    (lambda o: o["tokens"].append(""), r"^ckpt/vocab\.json: field 'tokens': item 7: empty token$"),
    (lambda o: o["tokens"].reverse(), r"^ckpt/vocab\.json: field 'tokens': item 0: expected '<pad>'"),
    (lambda o: o["tokens"].pop(1), r"^ckpt/vocab\.json: field 'tokens': item 1: expected '<unk>', got 'a'"),
    (lambda o: o.update(min_freq=0), r"^ckpt/vocab\.json: field 'min_freq'"),
    (lambda o: o.update(extra=1), r"^ckpt/vocab\.json: unknown field 'extra'"),
])
def test_from_json_rejects_bad_input_with_one_line(change, match):
    obj = _good()
    change(obj)
    with pytest.raises(ValueError, match=match) as info:
        Vocab.from_json(obj, source="ckpt/vocab.json")
    assert "\n" not in str(info.value)


def test_from_json_keeps_the_build_settings():
    vocab = Vocab.from_json({**_good(), "min_freq": 3, "max_size": 9})
    assert (vocab.min_freq, vocab.max_size) == (3, 9) and vocab.tokens == tuple(_good()["tokens"])


def test_from_json_rejects_non_object():
    with pytest.raises(ValueError, match=r"^vocab\.json: expected a JSON object, got array"):
        Vocab.from_json(["<pad>", "<unk>"])


def test_equality_and_hash():
    assert Vocab.build(TEXTS) == Vocab.build(TEXTS)
    assert hash(Vocab.build(TEXTS)) == hash(Vocab.build(TEXTS))
    assert Vocab.build(TEXTS) != Vocab.build(TEXTS, min_freq=2)
    assert Vocab.build(TEXTS) != "not a vocab"
